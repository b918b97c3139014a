"""Chapter 09 (transfer learning and unsupervised pretraining): tasks, experiments, panel.

The Géron notes' Fashion-MNIST experiment, reworked on the 8x8 digits: task A is the 8 classes left
when a *pair* of classes is held out, task B tells the two held-out classes apart from few labels.
Every network is ``64 -> 64 -> 32 -> head`` (``HIDDEN``); B reuses the first ``k`` layers of A (or
of an autoencoder's encoder) under a fresh head.

``transfer_optimizer`` gives each layer its own learning rate, read from traced ``hp`` entries, so
one vmapped ``train.sweep(..., stacked=True)`` trains every variant at once (scratch, reuse 1 or 2
layers of A or of the autoencoder, frozen or not during the head's warm-up, many seeds):
``warm{i}`` scales layer ``i``'s rate for the first ``warm_steps`` steps (0 = frozen) and
``after{i}`` afterwards. ``experiment`` runs it for one held-out pair; ``panel_from`` shows the
stored results; ``fashion_experiment`` runs the notes' own split when Fashion-MNIST is on disk.

What a cold run costs is compiling, not running (each stage trains in about a second): every
stage therefore has ONE compiled program, reused by every call. The models are built once per
shape (``classifier``, ``autoencoder``: a new ``models.mlp`` is a new function to compile), the
autoencoder sees no labels and is trained once per seed for every held-out pair, and task B
trains full-batch on its ``n`` labels tiled to ``TILE`` rows (the mean gradient over ``n``
examples each repeated ``TILE / n`` times is the mean gradient over the ``n``), so every ``n``
and every pair has the same array shapes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks as ck
from lessonlib import cache, data, models, optim, train, transfer, viz
from lessonlib.data import Dataset

HIDDEN = (64, 32)  #: hidden widths of every network of the chapter
N_FEATURES = 64  #: an 8x8 digit is 64 pixels
SOURCES = ("A", "AE")  #: where the reused layers come from: model A, or the autoencoder
N_LABELS = (5, 10, 20, 50)  #: numbers of labelled task-B training examples
SIZES = {"a_train": 1100, "a_test": 270, "b_pool": 200, "b_test": 60}  #: fixed split sizes
LR, LOW = 3e-3, 0.1  #: Adam's rate, and the factor for reused layers once they train
STEPS_B, WARM_STEPS, TILE = 80, 20, 100  #: task B: full-batch steps, head warm-up, rows
EPOCHS_A, BATCH_A, EPOCHS_AE = 15, 64, 15
MAIN_PAIR = (3, 5)  #: task B of the label-efficiency study: tell 3 from 5
OTHER_PAIRS = ((1, 7), (4, 9), (2, 8))  #: more held-out pairs, at ``OTHER_N`` labels
OTHER_N = 20
SEEDS = 8
#: the notes' own experiment: task B = T-shirt/top (0) vs pullover (2) from 200 labels
FASHION = {
    "pair": (0, 2), "n": 200, "seeds": 4, "epochs": 5,
    "sizes": {"a_train": 12000, "a_test": 2000, "b_pool": 200, "b_test": 2000},
}  # fmt: skip


@functools.cache
def classifier(classes: int, n_features: int = N_FEATURES) -> models.Model:
    """``n_features -> 64 -> 32 -> classes``, built once per shape so its program compiles once."""
    return models.mlp([n_features, *HIDDEN, classes])


@functools.cache
def autoencoder(n_features: int = N_FEATURES) -> models.Model:
    """The denoising autoencoder ``n_features-64-32-64-n_features``, built once per shape."""
    return transfer.autoencoder([n_features, *HIDDEN], denoising=True)


def split_tasks(
    ds: Dataset, pair: tuple[int, int], *, seed: int = 0, sizes: dict | None = None
) -> tuple[Dataset, Dataset]:
    """Task A (the 8 other classes, labels renumbered 0..7) and task B (``pair[0]`` -> 0,
    ``pair[1]`` -> 1), with the fixed sizes of ``sizes`` (default ``SIZES``; a shuffle by
    ``seed``): B's training inputs are a pool of ``sizes["b_pool"]`` shuffled examples; the
    first ``n`` are "n labels".

    >>> a, b = split_tasks(Dataset(*_toy()), (3, 7))
    >>> sorted(set(np.asarray(a.y_train).tolist())), sorted(set(np.asarray(b.y_train).tolist()))
    ([0, 1, 2, 3, 4, 5, 6, 7], [0, 1])
    """
    p, q = (
        ck.integer("pair[0]", pair[0], min_value=0),
        ck.integer("pair[1]", pair[1], min_value=0),
    )
    if p == q or max(p, q) > 9:
        raise ValueError(f"pair must be two different classes in 0..9, got {pair}")
    sizes = SIZES if sizes is None else sizes
    rng = np.random.default_rng(seed)
    rest = np.array([c for c in range(10) if c not in (p, q)])
    renumber = np.full(10, -1)
    renumber[rest] = np.arange(8)
    out = {}
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        x, y = np.asarray(x), np.asarray(y)
        a = rng.permutation(np.flatnonzero(np.isin(y, rest)))
        b = rng.permutation(np.flatnonzero((y == p) | (y == q)))
        a, b = a[: sizes[f"a_{split}"]], b[: sizes["b_pool" if split == "train" else "b_test"]]
        out[split] = (x[a], renumber[y[a]], x[b], (y[b] == q).astype(np.int32))
    (xa, ya, xb, yb), (xat, yat, xbt, ybt) = out["train"], out["test"]

    def ds_of(*arrays):
        x, y, xt, yt = arrays
        return Dataset(
            jnp.asarray(x), jnp.asarray(y, jnp.int32), jnp.asarray(xt), jnp.asarray(yt, jnp.int32)
        )

    return ds_of(xa, ya, xat, yat), ds_of(xb, yb, xbt, ybt)


def _toy() -> tuple:
    """Ten classes of random 64-pixel inputs (for doctests and tests)."""
    rng = np.random.default_rng(0)
    y, yt = np.repeat(np.arange(10), 400), np.repeat(np.arange(10), 100)
    return (
        rng.normal(size=(4000, 64)).astype(np.float32),
        y,
        rng.normal(size=(1000, 64)).astype(np.float32),
        yt,
    )


def adam(hp) -> optim.GradientTransformation:
    """Adam with ``hp["lr"]`` (task A and the autoencoder)."""
    return optim.adam(hp["lr"])


def transfer_optimizer(hp) -> optim.GradientTransformation:
    """Adam with a learning rate per layer: layer ``i < 2`` (a hidden layer, maybe reused) gets
    ``lr * warm{i}`` for the first ``warm_steps`` steps and ``lr * after{i}`` afterwards; the
    head always ``lr``. ``warm{i} = 0`` freezes layer ``i`` while the new head warms up."""

    def rate(i):
        def at(step):
            warm = jnp.asarray(step, jnp.float32) < hp["warm_steps"]
            return hp["lr"] * jnp.where(warm, hp[f"warm{i}"], hp[f"after{i}"])

        return at

    groups = {0: optim.adam(rate(0)), 1: optim.adam(rate(1)), 2: optim.adam(hp["lr"])}
    return optim.multi_transform(groups, transfer.layer_index)


def configs() -> list[dict]:
    """Every task-B variant, in the order of the result axes (source, k, frozen)."""
    return [
        {"source": s, "k": k, "frozen": f}
        for s in range(len(SOURCES))
        for k in range(len(HIDDEN) + 1)
        for f in (False, True)
    ]


def layer_rates(k: int, frozen: bool) -> dict[str, float]:
    """The ``warm{i}`` / ``after{i}`` factors of a variant: reused layers (``i < k``) train at
    ``LOW`` (or not at all during the warm-up when ``frozen``), new layers at 1."""
    rates = {}
    for i in range(len(HIDDEN)):
        reused = i < k
        rates[f"warm{i}"] = (0.0 if frozen else LOW) if reused else 1.0
        rates[f"after{i}"] = LOW if reused else 1.0
    return rates


def _stack_keys(key, n):
    return jax.random.split(key, n)


def train_a(task_a: Dataset, seeds: int, *, key: jax.Array, epochs: int = EPOCHS_A) -> train.Run:
    """Model A for each of ``seeds`` seeds (its own init and batches), one vmapped call."""
    model = classifier(8, task_a.x_train.shape[1])
    k_init, k_train = jax.random.split(key)
    params, _ = jax.vmap(model.init)(_stack_keys(k_init, seeds))
    return train.sweep(
        model, params, task_a, key=_stack_keys(k_train, seeds), hp={"lr": LR},
        epochs=epochs, batch_size=BATCH_A, optimizer=adam, stacked=True,
    )  # fmt: skip


def train_ae(
    x: jax.Array, x_test: jax.Array, seeds: int, *, key: jax.Array, epochs: int = EPOCHS_AE
) -> train.Run:
    """A denoising autoencoder ``64-64-32-64-64`` per seed on unlabelled inputs, one vmapped call.
    It sees no labels, so one autoencoder per seed serves every held-out pair."""
    model = autoencoder(x.shape[1])
    k_init, k_train = jax.random.split(key)
    params, _ = jax.vmap(model.init)(_stack_keys(k_init, seeds))
    return train.sweep(
        model, params, Dataset(x, x, x_test, x_test), key=_stack_keys(k_train, seeds),
        hp={"lr": LR, "noise": 0.3}, epochs=epochs, batch_size=BATCH_A, optimizer=adam,
        stacked=True,
    )  # fmt: skip


def tiled(task_b: Dataset, n: int) -> Dataset:
    """Task B with the first ``n`` pool examples as its training split, repeated to a multiple of
    ``TILE`` rows. Trained full-batch, the repeats change nothing (each example weighs ``1/n``)
    but every ``n`` dividing ``TILE`` gives the same shapes, hence one compiled program.

    >>> _, b = split_tasks(Dataset(*_toy()), (3, 7))
    >>> t = tiled(b, 20)
    >>> t.x_train.shape[0], bool((t.x_train[20:40] == b.x_train[:20]).all())
    (100, True)
    """
    n = ck.in_range("n", ck.positive_int("n", n), 1, task_b.x_train.shape[0])
    reps = -(-TILE // n)
    x, y = task_b.x_train[:n], task_b.y_train[:n]
    return task_b._replace(x_train=jnp.tile(x, (reps, 1)), y_train=jnp.tile(y, reps))


def b_runs(task_b: Dataset, n: int, sources: tuple, *, key: jax.Array) -> dict:
    """The task-B runs of ``train_b`` as ``train.sweep`` arguments (one row per run): ``model``,
    stacked ``params``, ``data``, per-run ``key`` and ``hp``. Run ``i`` is also
    ``train.fit(model, params[i], data, key=key[i], hp=hp[i], ...)``."""
    data = tiled(task_b, n)
    model = classifier(2, task_b.x_train.shape[1])
    seeds = jax.tree.leaves(sources[0])[0].shape[0]
    head_keys, batch_keys = (_stack_keys(k, seeds) for k in jax.random.split(key))
    params, hp = [], {name: [] for name in layer_rates(0, False)}
    for c in configs():
        build = jax.vmap(lambda src, kh, k=c["k"]: transfer.b_on_a(model, src, k, key=kh)[0])
        params.append(build(sources[c["source"]], head_keys))
        for name, value in layer_rates(c["k"], c["frozen"]).items():
            hp[name] += [value] * seeds
    return {
        "model": model,
        "params": jax.tree.map(lambda *xs: jnp.concatenate(xs), *params),
        "data": data,
        "key": jnp.concatenate([batch_keys] * len(configs())),
        "hp": {"lr": LR, "warm_steps": float(WARM_STEPS)}
        | {k: np.asarray(v, np.float32) for k, v in hp.items()},
        "epochs": STEPS_B,
        "batch_size": data.x_train.shape[0],
        "optimizer": transfer_optimizer,
    }


def train_b(task_b: Dataset, n: int, sources: tuple, *, key: jax.Array) -> np.ndarray:
    """Final task-B test accuracy of every variant of ``configs()`` for each seed, trained on
    the first ``n`` examples of the pool (``STEPS_B`` full-batch steps), one vmapped call: shape
    ``(sources, k, frozen, seeds)``.

    ``sources`` holds stacked parameters (leading axis: seeds) of model A and of the autoencoder;
    seed ``s`` of every variant reuses seed ``s`` of its source and draws its head from the same
    key, so a variant and scratch differ only in what they reuse (a paired comparison).
    """
    runs = b_runs(task_b, n, sources, key=key)
    model, params, data = runs.pop("model"), runs.pop("params"), runs.pop("data")
    run = train.sweep(model, params, data, stacked=True, **runs)
    seeds = jax.tree.leaves(sources[0])[0].shape[0]
    acc = run.history["test_acc"][:, -1]
    return acc.reshape(len(SOURCES), len(HIDDEN) + 1, 2, seeds)


def experiment(
    ds: Dataset, pair, *, seeds: int, n_labels=N_LABELS, key: jax.Array,
    ae: train.Run | None = None, sizes: dict | None = None, epochs_a: int = EPOCHS_A,
) -> dict:  # fmt: skip
    """The whole A -> B experiment for one held-out ``pair``: A per seed (and the autoencoder,
    unless a trained ``ae`` is given), then every task-B variant per seed for each number of
    labels. Returns plain arrays: ``acc[n_labels, source, k, frozen, seed]``, ``a_acc[seed]``
    (model A on its own test set), ``ae_loss[seed]``."""
    task_a, task_b = split_tasks(ds, pair, sizes=sizes)
    k_a, k_ae, k_b = jax.random.split(key, 3)
    run_a = train_a(task_a, seeds, key=k_a, epochs=epochs_a)
    if ae is None:
        n_a, n_t = (task_a.x_train.shape[0], task_a.x_test.shape[0])  # unlabelled, every class
        ae = train_ae(ds.x_train[:n_a], ds.x_test[:n_t], seeds, key=k_ae, epochs=epochs_a)
    sources = (run_a.params, ae.params)
    acc = np.stack([train_b(task_b, n, sources, key=k_b) for n in n_labels])
    return {
        "acc": acc,
        "a_acc": run_a.history["test_acc"][:, -1],
        "ae_loss": ae.history["test_loss"][:, -1],
        "n_labels": np.asarray(n_labels),
    }


def _code() -> tuple:
    return (transfer, experiment, split_tasks, train_a, train_ae, b_runs, train_b, tiled,
            classifier, autoencoder, transfer_optimizer, layer_rates)  # fmt: skip


def stored_experiments(*, seeds: int = SEEDS) -> tuple[dict, bool]:
    """``experiment`` on the digits for ``MAIN_PAIR`` (every ``N_LABELS``) and for each of
    ``OTHER_PAIRS`` (``OTHER_N`` labels), all sharing one autoencoder per seed (trained on every
    unlabelled training input), computed once and then read from the cache.
    Returns (arrays, whether they came from the cache)."""
    seeds = ck.positive_int("seeds", seeds)

    def compute():
        ds = data.digits()
        ae = train_ae(ds.x_train, ds.x_test, seeds, key=jax.random.key(100))
        main = experiment(ds, MAIN_PAIR, seeds=seeds, key=jax.random.key(0), ae=ae)
        out = {f"main_{name}": value for name, value in main.items()}
        for j, pair in enumerate(OTHER_PAIRS):
            r = experiment(
                ds, pair, seeds=seeds, n_labels=(OTHER_N,), key=jax.random.key(j + 1), ae=ae
            )
            out[f"pair{j}_acc"], out[f"pair{j}_a_acc"] = r["acc"][0], r["a_acc"]
        return out

    settings = {
        "seeds": seeds, "pairs": [MAIN_PAIR, *OTHER_PAIRS], "n": [N_LABELS, OTHER_N],
        "sizes": SIZES, "hidden": HIDDEN, "rates": [LR, LOW],
        "steps": [STEPS_B, WARM_STEPS, TILE, EPOCHS_A, BATCH_A, EPOCHS_AE],
    }  # fmt: skip
    return cache.cached("ch09-transfer", settings, compute, modules=_code())


def fashion_dir() -> Path:
    """Where ``data.load_fashion_mnist`` looks: ``$LESSONLIB_DATA/fashion-mnist``, by default
    ``~/.cache/lessonlib/fashion-mnist``."""
    return Path(os.environ.get("LESSONLIB_DATA", Path.home() / ".cache" / "lessonlib")) / (
        "fashion-mnist"
    )


def fashion_experiment(path=None, *, settings: dict | None = None) -> tuple[dict | None, str]:
    """The Géron notes' own experiment when Fashion-MNIST's IDX files are on disk: task A = the 8
    other classes, task B = T-shirt/top vs pullover from 200 labels, every variant of
    ``configs()`` per seed (``FASHION`` gives the sizes). Cached like the digits' runs.

    Returns ``(arrays, message)``; ``(None, message)`` when the files are absent — the message
    says where to put them. Nothing is ever downloaded.
    """
    f = FASHION if settings is None else settings
    path = fashion_dir() if path is None else Path(path)
    try:
        ds = data.load_fashion_mnist(path)
    except FileNotFoundError as e:
        return None, (
            f"Fashion-MNIST not found, this part is skipped. {e} (Or set LESSONLIB_DATA to the "
            "folder holding fashion-mnist/.)"
        )
    files = sorted((p.name, p.stat().st_size) for p in path.iterdir() if "idx" in p.name)

    def compute():
        r = experiment(
            ds, f["pair"], seeds=f["seeds"], n_labels=(f["n"],), key=jax.random.key(7),
            sizes=f["sizes"], epochs_a=f["epochs"],
        )  # fmt: skip
        return {"acc": r["acc"][0], "a_acc": r["a_acc"], "ae_loss": r["ae_loss"]}

    key = {"files": files, "fashion": f, "hidden": HIDDEN, "rates": [LR, LOW]}
    arrays, _ = cache.cached("ch09-fashion", key, compute, modules=_code())
    return arrays, f"Fashion-MNIST read from {path}"


def mean_ci(values, *, z: float = 1.96) -> tuple[float, float, float]:
    """Mean and a normal-approximation 95% confidence interval ``mean +- z * sd / sqrt(n)``.

    >>> mean_ci([1.0, 2.0, 3.0])
    (2.0, 0.868..., 3.131...)
    """
    v = np.asarray(values, np.float64).ravel()
    ck.check("len(values)", v.size, lambda n: n >= 2, ">= 2")
    half = z * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def advantage_ends(n_labels, scratch, reused, *, z: float = 1.96) -> int | None:
    """Reading a label-efficiency curve: the smallest number of labels from which on reusing
    layers no longer beats scratch significantly, or None if it still does at the largest ``n``.

    ``scratch`` and ``reused`` hold test accuracies of shape ``(len(n_labels), seeds)``, paired by
    seed. At each ``n`` the per-seed gains ``d = reused - scratch`` give the interval
    ``mean(d) +- z * sd(d) / sqrt(seeds)`` (``mean_ci``); the advantage is significant where its
    lower end is above 0. The answer is the ``n`` just after the last significant one.

    >>> s = np.array([[0.80, 0.82, 0.78], [0.90, 0.91, 0.92], [0.95, 0.96, 0.97]])
    >>> advantage_ends([5, 10, 20], s, s + np.array([[0.10, 0.11, 0.09], [0.02, -0.01, 0.0],
    ...                                               [0.0, 0.0, 0.0]]))
    10
    """
    n_labels = [int(n) for n in n_labels]
    scratch, reused = np.asarray(scratch, np.float64), np.asarray(reused, np.float64)
    if scratch.shape != reused.shape or scratch.shape[:1] != (len(n_labels),):
        raise ValueError(
            f"scratch and reused must both have shape (len(n_labels), seeds) = "
            f"({len(n_labels)}, seeds), got {scratch.shape} and {reused.shape}"
        )
    significant = [mean_ci(d, z=z)[1] > 0 for d in reused - scratch]
    last = max((i for i, sig in enumerate(significant) if sig), default=-1)
    return None if last == len(n_labels) - 1 else n_labels[last + 1]


def panel_from(acc: np.ndarray, n_labels) -> viz.Panel:
    """Sliders over stored results ``acc[n_labels, source, k, frozen, seed]``: where the reused
    layers come from, how many, frozen or not during the head's warm-up, how many labels.

    Left: every run's test accuracy (one per seed) from scratch (x) against the chosen variant
    (y): points above the diagonal are seeds where reusing helped; the title gives the mean gain
    and how often it was positive. Right: mean accuracy against the number of labels for scratch
    and for the variant (the controls name it). Nothing is trained: every move is a lookup in
    arrays computed here, and only animated artists are redrawn (one short title: text is the
    costliest thing to draw).
    """
    acc, n_labels = np.asarray(acc), [int(n) for n in n_labels]
    means = acc.mean(axis=-1)
    gains = acc - acc[:, :1, :1, :1]  # every variant minus scratch, per seed
    gain_mean, helps = gains.mean(axis=-1), (gains > 0).mean(axis=-1)
    fig, (ax_seed, ax_curve) = viz.figure(2)
    lo = float(np.floor(acc.min() * 20) / 20)
    ax_seed.plot([lo, 1], [lo, 1], color="0.6", lw=1)
    ax_seed.set(
        xlim=(lo, 1.0),
        ylim=(lo, 1.0),
        xlabel="scratch: test accuracy",
        ylabel="reused: test accuracy",
    )
    ax_curve.set(xscale="log", xlim=(n_labels[0] * 0.8, n_labels[-1] * 1.25), ylim=(lo, 1.0))
    ax_curve.set(xlabel="labelled task-B examples", ylabel="mean test accuracy")
    (dots,) = ax_seed.plot([], [], "o", ms=4, color="#1f77b4", alpha=0.7, animated=True)
    (scratch,) = ax_curve.plot(n_labels, means[:, 0, 0, 0], "s--", color="0.4", label="scratch")
    (variant,) = ax_curve.plot([], [], "o-", color="#d62728", label="chosen variant", animated=True)
    (here,) = ax_curve.plot([], [], "o", ms=12, mfc="none", color="k", animated=True)
    ax_curve.legend(loc="lower right", fontsize=8)
    title_seed = ax_seed.set_title("", animated=True, fontsize=9)

    def draw(source, k, frozen, n):
        i = n_labels.index(n)
        chosen = acc[i, source, k, int(frozen)]
        dots.set_data(acc[i, 0, 0, 0], chosen)
        variant.set_data(n_labels, means[:, source, k, int(frozen)])
        here.set_data([n], [means[i, source, k, int(frozen)]])
        g, h = gain_mean[i, source, k, int(frozen)], helps[i, source, k, int(frozen)]
        title_seed.set_text(f"n = {n}: gain {g:+.3f}, helps in {h:.0%}")

    return viz.Panel(
        fig,
        draw,
        source=widgets.Dropdown(
            options=[("model A", 0), ("autoencoder", 1)], value=0, description="reuse from"
        ),
        k=widgets.IntSlider(
            value=2, min=0, max=len(HIDDEN), description="layers", continuous_update=False
        ),
        frozen=widgets.Checkbox(value=True, description="frozen in warm-up"),
        n=widgets.SelectionSlider(
            options=n_labels, value=n_labels[-1], description="labels", continuous_update=False
        ),
    )
