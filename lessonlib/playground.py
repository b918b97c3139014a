"""The 2-D classification playground of chapter 01, in the spirit of TensorFlow Playground.

A small MLP learns one of the toy problems of ``lessonlib.data.toy_2d`` (moons, circles, spiral)
with an optional penalty on its weights, and the notebook draws its decision boundary. This module
holds the computation only (``lessonlib.viz`` and the notebook do the drawing):

- ``soft_threshold`` / ``prox_l1``: the proximal step of the L1 penalty, which sets weights
  *exactly* to zero (plain subgradient steps on ``alpha * |w|`` only make them jitter around zero);
- ``penalty`` / ``project`` / ``optimizer``: the three functions handed to ``lessonlib.train.fit``,
  defined once at module level so every retraining reuses the same compiled run;
- ``train_classifier``: one playground run; every float setting (noise, lambda, L1 vs L2, learning
  rate) is a traced value or only changes data values, so it never recompiles. Only a new array
  shape compiles once: another hidden-layer layout, or another train share (it changes how many
  points are in each split). Models and data sets are cached, so going back is instant.

References: Tibshirani 1996 (the lasso); Daubechies, Defrise & De Mol 2004 and Beck & Teboulle
2009 (iterative soft thresholding, ISTA); Smilkov & Carter, TensorFlow Playground (2016).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import data, models, optim, regularization, train

REGULARIZERS = ("none", "L1", "L2")
ARCHITECTURES = {
    "4": (4,),
    "8": (8,),
    "16": (16,),
    "8-8": (8, 8),
    "16-16": (16, 16),
    "32-32": (32, 32),
    "16-16-16": (16, 16, 16),
}


# --------------------------------------------------------------------------- proximal L1


def soft_threshold(w: jax.Array, t) -> jax.Array:
    r"""The proximal operator of ``t * |w|``: ``sign(w) * max(|w| - t, 0)``.

    .. math:: \operatorname{prox}_{t|\cdot|}(v) = \arg\min_w \tfrac12 (w - v)^2 + t|w|
              = \operatorname{sign}(v)\max(|v| - t, 0)

    Every entry with ``|w| <= t`` becomes exactly 0; the others move ``t`` towards zero.

    >>> soft_threshold(jnp.array([-2.0, -0.5, 0.0, 0.3, 1.5]), 1.0).tolist()
    [-1.0, -0.0, 0.0, 0.0, 0.5]
    """
    if not isinstance(t, jax.core.Tracer) and not float(t) >= 0:
        raise ValueError(f"t must be >= 0, got {t!r}")
    return jnp.sign(w) * jnp.maximum(jnp.abs(w) - t, 0.0)


def prox_l1(params, hp) -> object:
    """Soft-threshold the weights (not the biases) by ``hp["lr"] * hp["l1"]``.

    Run after each gradient step on the data loss (``train.fit(..., project=prox_l1)``), this is
    proximal gradient descent (ISTA) on ``loss + l1 * sum|w|``; with ``hp["l1"] = 0`` it is the
    identity, so one compiled run serves L1, L2 and no penalty.
    """
    t = hp["lr"] * hp["l1"]
    mask = regularization.weight_mask(params)
    if mask is True:
        return soft_threshold(params, t)
    return jax.tree.map(lambda w, m: soft_threshold(w, t) if m else w, params, mask)


def count_zeros(params) -> tuple[int, int]:
    """``(exact zeros, total)`` over the weights (biases excluded)."""
    mask = regularization.weight_mask(params)
    if mask is True:
        leaves = [params]
    else:
        leaves = [
            w for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True) if m
        ]
    zeros = sum(int(np.sum(np.asarray(w) == 0)) for w in leaves)
    return zeros, sum(int(np.size(w)) for w in leaves)


# --------------------------------------------------------------------------- training pieces


def penalty(params, hp) -> jax.Array:
    """The L2 part, ``hp["l2"] / 2 * ||w||^2``, added to the loss (the L1 part is ``prox_l1``)."""
    return regularization.l2_penalty(params, hp["l2"])


def optimizer(hp) -> optim.GradientTransformation:
    """SGD with heavy-ball momentum 0.9 and learning rate ``hp["lr"]``.

    With SGD an L2 penalty in the loss is exactly weight decay (section "Derivation" of chapter 01).
    """
    return optim.sgd(hp["lr"], momentum=0.9)


def reg_hp(reg: str, lam: float) -> dict[str, float]:
    """``{"l1": ..., "l2": ...}`` for the penalty ``reg`` in ``REGULARIZERS`` with strength ``lam``."""
    if reg not in REGULARIZERS:
        raise ValueError(f"reg must be one of {REGULARIZERS}, got {reg!r}")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    return {"l1": lam if reg == "L1" else 0.0, "l2": lam if reg == "L2" else 0.0}


@functools.cache
def classifier(hidden: tuple[int, ...]) -> models.Model:
    """The MLP ``2 -> hidden... -> 2`` (ReLU, He init); cached so a layout compiles only once.

    ``hidden=()`` is a linear classifier (logistic regression)."""
    hidden = tuple(int(h) for h in hidden)
    if hidden and min(hidden) <= 0:
        raise ValueError(f"hidden must list positive layer widths, got {hidden!r}")
    return models.mlp((2, *hidden, 2), activation="relu")


@functools.lru_cache(maxsize=128)
def dataset(name: str, noise: float, train_share: float, *, n: int = 200, seed: int = 0):
    """``data.toy_2d`` with its points cached per setting (arguments are validated there)."""
    return data.toy_2d(name, n, seed=seed, noise=float(noise), train_share=float(train_share))


@functools.lru_cache(maxsize=64)
def initial_params(hidden: tuple[int, ...], seed: int = 0):
    """The He-initialized weights of ``classifier(hidden)`` drawn from ``seed`` (cached)."""
    params, _ = classifier(hidden).init(jax.random.key(seed))
    return params


class Result(NamedTuple):
    run: train.Run
    model: models.Model
    data: data.Dataset


def train_classifier(
    name: str = "moons",
    *,
    noise: float = 0.2,
    train_share: float = 0.5,
    hidden: Sequence[int] = (16, 16),
    reg: str = "L2",
    lam: float = 1e-3,
    lr: float = 0.2,
    epochs: int = 100,
    n: int = 200,
    seed: int = 0,
) -> Result:
    """Train the playground MLP full-batch for ``epochs`` steps and return the run.

    Each epoch is one full-batch step of SGD with momentum on the cross-entropy, plus
    ``lam/2 ||w||^2`` (``reg="L2"``), or followed by soft thresholding by ``lr * lam``
    (``reg="L1"``, proximal gradient). Same arguments, same result: the initial weights come
    from ``seed`` and full-batch steps involve no other randomness.

    >>> res = train_classifier("moons", noise=0.1, hidden=(8,), reg="none", lam=0.0, epochs=50)
    >>> res.run.history["train_loss"].shape
    (50,)
    """
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    ds = dataset(name, float(noise), float(train_share), n=n, seed=seed)
    model = classifier(tuple(hidden))
    params = initial_params(tuple(hidden), seed)
    hp = {"lr": lr, **reg_hp(reg, lam)}
    run = train.fit(
        model,
        params,
        ds,
        key=jax.random.key(seed),
        hp=hp,
        epochs=epochs,
        batch_size=int(ds.x_train.shape[0]),
        optimizer=optimizer,
        penalty=penalty,
        project=prox_l1,
    )
    return Result(run, model, ds)


# --------------------------------------------------------------------------- prediction


@functools.partial(jax.jit, static_argnums=0)
def _proba(model: models.Model, params, x: jax.Array) -> jax.Array:
    logits, _ = model.apply(params, {}, x, key=None, train=False, hp={})
    return jax.nn.softmax(logits, axis=-1)[:, 1]


def grid(lim: float = 2.0, steps: int = 64) -> jax.Array:
    """``steps * steps`` points covering ``[-lim, lim]^2``, row by row from the bottom (for imshow
    with ``origin="lower"``)."""
    if not lim > 0:
        raise ValueError(f"lim must be > 0, got {lim!r}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps!r}")
    g = jnp.linspace(-lim, lim, steps, dtype=jnp.float32)
    gx, gy = jnp.meshgrid(g, g)
    return jnp.stack([gx.ravel(), gy.ravel()], axis=1)


def predict_proba(model: models.Model, params, x) -> np.ndarray:
    """P(class 1) for every row of ``x`` (jitted per model)."""
    return np.asarray(_proba(model, params, jnp.asarray(x, jnp.float32)))


# --------------------------------------------------------------------------- choosing lambda

#: The lambda-selection problem of chapter 01: noisy moons, 60 points to train on, 60 to validate
#: on and 400 to test on, the playground MLP 2-32-32-2 trained full-batch with an L2 penalty.
SELECTION = {
    "name": "moons",
    "noise": 0.3,
    "seed": 3,
    "n_train": 60,
    "n_val": 60,
    "n_test": 400,
    "hidden": (32, 32),
    "lr": 0.2,
    "epochs": 100,
    "lams": tuple(float(v) for v in np.logspace(-4, 0, 13)),
}


def selection_splits() -> tuple[data.Dataset, data.Dataset]:
    """``(train_val, train_test)`` of ``SELECTION``: the same training points, with the validation
    split (first) or the test split (second) in the ``x_test``/``y_test`` slots of the Dataset."""
    cfg = SELECTION
    n_tr, n_val = cfg["n_train"], cfg["n_val"]
    X, y = data.TOY_2D[cfg["name"]](
        n_tr + n_val + cfg["n_test"], seed=cfg["seed"], noise=cfg["noise"]
    )
    train_val = data.Dataset(X[:n_tr], y[:n_tr], X[n_tr : n_tr + n_val], y[n_tr : n_tr + n_val])
    train_test = data.Dataset(X[:n_tr], y[:n_tr], X[n_tr + n_val :], y[n_tr + n_val :])
    return train_val, train_test


def selection_sweep(split: data.Dataset, lams: Sequence[float]) -> train.Run:
    """One ``train.sweep`` over the L2 strengths ``lams`` on ``split`` with ``SELECTION``'s setup."""
    cfg = SELECTION
    model = classifier(cfg["hidden"])
    return train.sweep(
        model,
        initial_params(cfg["hidden"], 0),
        split,
        key=jax.random.key(0),
        hp={"lr": cfg["lr"], "l1": 0.0, "l2": np.asarray(lams, np.float32)},
        epochs=cfg["epochs"],
        batch_size=int(split.x_train.shape[0]),
        optimizer=optimizer,
        penalty=penalty,
        project=prox_l1,
    )
