"""Chapter 02 (dropout): Monte Carlo dropout and the chapter's two slider panels.

MC dropout (Gal & Ghahramani 2016) keeps dropout ON at prediction time and averages the softmax
outputs of T stochastic passes, each with its own mask (pass ``t`` uses the key
``fold_in(key, t)``):

    p(y | x) ~= (1/T) sum_t softmax(f(x; mask_t)).

The predictive entropy ``H = -sum_c p_c log p_c`` of the averaged distribution is the
uncertainty chapter 02 plots, next to its free baseline, the entropy of the deterministic
(evaluation-mode) network's softmax. Only
chapter 02 uses these helpers, so they live here rather than in ``layers``/``models``.

Panels: ``sweep_panel`` (a slider over the dropout rates of a stored sweep: instant) and
``live_panel`` (retrains a small network on a 2-D problem at every move: p is a traced value, so
nothing recompiles). The stored sweeps themselves are cached with ``lessonlib.cache.cached``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, train, viz
from lessonlib.data import Dataset
from lessonlib.models import Model

# --------------------------------------------------------------------------- MC dropout


def mc_dropout_probs(
    model: Model,
    params,
    x: jax.Array,
    *,
    key: jax.Array,
    hp: Mapping[str, float],
    passes: int = 100,
    state=None,
) -> jax.Array:
    """Softmax outputs of ``passes`` stochastic forward passes, shape (passes, n, classes).

    Pass ``t`` runs ``model.apply(..., train=True)`` with key ``fold_in(key, t)``, so every pass
    draws a fresh dropout mask. Only use this with models whose ``train=True`` differs from eval
    mode by dropout alone (batch norm would switch to batch statistics as well).

    >>> from lessonlib import models
    >>> m = models.mlp([3, 8, 2], dropout=True)
    >>> params, _ = m.init(jax.random.key(0))
    >>> mc_dropout_probs(m, params, jnp.ones((5, 3)), key=jax.random.key(1), hp={"dropout": 0.5},
    ...                  passes=4).shape
    (4, 5, 2)
    """
    passes = _checks.positive_int("passes", passes)
    key = _checks.prng_key("key", key)
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
    state = {} if state is None else state

    def one(t):
        out, _ = model.apply(params, state, x, key=jax.random.fold_in(key, t), train=True, hp=hp)
        return jax.nn.softmax(out, axis=-1)

    return jax.lax.map(one, jnp.arange(passes), batch_size=min(passes, 25))


def running_mean_accuracy(probs: jax.Array, labels: jax.Array) -> np.ndarray:
    """Accuracy of the average of the first T passes, for T = 1 .. passes (shape (passes,)).

    ``probs`` has shape (passes, n, classes): ``mean(probs[:T], 0).argmax(-1) == labels``.

    >>> p = np.array([[[0.9, 0.1]], [[0.0, 1.0]], [[0.0, 1.0]]])  # 3 passes, 1 example, 2 classes
    >>> running_mean_accuracy(p, np.array([1])).tolist()  # means: 0.1, 0.55, 0.7 for class 1
    [0.0, 1.0, 1.0]
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 3:
        raise ValueError(f"probs must have shape (passes, n, classes), got {probs.shape}")
    running = np.cumsum(probs, axis=0) / np.arange(1, probs.shape[0] + 1)[:, None, None]
    return (running.argmax(-1) == np.asarray(labels)[None, :]).mean(axis=1)


def predictive_entropy(p: jax.Array) -> np.ndarray:
    """``H(p) = -sum_c p_c log p_c`` in nats along the last axis (0 log 0 taken as 0).

    >>> np.round(predictive_entropy(np.array([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])), 4).tolist()
    [0.6931, 1.0986]
    """
    p = np.asarray(p, np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


# --------------------------------------------------------------------------- panels


def sweep_panel(
    history: Mapping[str, np.ndarray], rates: Sequence[float], *, p: float = 0.5
) -> viz.Panel:
    """A slider over the dropout rates of a stored sweep (no training: instant).

    ``history["train_acc"]`` and ``history["test_acc"]`` have one row per rate in ``rates``
    (evenly spaced, increasing) and one column per epoch. Left: the curves of the chosen rate;
    right: the final accuracies of every rate, the chosen one marked.
    """
    rates = [float(r) for r in rates]
    steps = np.diff(rates)
    if len(rates) < 2 or not np.allclose(steps, steps[0]) or steps[0] <= 0:
        raise ValueError(f"rates must be at least two evenly spaced increasing values, got {rates}")
    _checks.in_range("p", p, rates[0], rates[-1])
    train_acc, test_acc = np.asarray(history["train_acc"]), np.asarray(history["test_acc"])
    epochs = np.arange(1, train_acc.shape[1] + 1)
    fig, (ax_curve, ax_p) = viz.figure(2)
    ax_curve.set(xlim=(1, epochs[-1]), ylim=(0, 1.02), xlabel="epoch", ylabel="accuracy")
    (line_train,) = ax_curve.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (line_test,) = ax_curve.plot([], [], color=viz.COLORS["test"], label="test", animated=True)
    ax_curve.legend(loc="lower right")
    title = ax_curve.set_title("", animated=True)
    ax_p.plot(rates, train_acc[:, -1], "o-", color=viz.COLORS["train"], label="train")
    ax_p.plot(rates, test_acc[:, -1], "o-", color=viz.COLORS["test"], label="test")
    ax_p.set(xlabel="dropout rate p", ylabel="final accuracy", ylim=(0, 1.02))
    ax_p.set_title(f"after {epochs[-1]} epochs")
    ax_p.legend(loc="lower left")
    (marker,) = ax_p.plot([], [], "ks", ms=10, mfc="none", animated=True)

    def draw(p):
        i = int(np.argmin(np.abs(np.asarray(rates) - p)))
        line_train.set_data(epochs, train_acc[i])
        line_test.set_data(epochs, test_acc[i])
        marker.set_data([rates[i]], [test_acc[i, -1]])
        title.set_text(f"p = {rates[i]:.1f}: test {test_acc[i, -1]:.3f}")

    control = viz.slider("p", value=p, min=rates[0], max=rates[-1], step=float(steps[0]))
    return viz.Panel(fig, draw, p=control)


@functools.partial(jax.jit, static_argnums=0)
def _proba(model: Model, params, x: jax.Array) -> jax.Array:
    """P(class 1) in evaluation mode (dropout off)."""
    logits, _ = model.apply(params, {}, x, key=None, train=False, hp={"dropout": 0.0})
    return jax.nn.softmax(logits, axis=-1)[:, 1]


def live_panel(
    fit: Callable[[float], train.Run],
    ds: Dataset,
    model: Model,
    *,
    epochs: int,
    p: float = 0.0,
    lim: float = 1.8,
    steps: int = 40,
) -> viz.Panel:
    """A slider over the dropout rate that retrains at every move: ``fit(p)`` returns the run of
    ``model`` on the 2-D problem ``ds`` (``epochs`` entries of history). Left: the training points
    over P(class 1) on a ``steps x steps`` grid covering ``[-lim, lim]^2``; right: train/test
    accuracy per epoch (one full-batch step each in the chapter)."""
    epochs = np.arange(1, _checks.positive_int("epochs", epochs) + 1)
    _checks.in_range("p", p, 0.0, 1.0, hi_open=True)
    _checks.positive("lim", lim)
    steps = _checks.integer("steps", steps, min_value=2)
    g = np.linspace(-lim, lim, steps, dtype=np.float32)
    points = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    fig, (ax_b, ax_c) = viz.figure(2)
    image = ax_b.imshow(
        np.zeros((steps, steps)),
        extent=(-lim, lim, -lim, lim),
        origin="lower",
        cmap="RdBu_r",
        vmin=0,
        vmax=1,
        alpha=0.6,
        animated=True,
    )
    x, y = np.asarray(ds.x_train), np.asarray(ds.y_train)
    ax_b.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=18)
    ax_b.set(xlim=(-lim, lim), ylim=(-lim, lim), title="training points and P(class 1)")
    (line_train,) = ax_c.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (line_test,) = ax_c.plot([], [], color=viz.COLORS["test"], label="test", animated=True)
    ax_c.set(xlim=(1, epochs[-1]), ylim=(0.4, 1.02), xlabel="step", ylabel="accuracy")
    ax_c.legend(loc="lower right")
    title = ax_c.set_title("", animated=True)

    def draw(p):
        run = fit(p)
        h = run.history
        image.set_data(np.asarray(_proba(model, run.params, points)).reshape(steps, steps))
        line_train.set_data(epochs, h["train_acc"])
        line_test.set_data(epochs, h["test_acc"])
        title.set_text(f"p = {p:.2f}: train {h['train_acc'][-1]:.2f}, test {h['test_acc'][-1]:.2f}")

    return viz.Panel(fig, draw, p=viz.slider("p", value=p, min=0.0, max=0.9, step=0.05))
