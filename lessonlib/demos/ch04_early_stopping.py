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
- Live retraining (``LIVE``, ``live_fit``): a small MNIST-1D problem (200 training signals, 200
  validation signals, a 40-32-32-10 MLP with hidden noise, 25 epochs of two Adam steps) trained by
  ``train.fit`` with hidden noise ``sigma_h``, a random shift, a random time scaling and a
  max-norm radius ``r`` all traced ``hp`` entries: every setting runs the same compiled program,
  in a few tens of milliseconds.
- Panels: ``stopping_panel`` (patience and min_delta over a stored history: instant),
  ``retrain_panel`` (sigma_h, shift and scaling, retrained live) and ``max_norm_panel`` (the
  projection of a trained layer's unit norms onto radius ``r``, and the network retrained live
  under that constraint). No move compiles anything.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, augment, data, layers, optim, regularization, stopping, train, viz
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


# --------------------------------------------------------------------------- live retraining

#: The live panels' problem: the first ``n_train`` MNIST-1D training signals to train on and the
#: next ``n_val`` to validate on (they sit in the ``x_test``/``y_test`` slots of the Dataset, so
#: the history's ``test_*`` entries are the validation curves; the chapter's test split is not
#: touched). Small on purpose: one retraining must fit in a slider's 80 ms.
LIVE = {"n_train": 200, "n_val": 200, "sizes": (40, 32, 32, 10), "lr": 0.02, "epochs": 25,
        "batch_size": 100, "seed": 0}  # fmt: skip


NO_CAP = 1e6  # a max-norm radius no unit of the live network comes near: no constraint


@functools.cache
def live_data() -> data.Dataset:
    """``LIVE``'s training and validation signals (validation in the test slots)."""
    full, n, m = data.mnist1d(), LIVE["n_train"], LIVE["n_val"]
    return data.Dataset(full.x_train[:n], full.y_train[:n], full.x_train[n : n + m],
                        full.y_train[n : n + m])  # fmt: skip


def adam(hp) -> optim.GradientTransformation:
    """Adam with ``hp["lr"]`` (one function object: passing it again reuses the compilation)."""
    return optim.adam(hp["lr"])


def shift_and_scale(key: jax.Array, x: jax.Array, hp) -> jax.Array:
    """The live problem's augmentation: a random shift of at most ``hp["shift"]`` samples
    (zero-padded), then a random time scaling by a factor in ``1 +- hp["scale"]``, each signal
    its own draw (``augment.shift``, ``augment.scale``)."""
    k_shift, k_scale = jax.random.split(key)
    x = augment.shift(k_shift, x, hp["shift"], mode="pad")
    return augment.scale(k_scale, x, hp["scale"])


def project_max_norm(params, hp):
    """Max-norm with radius ``hp["r"]`` after every step (``regularization.max_norm``)."""
    return regularization.max_norm(params, hp["r"])


@functools.cache
def live_model() -> tuple[Model, object]:
    """The live problem's model (``noisy_mlp(LIVE["sizes"])``) and its initial parameters."""
    model = noisy_mlp(LIVE["sizes"])
    return model, model.init(jax.random.key(LIVE["seed"]))[0]


def live_fit(
    *, sigma_h: float = 0.0, shift: float = 0.0, scale: float = 0.0, r: float | None = None
) -> train.Run:
    """Train ``LIVE``'s network with hidden noise ``sigma_h``, random shifts up to ``shift``
    samples, random scaling by ``1 +- scale`` and max-norm radius ``r`` (``None``: off, a radius
    no unit reaches). All four are traced ``hp`` entries, so every call after the first reuses
    one compiled program.

    >>> run = live_fit(sigma_h=0.5, shift=3)
    >>> run.history["train_acc"].shape     # one entry per epoch; test_* is the validation split
    (25,)
    """
    _checks.non_negative("sigma_h", sigma_h)
    _checks.non_negative("shift", shift)
    _checks.in_range("scale", scale, 0.0, 1.0, hi_open=True)
    r = NO_CAP if r is None else _checks.positive("r", r)
    model, params = live_model()
    hp = {"lr": LIVE["lr"], "noise": sigma_h, "shift": shift, "scale": scale, "r": r}
    return train.fit(model, params, live_data(), key=jax.random.key(LIVE["seed"] + 1), hp=hp,
                     epochs=LIVE["epochs"], batch_size=LIVE["batch_size"], optimizer=adam,
                     augment=shift_and_scale, project=project_max_norm)  # fmt: skip


def gap(run: train.Run) -> float:
    """Final training accuracy minus final validation accuracy of a ``live_fit`` run."""
    return float(run.history["train_acc"][-1] - run.history["test_acc"][-1])


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


def _curves(ax, epochs: np.ndarray, baseline: Mapping[str, np.ndarray], *, key: str, ylabel: str):
    """Grey baseline (no regularization) and two animated curves, train and validation."""
    ax.plot(epochs, baseline[f"train_{key}"], color="0.8", lw=1, label="train, none")
    ax.plot(epochs, baseline[f"test_{key}"], color="0.6", lw=1, ls="--", label="validation, none")
    (tr,) = ax.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (va,) = ax.plot([], [], color=viz.COLORS["val"], label="validation", animated=True)
    ax.set(xlim=(1, epochs[-1]), xlabel="epoch", ylabel=ylabel)
    return tr, va


def _loss_and_accuracy_axes(fig_axes, baseline):
    """Left: loss curves (log scale); right: accuracy curves; both against the baseline run."""
    ax_loss, ax_acc = fig_axes
    epochs = np.arange(1, LIVE["epochs"] + 1)
    loss_lines = _curves(ax_loss, epochs, baseline, key="loss", ylabel="cross-entropy")
    ax_loss.set(yscale="log", ylim=(0.01, 12))
    ax_loss.legend(loc="lower left", fontsize=7)
    acc_lines = _curves(ax_acc, epochs, baseline, key="acc", ylabel="accuracy")
    ax_acc.set(ylim=(0, 1.02))
    titles = [ax.set_title("", animated=True, fontsize=9) for ax in fig_axes]
    return epochs, loss_lines, acc_lines, titles


def _show_run(run: train.Run, epochs, loss_lines, acc_lines, titles, label: str) -> None:
    h = run.history
    for (tr, va), key in ((loss_lines, "loss"), (acc_lines, "acc")):
        tr.set_data(epochs, viz.finite(h[f"train_{key}"]))
        va.set_data(epochs, viz.finite(h[f"test_{key}"]))
    titles[0].set_text(f"{label}: lowest val loss {np.min(h['test_loss']):.2f}")
    titles[1].set_text(f"val acc {h['test_acc'][-1]:.3f}, gap train - val {gap(run):.3f}")


def retrain_panel(*, sigma_h: float = 0.0, max_shift: float = 0.0, max_scale: float = 0.0):
    """Sliders over hidden noise ``sigma_h``, the augmentation's largest shift and its largest
    scaling; every move retrains ``live_fit`` (one compiled program) and redraws its train and
    validation loss (left) and accuracy (right) against the unregularized run in grey."""
    baseline = live_fit().history
    fig, axes = viz.figure(2)
    epochs, loss_lines, acc_lines, titles = _loss_and_accuracy_axes(axes, baseline)

    def draw(sigma_h, max_shift, max_scale):
        run = live_fit(sigma_h=sigma_h, shift=max_shift, scale=max_scale)
        # the settings are on the sliders: a short title (text is the slowest artist to draw)
        _show_run(run, epochs, loss_lines, acc_lines, titles, "retrained")

    return viz.Panel(
        fig,
        draw,
        sigma_h=viz.slider("sigma_h", value=sigma_h, min=0.0, max=2.0, step=0.25),
        max_shift=viz.slider("max shift", value=max_shift, min=0.0, max=12.0, step=1.0),
        max_scale=viz.slider("max scale", value=max_scale, min=0.0, max=0.5, step=0.05),
    )


def max_norm_panel(*, r: float = 1.0) -> viz.Panel:
    """A log slider over the max-norm radius ``r``. Left: the norms of the first hidden layer's
    units after unconstrained training (grey, sorted) and after projecting them onto radius ``r``
    (the projection alone: instant). Right: the validation and training loss of the network
    retrained with the constraint after every step (``live_fit(r=...)``), against no constraint."""
    _checks.positive("r", r)
    free = live_fit()
    norms = np.sort(unit_norms(free.params["dense"][0]["w"]))[::-1]
    units = np.arange(1, norms.size + 1)
    fig, (ax_n, ax_l) = viz.figure(2)
    ax_n.plot(units, norms, "o", color="0.6", ms=4, label="trained, no constraint")
    (after,) = ax_n.plot(
        [], [], "o", color=viz.COLORS["norm"], ms=3, label="projected", animated=True
    )
    cap = ax_n.axhline(0, color="k", ls="--", lw=1, animated=True)
    ax_n.set(xlim=(0, units[-1] + 1), ylim=(0, 1.05 * norms.max()), xlabel="hidden unit (sorted)",
             ylabel="norm of incoming weights")  # fmt: skip
    ax_n.legend(loc="upper right", fontsize=7)
    title_n = ax_n.set_title("", animated=True, fontsize=9)
    epochs = np.arange(1, LIVE["epochs"] + 1)
    loss_lines = _curves(ax_l, epochs, free.history, key="loss", ylabel="cross-entropy")
    ax_l.set(yscale="log", ylim=(0.01, 12))
    ax_l.legend(loc="lower left", fontsize=7)
    title_l = ax_l.set_title("", animated=True, fontsize=9)

    def draw(r):
        projected = unit_norms(regularization.max_norm(free.params["dense"][0]["w"], r))
        after.set_data(units, np.sort(projected)[::-1])
        cap.set_ydata([r, r])
        title_n.set_text(f"r = {r:.3g}: {int(np.sum(norms > r))} of {norms.size} units rescaled")
        h = live_fit(r=r).history
        loss_lines[0].set_data(epochs, viz.finite(h["train_loss"]))
        loss_lines[1].set_data(epochs, viz.finite(h["test_loss"]))
        title_l.set_text(
            f"retrained: val loss {h['test_loss'][-1]:.2f}, gap {h['train_acc'][-1] - h['test_acc'][-1]:.3f}"
        )

    return viz.Panel(fig, draw, r=viz.log_slider("r", value=r, min_exp=-0.6, max_exp=0.9))
