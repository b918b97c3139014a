"""Chapter 01 (weight decay): the 2-D playground, the lambda-selection problem and the slider panels.

A small MLP learns one of the toy problems of ``lessonlib.data.toy_2d`` (moons, circles, spiral)
with an optional penalty on its weights, in the spirit of TensorFlow Playground:

- ``soft_threshold`` / ``prox_l1``: the proximal step of the L1 penalty, which sets weights
  *exactly* to zero (plain subgradient steps on ``alpha * |w|`` only make them jitter around zero);
- ``penalty`` / ``project`` / ``optimizer``: the three functions handed to ``lessonlib.train.fit``,
  defined once at module level so every retraining reuses the same compiled run;
- ``train_classifier``: one playground run; every float setting (noise, lambda, L1 vs L2, learning
  rate, train share) is a traced value or only changes data values, so it never recompiles. The
  train share in particular does not change any shape: all ``n`` points are always in the arrays,
  and a 0/1 mask says which are training points (``padded_split``; the losses are masked means).
  Nor does the hidden-layer layout: every layout up to ``MAX_HIDDEN`` trains as one network of
  maximal shape whose unused units and layers are masked out (``layout_model``, ``pad_params``),
  so the first move to a new layout compiles nothing either (``compile_count`` counts);
- ``SELECTION``, ``selection_splits``, ``selection_sweep``: choosing lambda on a validation split
  (the notebook's exercise 4 and its grader use the same runs);
- ``lambda_panel`` and ``playground_panel``: the chapter's two slider panels.

Keys: a run seeded with ``seed`` splits ``jax.random.key(seed)`` into one key for the initial
weights and one for training (``run_keys``); no key is used for two draws.

References: Tibshirani 1996 (the lasso); Daubechies, Defrise & De Mol 2004 and Beck & Teboulle
2009 (iterative soft thresholding, ISTA); Smilkov & Carter, TensorFlow Playground (2016).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, data, layers, models, optim, regularization, train, viz

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
#: Every layout the playground trains fits in this one (at most three hidden layers of at most
#: 32 units): ``layout_model`` runs all of them as one compiled program.
MAX_HIDDEN = (32, 32, 32)


# --------------------------------------------------------------------------- proximal L1


def soft_threshold(w: jax.Array, t) -> jax.Array:
    r"""The proximal operator of ``t * |w|``: ``sign(w) * max(|w| - t, 0)``.

    .. math:: \operatorname{prox}_{t|\cdot|}(v) = \arg\min_w \tfrac12 (w - v)^2 + t|w|
              = \operatorname{sign}(v)\max(|v| - t, 0)

    Every entry with ``|w| <= t`` becomes exactly 0; the others move ``t`` towards zero.

    >>> soft_threshold(jnp.array([-2.0, -0.5, 0.0, 0.3, 1.5]), 1.0).tolist()
    [-1.0, -0.0, 0.0, 0.0, 0.5]
    """
    _checks.non_negative("t", t)
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
    _checks.one_of("reg", reg, REGULARIZERS)
    _checks.non_negative("lam", lam)
    return {"l1": lam if reg == "L1" else 0.0, "l2": lam if reg == "L2" else 0.0}


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(init_key, fit_key)``: ``jax.random.key(seed)`` split in two, one key per use.

    ``init_key`` draws the initial weights, ``fit_key`` drives training (``train.fit``'s shuffles
    and masks); the same key for both would correlate the two draws.
    """
    init_key, fit_key = jax.random.split(jax.random.key(_checks.integer("seed", seed)))
    return init_key, fit_key


@functools.cache
def classifier(hidden: tuple[int, ...]) -> models.Model:
    """The MLP ``2 -> hidden... -> 2`` (ReLU, He init); cached so a layout compiles only once.

    ``hidden=()`` is a linear classifier (logistic regression)."""
    hidden = tuple(_checks.positive_int("hidden width", h) for h in hidden)
    return models.mlp((2, *hidden, 2), activation="relu")


@functools.lru_cache(maxsize=128)
def dataset(name: str, noise: float, train_share: float, *, n: int = 200, seed: int = 0):
    """``data.toy_2d`` with its points cached per setting (arguments are validated there)."""
    return data.toy_2d(name, n, seed=seed, noise=float(noise), train_share=float(train_share))


@functools.lru_cache(maxsize=64)
def initial_params(hidden: tuple[int, ...], seed: int = 0):
    """The He-initialized weights of ``classifier(hidden)``, drawn with ``run_keys(seed)[0]``
    (cached)."""
    params, _ = classifier(tuple(hidden)).init(run_keys(seed)[0])
    return params


# --------------------------------------------------------------------------- one network for every layout


def layout_widths(hidden: Sequence[int]) -> np.ndarray:
    """``hidden`` as one width per layer of ``MAX_HIDDEN``, 0 for the layers it does not have.

    >>> layout_widths((16, 8)).tolist()
    [16.0, 8.0, 0.0]
    """
    hidden = tuple(hidden)
    _checks.in_range("len(hidden)", len(hidden), 1, len(MAX_HIDDEN))
    for i, (h, most) in enumerate(zip(hidden, MAX_HIDDEN, strict=False)):
        _checks.in_range(f"hidden[{i}]", _checks.positive_int(f"hidden[{i}]", h), 1, most)
    return np.asarray(hidden + (0,) * (len(MAX_HIDDEN) - len(hidden)), np.float32)


@functools.cache
def layout_model() -> models.Model:
    r"""The MLP ``2 -> 32 -> 32 -> 32 -> 2`` (``MAX_HIDDEN``) that runs as any smaller layout.

    ``hp["widths"]`` (a traced vector, one entry per hidden layer, see ``layout_widths``) says how
    many units each layer uses. As in ``models.mlp(masked_width=True)``, unit :math:`j` of layer
    :math:`i` is multiplied by :math:`1[j < w_i]`; a layer of width 0 is skipped (its input passes
    on unchanged). With the weights of ``pad_params`` (the narrow network's, zeros elsewhere) the
    output is the narrow ``classifier(hidden)``'s, and training keeps the padding at zero (masked
    units and skipped layers get zero gradients, and an L1/L2 penalty keeps a zero weight at zero),
    so every layout trains as the same compiled program: a new layout never compiles.

    >>> x = jnp.ones((3, 2))
    >>> narrow = initial_params((8, 8))
    >>> wide = pad_params(narrow, (8, 8))
    >>> out = layout_model().apply(wide, {}, x, hp={"widths": layout_widths((8, 8))})[0]
    >>> bool(jnp.allclose(out, classifier((8, 8)).apply(narrow, {}, x)[0], atol=1e-6))
    True
    """
    relu = layers.ACTIVATIONS["relu"]
    full = models.mlp((2, *MAX_HIDDEN, 2), activation="relu")

    def apply(params, state, x, *, key=None, train=False, hp=None):
        del key, train
        *hidden, out = params["dense"]
        for i, layer in enumerate(hidden):
            h = relu(x @ layer["w"] + layer["b"][None, :])
            units = jnp.arange(h.shape[-1], dtype=jnp.float32)
            h = h * (units < hp["widths"][i]).astype(h.dtype)[None, :]
            x = h if i == 0 else jnp.where(hp["widths"][i] > 0, h, x)
        return x @ out["w"] + out["b"][None, :], state

    return models.Model(full.init, apply, "xent")


def _layer_shapes(hidden: Sequence[int]) -> list[tuple[int, int]]:
    """``(fan_in, fan_out)`` of each ``layout_model`` layer that ``classifier(hidden)`` fills."""
    sizes = (2, *hidden)
    return [*zip(sizes[:-1], sizes[1:], strict=True), (sizes[-1], 2)]


def pad_params(params, hidden: Sequence[int]) -> dict:
    """``classifier(hidden)``'s weights in ``layout_model``'s shapes, zeros everywhere else
    (NumPy arrays: padding on the host compiles nothing)."""
    shapes, sizes = _layer_shapes(hidden), (2, *MAX_HIDDEN, 2)
    big = [
        {"w": np.zeros((fi, fo), np.float32), "b": np.zeros(fo, np.float32)}
        for fi, fo in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    slots = [*range(len(hidden)), len(MAX_HIDDEN)]  # hidden layers first, the output layer last
    for slot, (fi, fo), layer in zip(slots, shapes, params["dense"], strict=True):
        big[slot]["w"][:fi, :fo] = np.asarray(layer["w"])
        big[slot]["b"][:fo] = np.asarray(layer["b"])
    return {"dense": big}


def unpad_params(params, hidden: Sequence[int]) -> dict:
    """The inverse of ``pad_params``: the ``classifier(hidden)`` weights held in ``params``
    (NumPy slices on the host)."""
    dense = [{k: np.asarray(v) for k, v in layer.items()} for layer in params["dense"]]
    slots = [*range(len(hidden)), len(MAX_HIDDEN)]
    return {
        "dense": [
            {"w": dense[slot]["w"][:fi, :fo], "b": dense[slot]["b"][:fo]}
            for slot, (fi, fo) in zip(slots, _layer_shapes(hidden), strict=True)
        ]
    }


@functools.lru_cache(maxsize=64)
def padded_initial_params(hidden: tuple[int, ...], seed: int = 0):
    """``initial_params(hidden, seed)`` padded for ``layout_model`` and copied to the device
    (cached). Drawn by ``_he_init_on_host``: the same numbers."""
    return jax.device_put(pad_params(_he_init_on_host(hidden, seed), hidden))


def _he_init_on_host(hidden: tuple[int, ...], seed: int) -> dict:
    """``initial_params(hidden, seed)``, bit for bit (tested), with JAX drawing only the N(0, 1)
    numbers and NumPy doing the He scaling ``sqrt(2 / fan_in)`` and the zero biases: eagerly in
    JAX, that multiply and those zeros compile once per layer shape (~1 s for the seven layouts
    of ``ARCHITECTURES`` on a busy 2-core machine)."""
    sizes = (2, *hidden, 2)
    keys = jax.random.split(run_keys(seed)[0], len(sizes) - 1)  # as models.mlp's init splits
    dense = []
    for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
        z = np.asarray(jax.random.normal(k, (fan_in, fan_out), jnp.float32))
        dense.append(
            {"w": np.float32(math.sqrt(2.0 / fan_in)) * z, "b": np.zeros(fan_out, np.float32)}
        )
    return {"dense": dense}


class Result(NamedTuple):
    run: train.Run  # params (and opt_state) in the shapes of classifier(hidden)
    model: models.Model  # classifier(hidden)
    data: data.Dataset


class PaddedSplit(NamedTuple):
    """All ``n`` points of a split in fixed-size arrays; ``mask`` is 1 for the training rows."""

    x: jax.Array  # (n, 2)
    y: jax.Array  # (n,)
    mask: jax.Array  # (n,) float32: 1 = training point, 0 = test point


def padded_split(ds: data.Dataset) -> PaddedSplit:
    """The train and test rows of ``ds`` stacked into arrays of one size, with a training mask.

    Every train share of the same ``n`` points gives arrays of the same shapes, so the compiled
    training run is reused when the learner moves the train-share slider.

    >>> ps = padded_split(data.toy_2d("moons", 10, seed=0, train_share=0.3))
    >>> ps.x.shape, ps.mask.tolist()
    ((10, 2), [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    """
    k, n = ds.x_train.shape[0], ds.x_train.shape[0] + ds.x_test.shape[0]
    mask = (np.arange(n) < k).astype(np.float32)
    # stacked on the host and copied with device_put: an eager jnp.concatenate (or jnp.asarray
    # of a new shape) compiles once per train share
    x = np.concatenate([np.asarray(ds.x_train), np.asarray(ds.x_test)])
    y = np.concatenate([np.asarray(ds.y_train), np.asarray(ds.y_test)])
    return PaddedSplit(*jax.device_put((x, y, mask)))


def masked_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """``sum(w_i v_i) / sum(w_i)``: the mean over the rows with weight 1 (0 if there are none)."""
    return jnp.sum(weights * values) / jnp.maximum(jnp.sum(weights), 1.0)


def _metrics(model: models.Model, params, ps: PaddedSplit, weights: jax.Array, hp):
    logits, _ = model.apply(params, {}, ps.x, key=None, train=False, hp=hp)
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, ps.y[:, None], axis=-1)[:, 0]
    right = (jnp.argmax(logits, axis=-1) == ps.y).astype(jnp.float32)
    return masked_mean(nll, weights), masked_mean(right, weights)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fit_padded(model: models.Model, epochs: int, params, ps: PaddedSplit, hp):
    """Full-batch training on the rows with ``ps.mask == 1``: what ``train.fit`` does with
    ``batch_size`` = the number of training points, with the losses as masked means. ``hp`` also
    goes to ``model.apply`` (``layout_model`` reads its ``"widths"``)."""
    opt = optimizer(hp)

    def objective(p):
        logits, _ = model.apply(p, {}, ps.x, key=None, train=True, hp=hp)
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(logp, ps.y[:, None], axis=-1)[:, 0]
        return masked_mean(nll, ps.mask) + penalty(p, hp)

    def epoch(carry, _):
        p, opt_state = carry
        value, grads = jax.value_and_grad(objective)(p)
        updates, opt_state = opt.update(grads, opt_state, p)
        p = prox_l1(optim.apply_updates(p, updates), hp)
        train_loss, train_acc = _metrics(model, p, ps, ps.mask, hp)
        test_loss, test_acc = _metrics(model, p, ps, 1.0 - ps.mask, hp)
        row = {"train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc}
        row |= {"test_acc": test_acc, "w_norm": regularization.weight_norm(p)}
        return (p, opt_state), row | {"batch_loss": value[None]}

    (params, opt_state), history = jax.lax.scan(epoch, (params, opt.init(params)), None, epochs)
    return params, history, opt_state


def compile_count() -> int:
    """Compiled versions of the playground's run and of ``train``'s (``train.compile_count``)."""
    return train.compile_count() + _fit_padded._cache_size()


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
    """Train the playground MLP ``2 -> hidden... -> 2`` full-batch for ``epochs`` steps and return
    the run.

    Each epoch is one full-batch step of SGD with momentum on the mean cross-entropy over the
    training points (a masked mean over all ``n`` points, see ``padded_split``), plus
    ``lam/2 ||w||^2`` (``reg="L2"``), or followed by soft thresholding by ``lr * lam``
    (``reg="L1"``, proximal gradient). ``seed`` draws the data set and (through ``run_keys``) the
    initial weights; full-batch steps draw nothing else. Same arguments, same result, and the same
    numbers as ``train.fit`` on the training rows alone (tested). ``hidden`` is 1 to 3 layers of at
    most 32 units (``MAX_HIDDEN``); every such layout trains as ``layout_model`` (one compiled run)
    and the result holds ``classifier(hidden)`` and its weights.

    >>> res = train_classifier("moons", noise=0.1, hidden=(8,), reg="none", lam=0.0, epochs=50)
    >>> res.run.history["train_loss"].shape, res.run.params["dense"][0]["w"].shape
    ((50,), (2, 8))
    """
    _checks.positive("lr", lr)
    epochs = _checks.positive_int("epochs", epochs)
    hidden = tuple(hidden)
    ds = dataset(name, float(noise), float(train_share), n=n, seed=seed)
    hp = {k: jnp.float32(v) for k, v in {"lr": lr, **reg_hp(reg, lam)}.items()}
    hp["widths"] = jax.device_put(layout_widths(hidden))
    params = padded_initial_params(hidden, seed)
    params, history, opt_state = _fit_padded(layout_model(), epochs, params, padded_split(ds), hp)
    narrow = functools.partial(unpad_params, hidden=hidden)  # NumPy slices: nothing compiles
    opt_state = jax.tree.map(narrow, opt_state, is_leaf=lambda t: isinstance(t, dict))
    run = train.Run(narrow(params), {}, jax.tree.map(np.asarray, history), opt_state)
    return Result(run, classifier(hidden), ds)


# --------------------------------------------------------------------------- prediction


@functools.partial(jax.jit, static_argnums=0)
def _proba(model: models.Model, params, x: jax.Array, hp) -> jax.Array:
    logits, _ = model.apply(params, {}, x, key=None, train=False, hp=hp)
    return jax.nn.softmax(logits, axis=-1)[:, 1]


def grid(lim: float = 2.0, steps: int = 64) -> jax.Array:
    """``steps * steps`` points covering ``[-lim, lim]^2``, row by row from the bottom (for imshow
    with ``origin="lower"``)."""
    _checks.positive("lim", lim)
    _checks.integer("steps", steps, min_value=2)
    g = jnp.linspace(-lim, lim, steps, dtype=jnp.float32)
    gx, gy = jnp.meshgrid(g, g)
    return jnp.stack([gx.ravel(), gy.ravel()], axis=1)


def predict_proba(model: models.Model, params, x, *, hp: Mapping | None = None) -> np.ndarray:
    """P(class 1) for every row of ``x`` (jitted per model; ``hp`` goes to ``model.apply``)."""
    return np.asarray(_proba(model, params, jnp.asarray(x, jnp.float32), {} if hp is None else hp))


# --------------------------------------------------------------------------- choosing lambda

#: The lambda-selection problem of chapter 01: noisy moons, 60 points to train on, 60 to validate
#: on and 400 to test on, the playground MLP 2-32-32-2 trained full-batch with an L2 penalty.
#: ``seed`` draws the points; ``run_seed`` the initial weights and the training key (``run_keys``).
SELECTION = {
    "name": "moons",
    "noise": 0.3,
    "seed": 3,
    "run_seed": 0,
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
    """One ``train.sweep`` over the L2 strengths ``lams`` on ``split`` with ``SELECTION``'s setup
    (the notebook's exercise 4 runs the same sweep from the same keys)."""
    cfg = SELECTION
    return train.sweep(
        classifier(cfg["hidden"]),
        initial_params(cfg["hidden"], cfg["run_seed"]),
        split,
        key=run_keys(cfg["run_seed"])[1],
        hp={"lr": cfg["lr"], "l1": 0.0, "l2": np.asarray(lams, np.float32)},
        epochs=cfg["epochs"],
        batch_size=int(split.x_train.shape[0]),
        optimizer=optimizer,
        penalty=penalty,
        project=prox_l1,
    )


@functools.cache
def selection_losses() -> dict[str, np.ndarray]:
    """Final train / validation / test losses of ``SELECTION`` for every lambda (float64, cached).

    One sweep on ``train_val``; the test losses are the same trained networks scored on the test
    split (the two splits train on the same points from the same keys), so nothing is trained
    twice. Exercise 4's grader and the chapter's plot read the same numbers.
    """
    train_val, train_test = selection_splits()
    lams = SELECTION["lams"]
    run = selection_sweep(train_val, lams)
    model = classifier(SELECTION["hidden"])

    def final_loss(params):  # the data loss on the test split, as fit reports it
        logits, _ = model.apply(params, {}, train_test.x_test, train=False)
        return train.cross_entropy(logits, train_test.y_test)

    return {
        "lams": np.asarray(lams, np.float64),
        "train": np.asarray(run.history["train_loss"][:, -1], np.float64),
        "val": np.asarray(run.history["test_loss"][:, -1], np.float64),
        "test": np.asarray(jax.vmap(final_loss)(run.params), np.float64),
    }


# --------------------------------------------------------------------------- panels


def lambda_panel(
    fit: Callable[[float], train.Run],
    baseline: Mapping[str, np.ndarray],
    *,
    lam: float = 3.0,
    min_exp: float = -3,
    max_exp: float = 2,
) -> viz.Panel:
    """A log slider over lambda: ``fit(lam)`` retrains, the panel redraws the train/test loss (left)
    and ``||w||`` (right) per epoch. ``baseline`` (the lambda = 0 history) is drawn in grey."""
    _checks.positive("lam", lam)
    base_test, base_norm = np.asarray(baseline["test_loss"]), np.asarray(baseline["w_norm"])
    epochs = np.arange(1, len(base_test) + 1)
    fig, (ax_loss, ax_norm) = viz.figure(2)
    ax_loss.plot(epochs, base_test, color="0.75", lw=1, label="test, lambda = 0")
    (line_train,) = ax_loss.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (line_test,) = ax_loss.plot([], [], color=viz.COLORS["test"], label="test", animated=True)
    ax_loss.set(yscale="log", xlim=(1, epochs[-1]), ylim=(1e-7, 1e3), xlabel="epoch", ylabel="loss")
    ax_loss.legend(loc="lower left", fontsize=8)
    loss_title = ax_loss.set_title("", animated=True)
    (line_norm,) = ax_norm.plot([], [], color=viz.COLORS["norm"], animated=True)
    ax_norm.set(xlim=(1, epochs[-1]), ylim=(0, 1.1 * float(base_norm.max())))
    ax_norm.set(xlabel="epoch", ylabel="||w||")
    norm_title = ax_norm.set_title("", animated=True)

    def draw(lam):
        h = fit(lam).history
        line_train.set_data(epochs, viz.finite(h["train_loss"]))
        line_test.set_data(epochs, viz.finite(h["test_loss"]))
        line_norm.set_data(epochs, h["w_norm"])
        loss_title.set_text(f"lambda = {lam:.3g}: test loss {h['test_loss'][-1]:.3g}")
        norm_title.set_text(f"||w|| = {h['w_norm'][-1]:.3g}")

    control = viz.log_slider("lambda", value=lam, min_exp=min_exp, max_exp=max_exp)
    return viz.Panel(fig, draw, lam=control)


def playground_panel(*, epochs: int = 100, steps: int = 64, lim: float = 2.0) -> viz.Panel:
    """The TensorFlow-Playground-style panel: data set, noise, train share, hidden layers, penalty
    and lambda. Each change retrains ``train_classifier`` for ``epochs`` full-batch steps; the left
    plot shows P(class 1) on a ``steps x steps`` grid over ``[-lim, lim]^2`` with the training
    points (large, black edges) and test points (small, white edges), the right plot the losses."""
    epochs = _checks.positive_int("epochs", epochs)
    points = grid(lim, steps)
    controls = dict(
        dataset=widgets.Dropdown(options=list(data.TOY_2D), value="moons", description="data"),
        noise=viz.slider("noise", value=0.25, min=0.0, max=0.5, step=0.05),
        train_share=viz.slider("train share", value=0.3, min=0.1, max=0.9, step=0.1),
        hidden=widgets.Dropdown(options=list(ARCHITECTURES), value="32-32", description="hidden"),
        reg=widgets.ToggleButtons(options=list(REGULARIZERS), value="L2", description="penalty"),
        lam=viz.log_slider("lambda", value=1e-3, min_exp=-4, max_exp=0),
    )
    # What the dropdowns offer, prepared now (data, like the grid): every data set at the starting
    # noise and train share, and every layout's initial weights. The first draw of a data set runs
    # its jitted generator, a layout's weights eager ops that compile once per shape: 0.1-0.2 s
    # the first time a learner picks one.
    for name in data.TOY_2D:
        dataset(name, controls["noise"].value, controls["train_share"].value)
    for layout in ARCHITECTURES.values():
        padded_initial_params(layout, 0)
    fig, (ax_b, ax_l) = viz.figure(2, height=3.4)
    image = ax_b.imshow(
        np.zeros((steps, steps)),
        origin="lower",
        extent=(-lim, lim, -lim, lim),
        cmap="RdBu_r",
        vmin=0,
        vmax=1,
        alpha=0.75,
        animated=True,
    )
    style = {"cmap": "RdBu_r", "vmin": 0, "vmax": 1, "animated": True}
    zero = np.zeros(1)
    train_pts = ax_b.scatter(zero, zero, c=zero, s=16, edgecolors="k", linewidths=0.6, **style)
    test_pts = ax_b.scatter(zero, zero, c=zero, s=7, edgecolors="w", linewidths=0.4, **style)
    ax_b.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    title = ax_b.set_title("", animated=True, fontsize=9)
    steps_axis = np.arange(1, epochs + 1)
    (line_train,) = ax_l.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (line_test,) = ax_l.plot([], [], color=viz.COLORS["test"], label="test", animated=True)
    ax_l.set(yscale="log", xlim=(1, epochs), ylim=(3e-3, 3))
    ax_l.set(xlabel="full-batch step", ylabel="cross-entropy")
    ax_l.legend(loc="lower left", fontsize=8)
    loss_title = ax_l.set_title("", animated=True, fontsize=9)

    def draw(dataset, noise, train_share, hidden, reg, lam):
        layout = ARCHITECTURES[hidden]
        res = train_classifier(
            dataset,
            noise=noise,
            train_share=train_share,
            hidden=layout,
            reg=reg,
            lam=lam,
            epochs=epochs,
        )
        h, ds = res.run.history, res.data
        # the grid through layout_model, as trained: classifier(layout) would compile per layout
        wide, widths = pad_params(res.run.params, layout), {"widths": layout_widths(layout)}
        image.set_data(predict_proba(layout_model(), wide, points, hp=widths).reshape(steps, steps))
        train_pts.set_offsets(np.asarray(ds.x_train))
        train_pts.set_array(np.asarray(ds.y_train, np.float32))
        test_pts.set_offsets(np.asarray(ds.x_test))
        test_pts.set_array(np.asarray(ds.y_test, np.float32))
        line_train.set_data(steps_axis, viz.finite(h["train_loss"]))
        line_test.set_data(steps_axis, viz.finite(h["test_loss"]))
        zeros, total = count_zeros(res.run.params)
        title.set_text(f"zero weights {zeros}/{total}")  # short: the settings are on the controls
        loss_title.set_text(f"train acc {h['train_acc'][-1]:.2f}, test acc {h['test_acc'][-1]:.2f}")

    return viz.Panel(fig, draw, **controls)
