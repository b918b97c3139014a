r"""Chapter 04 (early stopping, noise, augmentation, max-norm): the chapter's helpers and panels.

- ``source1_early_stopping``: the JAX book chapter's early-stopping step, transcribed (it keeps the
  last weights: no restore, no ``min_delta``).
- Early stopping as L2 (Goodfellow et al. 2016, section 7.8): gradient descent from ``w = 0`` on
  ``f(w) = ||Xw - y||^2 / (2n)`` with rate ``eta`` for ``tau`` steps, and the ridge solution, in the
  eigenbasis of ``H = X^T X / n`` (eigenvalues ``s``). Along each eigenvector the least-squares
  solution is multiplied by a *filter factor*:

      gradient descent:  1 - (1 - eta s)^tau        ridge (lambda):  s / (s + lambda)

  Both are ~1 for ``s >> 1/(tau eta)`` and ~``tau eta s`` resp. ``s / lambda`` for small ``s``:
  they agree when ``lambda ~ 1 / (tau eta)``.
- Input noise as L2 (Bishop 1995): least squares on noisy copies of the inputs, ``x + eps`` with
  ``eps ~ N(0, sigma^2 I)``, has in expectation the loss ``||Xw - y||^2/(2n) + sigma^2 ||w||^2 / 2``.
- ``noisy_mlp``: an MLP with Gaussian noise on its hidden units (``hp["noise"]``).
- Panels: ``stopping_panel`` (patience and min_delta over a stored history) and ``sweep_panel``
  (a strength — hidden noise, augmentation shift, max-norm radius — over a stored sweep): both
  look results up, so a move trains and compiles nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, layers, stopping, viz
from lessonlib.models import Model, variance_scaling

# --------------------------------------------------------------------------- source 1's rule


def source1_early_stopping(validation_loss, patience, best_loss, counter):
    """The JAX book chapter's early stopping, as it is printed: one call per epoch.

    Returns ``(best_loss, counter, stop)``. It only says *when* to stop: the caller keeps training
    the same parameters, so the weights it ends with are the last epoch's.

    >>> source1_early_stopping(0.5, 2, 0.4, 1)
    (0.4, 2, True)
    """
    if validation_loss < best_loss:
        best_loss = validation_loss
        counter = 0
    else:
        counter += 1
    return best_loss, counter, counter >= patience


def source1_stop_epoch(values: Sequence[float], patience: int) -> int:
    """The epoch (0-based) after which a loop calling ``source1_early_stopping`` stops (-1: never).

    >>> source1_stop_epoch([3.0, 2.0, 2.5, 2.2, 1.0], patience=2)
    3
    """
    best, counter = float("inf"), 0
    for epoch, v in enumerate(values):
        best, counter, stop = source1_early_stopping(float(v), patience, best, counter)
        if stop:
            return epoch
    return -1


# --------------------------------------------------------------------------- early stopping = L2


def gd_filter(s, eta, tau):
    """Gradient descent's filter factor ``1 - (1 - eta s)^tau`` (``tau`` steps from 0)."""
    return 1.0 - (1.0 - eta * np.asarray(s, np.float64)) ** tau


def ridge_filter(s, lam):
    """Ridge's filter factor ``s / (s + lam)``."""
    s = np.asarray(s, np.float64)
    return s / (s + lam)


def gd_weights(X, y, *, eta: float, tau: int) -> np.ndarray:
    """``tau`` full-batch gradient-descent steps from ``w = 0`` on ``||Xw - y||^2 / (2n)``
    (float64, numpy: the reference the filter factors are checked against)."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    n = X.shape[0]
    w = np.zeros(X.shape[1])
    for _ in range(_checks.positive_int("tau", tau)):
        w -= eta * X.T @ (X @ w - y) / n
    return w


def ridge_weights(X, y, lam: float) -> np.ndarray:
    """The minimizer of ``||Xw - y||^2 / (2n) + lam ||w||^2 / 2``: ``(X^T X / n + lam I)^-1 X^T y / n``."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    n, d = X.shape
    return np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)


# --------------------------------------------------------------------------- input noise = L2


def noisy_least_squares(key: jax.Array, X, y, sigma: float, *, copies: int) -> np.ndarray:
    """Least squares on ``copies`` noisy copies of the inputs, solved exactly: the weights that
    training on input noise ``sigma`` (for ``copies`` passes over the data) converges to.

    Copy ``c`` has inputs ``X + sigma * eps_c`` with ``eps ~ N(0, I)`` drawn from ``key`` (one
    array of shape (copies, n, d)); the result is ``argmin_w sum_c ||(X + sigma eps_c) w - y||^2``.

    >>> X = np.eye(3)
    >>> w = noisy_least_squares(jax.random.key(0), X, np.ones(3), 0.0, copies=2)
    >>> np.round(w, 6).tolist()
    [1.0, 1.0, 1.0]
    """
    copies = _checks.positive_int("copies", copies)
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    eps = np.asarray(jax.random.normal(key, (copies, *X.shape), jnp.float32), np.float64)
    Xn = (X[None] + sigma * eps).reshape(-1, X.shape[1])
    return np.linalg.solve(Xn.T @ Xn, Xn.T @ np.tile(y, copies))


# --------------------------------------------------------------------------- hidden-unit noise


def noisy_mlp(sizes: Sequence[int]) -> Model:
    """An MLP (ReLU, He init) with Gaussian noise of standard deviation ``hp["noise"]`` added to
    every hidden layer's output during training (``layers.gaussian_noise``; off in evaluation).

    >>> m = noisy_mlp([4, 8, 3])
    >>> params, state = m.init(jax.random.key(0))
    >>> m.apply(params, state, jnp.ones((2, 4)), key=jax.random.key(1), train=True,
    ...         hp={"noise": 0.5})[0].shape
    (2, 3)
    """
    sizes = [_checks.positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        dense = [
            {"w": variance_scaling(k, fi, fo), "b": jnp.zeros(fo, jnp.float32)}
            for k, fi, fo in zip(keys, sizes[:-1], sizes[1:], strict=True)
        ]
        return {"dense": dense}, {}

    def apply(params, state, x, *, key=None, train=False, hp=None):
        hp = {} if hp is None else hp
        last = len(params["dense"]) - 1
        for i, layer in enumerate(params["dense"]):
            x = x @ layer["w"] + layer["b"][None, :]
            if i < last:
                x = jax.nn.relu(x)
                if train:  # without a key, gaussian_noise raises the error naming it
                    k = None if key is None else jax.random.fold_in(key, i)
                    x = layers.gaussian_noise(x, hp["noise"], key=k)
        return x, state

    return Model(init, apply, "xent")


def unit_norms(w) -> np.ndarray:
    """The norm of every unit's incoming weights: the columns of ``w`` (fan_in, fan_out)."""
    return np.linalg.norm(np.asarray(w, np.float64), axis=0)


# --------------------------------------------------------------------------- panels


def stopping_panel(
    history: Mapping[str, np.ndarray], *, patience: int = 10, min_delta: float = 0.0
) -> viz.Panel:
    """Sliders over ``patience`` and ``min_delta`` applied to a stored run's ``val_loss`` (the rule of
    ``train.early_stopping``: nothing is trained, the history is looked up). Left: validation and
    test loss, where the rule stops and which epoch it restores; right: the test accuracy of the
    last weights (no restore, as the JAX book chapter does) and of the restored ones."""
    val, test = np.asarray(history["val_loss"]), np.asarray(history["test_loss"])
    acc = np.asarray(history["test_acc"])
    epochs = np.arange(val.shape[0])
    fig, (ax, ax_acc) = viz.figure(2)
    ax.plot(epochs, val, color=viz.COLORS["val"], label="validation loss")
    ax.plot(epochs, test, color="0.5", lw=1, label="test loss")
    lo, hi = min(val.min(), test.min()), max(val.max(), test.max())
    ax.set(xlim=(0, epochs[-1]), ylim=(lo - 0.05 * (hi - lo), hi), xlabel="epoch", ylabel="loss")
    stop_line = ax.axvline(0, color="k", ls="--", animated=True, label="stop")
    best_line = ax.axvline(0, color=viz.COLORS["norm"], animated=True, label="restored")
    ax.legend(loc="upper right", fontsize=8)
    title = ax.set_title("", animated=True, fontsize=9)
    ax_acc.plot(epochs, acc, color=viz.COLORS["test"], lw=1)
    ax_acc.set(xlim=(0, epochs[-1]), xlabel="epoch", ylabel="test accuracy")
    (last_dot,) = ax_acc.plot([], [], "ko", animated=True, label="last weights")
    (best_dot,) = ax_acc.plot([], [], "o", color=viz.COLORS["norm"], animated=True, label="best")
    ax_acc.legend(loc="lower right", fontsize=8)
    acc_title = ax_acc.set_title("", animated=True, fontsize=9)

    def draw(patience, min_delta):
        stop, best = stopping.early_stopping(val, patience=int(patience), min_delta=min_delta)
        stop, best = int(stop), int(best)
        last = stop if stop >= 0 else epochs[-1]
        stop_line.set_xdata([last, last])
        best_line.set_xdata([best, best])
        last_dot.set_data([last], [acc[last]])
        best_dot.set_data([best], [acc[best]])
        where = f"stops after epoch {stop}" if stop >= 0 else "never stops"
        title.set_text(
            f"patience {int(patience)}, min_delta {min_delta:.4f}: {where}; restores {best}"
        )
        acc_title.set_text(f"test acc: last {acc[last]:.3f}, restored {acc[best]:.3f}")

    return viz.Panel(
        fig,
        draw,
        patience=viz.slider("patience", value=patience, min=0, max=40, step=1),
        min_delta=viz.slider("min_delta", value=min_delta, min=0.0, max=0.05, step=0.0025),
    )


def sweep_panel(
    history: Mapping[str, np.ndarray], values: Sequence[float], *, name: str, value: float
) -> viz.Panel:
    """A slider over the runs of a stored sweep (no training: instant). ``history["train_acc"]``,
    ``["val_acc"]`` and ``["test_acc"]`` have one row per entry of ``values`` (evenly spaced,
    increasing), the strength called ``name``. Left: the chosen run's curves; right: every run's
    final train and test accuracy, the chosen one marked."""
    values = [float(v) for v in values]
    steps = np.diff(values)
    if len(values) < 2 or not np.allclose(steps, steps[0]) or steps[0] <= 0:
        raise ValueError(f"values must be evenly spaced and increasing, got {values}")
    _checks.in_range("value", value, values[0], values[-1])
    tr, te = np.asarray(history["train_acc"]), np.asarray(history["test_acc"])
    epochs = np.arange(1, tr.shape[1] + 1)
    fig, (ax, ax_all) = viz.figure(2)
    ax.set(xlim=(1, epochs[-1]), ylim=(0, 1.02), xlabel="epoch", ylabel="accuracy")
    (line_tr,) = ax.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (line_te,) = ax.plot([], [], color=viz.COLORS["test"], label="test", animated=True)
    ax.legend(loc="lower right", fontsize=8)
    title = ax.set_title("", animated=True, fontsize=9)
    ax_all.plot(values, tr[:, -1], "o-", color=viz.COLORS["train"], label="train")
    ax_all.plot(values, te[:, -1], "o-", color=viz.COLORS["test"], label="test")
    ax_all.set(xlabel=name, ylabel="final accuracy", ylim=(0, 1.02))
    ax_all.legend(loc="lower left", fontsize=8)
    (marker,) = ax_all.plot([], [], "ks", ms=10, mfc="none", animated=True)

    def draw(**chosen):
        i = int(np.argmin(np.abs(np.asarray(values) - chosen[name])))
        line_tr.set_data(epochs, tr[i])
        line_te.set_data(epochs, te[i])
        marker.set_data([values[i]], [te[i, -1]])
        gap = tr[i, -1] - te[i, -1]
        title.set_text(f"{name} = {values[i]:g}: test {te[i, -1]:.3f}, gap {gap:.3f}")

    control = viz.slider(name, value=value, min=values[0], max=values[-1], step=float(steps[0]))
    return viz.Panel(fig, draw, **{name: control})
