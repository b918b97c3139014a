"""Chapter 03 (batch normalization): momentum conventions, ghost batches and the slider panels.

- ``running_average``: the running mean a framework keeps, for either momentum convention
  (keep rate as in lessonlib/Keras/Flax, update rate as in PyTorch).
- ``ghost_batch_norm`` and ``ghost_bn_mlp``: batch normalization whose statistics come from groups
  of ``group`` examples inside a larger batch (Hoffer et al. 2017, "ghost batch normalization").
  The group size is a traced hyperparameter, so one compiled ``train.sweep`` trains a network for
  every batch size 2..256 at once; the gradient still averages the whole batch, which isolates
  what BN's *statistics* do at a given batch size.
- ``batch_size_panel`` and ``lr_panel``: the chapter's slider panels (importable, so the benchmark
  builds them without running the notebook).

Keys: ``batch_size_sweep`` splits ``jax.random.key(seed)`` into one key for the initial weights and
one for training. The two networks of the learning-rate panel start from the *same* key on purpose
(same initial weights for the hidden layer, a fair comparison), and train with the same key (the
same shuffles).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, layers, models, train, viz
from lessonlib.data import Dataset

# The chapter's settings (the notebook and ``benchmarks/ch03.py`` both read them).
LR_SIZES = (64, 64, 10)  # digits MLP of the learning-rate panel and the before/after comparison
LR_EPOCHS, LR_BATCH = 3, 64
BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)  # statistics batch sizes of the batch-size panel
SWEEP = {"hidden": (64,), "epochs": 20, "lr": 0.3}


# --------------------------------------------------------------------------- momentum conventions


def running_average(
    batch_values: Sequence[float], *, momentum: float, convention: str = "keep", start: float = 0.0
) -> np.ndarray:
    """The running average after each step, for one of the two momentum conventions.

    - ``convention="keep"`` (lessonlib, Keras, Flax, and the JAX-book chapter's formula):
      ``avg <- momentum * avg + (1 - momentum) * batch``  (momentum ~ 0.9 .. 0.99)
    - ``convention="update"`` (PyTorch's ``BatchNorm1d(momentum=0.1)``):
      ``avg <- (1 - momentum) * avg + momentum * batch``

    so PyTorch's ``momentum=0.1`` is the keep-rate convention's ``momentum=0.9``.
    Returns a float64 array of the average after steps 1..k.

    >>> running_average([1.0, 1.0], momentum=0.9).round(6).tolist()  # 0.1 * 1, 0.9 * 0.1 + 0.1 * 1
    [0.1, 0.19]
    >>> running_average([1.0, 1.0], momentum=0.1, convention="update").round(6).tolist()
    [0.1, 0.19]
    """
    _checks.one_of("convention", convention, ("keep", "update"))
    _checks.in_range("momentum", momentum, 0.0, 1.0)
    _checks.finite("start", start)
    keep = momentum if convention == "keep" else 1.0 - momentum
    avg, out = float(start), []
    for b in batch_values:
        avg = keep * avg + (1.0 - keep) * float(b)
        out.append(avg)
    return np.asarray(out, np.float64)


# --------------------------------------------------------------------------- ghost batch norm


def _group_ids(n: int, group) -> jax.Array:
    """Group index of each of ``n`` rows for groups of ``group`` consecutive rows (traceable)."""
    rows = jnp.arange(n, dtype=jnp.float32)
    return jnp.floor(rows / jnp.asarray(group, jnp.float32)).astype(jnp.int32)


def _group_mean(v: jax.Array, ids: jax.Array) -> jax.Array:
    """Each row replaced by the mean of its group (O(n F), no (n, n) matrix)."""
    n = v.shape[0]
    sums = jax.ops.segment_sum(v, ids, num_segments=n)
    counts = jax.ops.segment_sum(jnp.ones((n, 1), v.dtype), ids, num_segments=n)
    return (sums / jnp.maximum(counts, 1))[ids]


def ghost_batch_norm(
    params: dict, state: dict, x: jax.Array, *, group, train: bool, momentum=0.9, eps=1e-5
):
    """Batch norm over a 2-D ``x`` (batch, features) whose statistics come from groups of ``group``.

    In training mode example ``i`` of group ``g`` (rows ``g*group .. (g+1)*group - 1``) is
    normalized with that group's mean and biased variance:

        y_i = gamma * (x_i - mu_g) / sqrt(var_g + eps) + beta

    exactly what ``layers.batch_norm`` computes for a batch of ``group`` examples. The running
    averages move towards the mean of the group means and of the group variances (keep-rate
    ``momentum``). Evaluation mode is ``layers.batch_norm(..., train=False)``. ``group`` may be
    traced; it must divide the batch (use powers of two). With ``group = len(x)`` this is plain BN.
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape (batch, features), got {x.shape}")
    if not train:
        return layers.batch_norm(params, state, x, train=False, momentum=momentum, eps=eps)
    _checks.check(
        "group",
        group,
        lambda g: g >= 2 and g == int(g) and x.shape[0] % int(g) == 0,
        f"an integer >= 2 that divides the batch ({x.shape[0]})",
    )
    ids = _group_ids(x.shape[0], group)
    mean = _group_mean(x, ids)
    var = _group_mean(jnp.square(x - mean), ids)
    y = (x - mean) * jax.lax.rsqrt(var + jnp.asarray(eps, x.dtype))
    y = params["gamma"][None, :] * y + params["beta"][None, :]
    m = jnp.asarray(momentum, x.dtype)
    new_state = {
        "mean": m * state["mean"] + (1 - m) * jax.lax.stop_gradient(jnp.mean(mean, axis=0)),
        "var": m * state["var"] + (1 - m) * jax.lax.stop_gradient(jnp.mean(var, axis=0)),
    }
    return y, new_state


@functools.cache
def ghost_bn_mlp(sizes: tuple[int, ...]) -> models.Model:
    """``models.mlp(sizes, batch_norm="before")`` with ghost batches of ``hp["group"]`` examples.

    Linear (no bias) -> ghost BN -> ReLU for every hidden layer, then a linear output layer; the
    parameters and state have the same structure as ``models.mlp``'s.
    """
    base = models.mlp(sizes, batch_norm="before")
    n_hidden = len(sizes) - 2

    def apply(params, state, x, *, key=None, train=False, hp=None):
        del key
        hp = {} if hp is None else hp  # an empty mapping is a valid hp
        new_bn = []
        for i, layer in enumerate(params["dense"]):
            x = x @ layer["w"]
            if i == n_hidden:
                return x + layer["b"][None, :], {"bn": new_bn}
            x, s = ghost_batch_norm(
                params["bn"][i],
                state["bn"][i],
                x,
                group=hp.get("group", x.shape[0]),
                train=train,
                momentum=hp.get("bn_momentum", 0.9),
            )
            new_bn.append(s)
            x = jax.nn.relu(x)
        raise AssertionError("unreachable")

    return models.Model(base.init, apply, "xent")


def batch_size_sweep(
    ds: Dataset,
    sizes: Sequence[int],
    *,
    hidden: Sequence[int] = (64, 64),
    batch: int = 256,
    epochs: int = 30,
    lr: float = 0.1,
    seed: int = 0,
) -> train.Run:
    """Train one ghost-BN network per statistics batch size in ``sizes``: one vmapped call.

    Every run takes minibatches of ``batch`` examples (the same shuffles, the same initial
    weights) and normalizes them in groups of ``sizes[k]``. History rows follow ``sizes``. The
    initial weights and the training key are split from ``jax.random.key(seed)``.
    """
    batch = _checks.positive_int("batch", batch)
    sizes = [_checks.integer("sizes[k]", s, min_value=2) for s in sizes]
    if not sizes or any(batch % s for s in sizes):
        raise ValueError(f"sizes must be integers >= 2 dividing batch={batch}, got {sizes}")
    _checks.positive("lr", lr)
    model = ghost_bn_mlp((int(ds.x_train.shape[1]), *map(int, hidden), 10))
    init_key, fit_key = jax.random.split(jax.random.key(seed))
    params, state = model.init(init_key)
    return train.sweep(
        model,
        params,
        ds,
        state=state,
        key=fit_key,
        hp={"lr": lr, "group": np.asarray(sizes, np.float32)},
        epochs=epochs,
        batch_size=batch,
    )


def batch_mean_samples(
    ds: Dataset, run: train.Run, sizes: Sequence[int], *, unit: int = 0, n: int = 400, seed: int = 0
) -> dict:
    """Batch means of one fixed feature over ``n`` random batches of each size in ``sizes``.

    The feature is hidden unit ``unit`` of the first layer, before BN, of the last run of the sweep
    (the same feature for every size, so the spreads compare). Batches are drawn without
    replacement from the N training examples, so the spread of the batch mean is

        sd(batch mean) = sd(feature) * sqrt((N - B) / ((N - 1) B))

    (returned as ``"theory"``). Plain numpy, computed once.
    """
    n = _checks.positive_int("n", n)
    x = np.asarray(ds.x_train, np.float64)
    h = x @ np.asarray(run.params["dense"][0]["w"][-1], np.float64)[:, unit]
    rng = np.random.default_rng(seed)
    means, theory = [], []
    for size in sizes:
        idx = np.stack([rng.choice(len(x), size, replace=False) for _ in range(n)])
        means.append(h[idx].mean(axis=1))
        theory.append(h.std() * np.sqrt((len(x) - size) / ((len(x) - 1) * size)))
    return {"batch_means": means, "data_mean": float(h.mean()), "theory": np.asarray(theory)}


def epoch_train_mode_loss(history: dict) -> np.ndarray:
    """Per-epoch mean of the training objective, computed in train mode (batch statistics)."""
    return np.asarray(history["batch_loss"], np.float64).mean(axis=-1)


# --------------------------------------------------------------------------- panels


def batch_size_panel(ds: Dataset, run: train.Run, sizes: Sequence[int], samples: dict) -> viz.Panel:
    """Slider over the precomputed batch sizes: noise of batch means (left), train/eval gap (right)."""
    sizes = [int(s) for s in sizes]
    h = run.history
    train_mode = epoch_train_mode_loss(h)
    epochs = np.arange(1, train_mode.shape[1] + 1)
    fig, (ax_h, ax_l) = viz.figure(2)

    all_means = np.concatenate(samples["batch_means"])
    lo, hi = np.percentile(all_means, [0.5, 99.5])
    edges = np.linspace(lo, hi, 41)
    hist = ax_h.stairs(np.zeros(40), edges, fill=True, alpha=0.6, animated=True)
    ax_h.axvline(samples["data_mean"], color="k", lw=1, label="mean over all training data")
    ax_h.set_xlim(lo, hi)
    ax_h.set_ylim(0, 0.6)
    ax_h.set_xlabel("batch mean of hidden unit 0 (before BN)")
    ax_h.title.set_fontsize(10)
    ax_h.set_ylabel("share of 400 batches")
    ax_h.legend(loc="upper right", fontsize=8)
    title_h = ax_h.set_title("", animated=True)

    finite = np.concatenate([train_mode.ravel(), h["train_loss"].ravel(), h["test_loss"].ravel()])
    finite = finite[np.isfinite(finite)]
    ax_l.set_yscale("log")
    ax_l.set_xlim(1, epochs[-1])
    ax_l.set_ylim(max(finite.min() * 0.7, 1e-4), finite.max() * 1.5)
    (l_tm,) = ax_l.plot(
        epochs, train_mode[0], color="C0", ls="--", label="train, train mode", animated=True
    )
    (l_te,) = ax_l.plot(
        epochs, h["train_loss"][0], color="C0", label="train, eval mode", animated=True
    )
    (l_ts,) = ax_l.plot(
        epochs, h["test_loss"][0], color="C3", label="test, eval mode", animated=True
    )
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("cross-entropy")
    ax_l.legend(loc="upper right", fontsize=8)
    ax_l.set_title("train mode (dashed) vs eval mode", fontsize=10)
    gap = ax_l.text(0.02, 0.03, "", transform=ax_l.transAxes, fontsize=8, animated=True)

    def draw(batch_size):
        k = sizes.index(int(batch_size))
        counts, _ = np.histogram(samples["batch_means"][k], bins=edges)
        hist.set_data(counts / counts.sum())
        sd = samples["batch_means"][k].std()
        title_h.set_text(f"batch size = {sizes[k]}: spread of batch means {sd:.3f}")
        gap.set_text(
            f"final train loss: {train_mode[k, -1]:.3g} (train mode) vs "
            f"{h['train_loss'][k, -1]:.3g} (eval mode)"
        )
        l_tm.set_ydata(viz.finite(train_mode[k]))
        l_te.set_ydata(viz.finite(h["train_loss"][k]))
        l_ts.set_ydata(viz.finite(h["test_loss"][k]))

    control = widgets.SelectionSlider(
        options=sizes,
        value=sizes[len(sizes) // 2],
        description="batch size",
        continuous_update=False,
    )
    return viz.Panel(fig, draw, batch_size=control)


def lr_models(sizes: Sequence[int], *, seed: int = 0) -> dict[str, tuple]:
    """The two networks of the learning-rate panel, each as ``(model, params, state)``: the same
    MLP without and with BN (Linear -> BN -> ReLU), initialized from the same key on purpose (the
    same hidden-layer weights: the comparison isolates BN)."""
    nets = {}
    for name, bn in (("no BN", None), ("BN", "before")):
        model = models.mlp(sizes, batch_norm=bn)
        nets[name] = (model, *model.init(jax.random.key(seed)))
    return nets


def lr_runs(
    ds: Dataset, nets: dict, lr: float, *, epochs: int, batch_size: int, seed: int = 1
) -> dict[str, train.Run]:
    """Train every network of ``nets`` at learning rate ``lr`` (traced: no recompilation), all with
    the same key ``jax.random.key(seed)``: the same shuffles, so only the network differs."""
    _checks.positive("lr", lr)
    runs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a diverging run is what we show
        for name, (model, params, state) in nets.items():
            runs[name] = train.fit(
                model,
                params,
                ds,
                state=state,
                key=jax.random.key(seed),
                hp={"lr": lr},
                epochs=epochs,
                batch_size=batch_size,
            )
    return runs


def lr_panel(
    ds: Dataset, nets: dict, *, epochs: int, batch_size: int, lr: float = 0.5
) -> viz.Panel:
    """Log slider over the learning rate; retrains both networks live and plots their accuracy."""
    epochs = _checks.positive_int("epochs", epochs)
    fig, axes = viz.figure(2)
    x = np.arange(1, epochs + 1)
    lines, titles = {}, {}
    for ax, name in zip(axes, nets, strict=True):
        ax.set_xlim(1, epochs)
        ax.set_ylim(0, 1.02)
        ax.set_xticks(x)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (eval mode)")
        (tr,) = ax.plot(
            x, np.zeros(epochs), color=viz.COLORS["train"], label="train", animated=True
        )
        (te,) = ax.plot(x, np.zeros(epochs), color=viz.COLORS["test"], label="test", animated=True)
        ax.legend(loc="lower right", fontsize=8)
        lines[name] = (tr, te)
        titles[name] = ax.set_title("", animated=True)

    def draw(lr):
        runs = lr_runs(ds, nets, lr, epochs=epochs, batch_size=batch_size)
        for name, run in runs.items():
            h = run.history
            tr, te = lines[name]
            tr.set_ydata(viz.finite(h["train_acc"]))
            te.set_ydata(viz.finite(h["test_acc"]))
            state = "diverged (NaN)" if run.diverged_at() else f"test acc {h['test_acc'][-1]:.3f}"
            titles[name].set_text(f"{name}, lr = {lr:.3g}: {state}")

    return viz.Panel(fig, draw, lr=viz.log_slider("lr", value=lr, min_exp=-2, max_exp=1.5))
