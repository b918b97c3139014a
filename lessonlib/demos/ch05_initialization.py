"""Chapter 05 (initialization, activations, vanishing/exploding gradients, clipping): the
chapter's networks, experiments and slider panels, built on ``models``, ``layers``, ``optim`` and
``train``.

- ``deep_net``: a stack of up to ``PANEL_DEPTH`` equal layers whose depth, activation,
  initializer and weight scale are *traced* hyperparameters (layers past the depth are skipped,
  the activation is a ``lax.switch``, the weights are N(0, 1) draws scaled inside the model), so
  ``vanishing_panel`` recomputes every slider position with one compiled program;
- ``initializer_race``: epochs to a target accuracy for random, Glorot and He initialization,
  every initializer and seed in one vmapped ``train.sweep``;
- ``dead_unit_sweep`` / ``dead_units_panel``: units that never fire on the training set, per
  epoch, for a grid of learning rates and three activations (one compiled program);
- ``selu_moments``: mean and standard deviation through 100 SELU layers under the conditions
  that keep or break self-normalization;
- ``clipping_sweep`` / ``clipping_panel``: a deep network whose gradients explode, trained with
  ``clip_by_global_norm`` at a grid of thresholds.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, data, layers, models, optim, train, viz
from lessonlib.data import Dataset

# Some runs of this chapter diverge on purpose (N(0, 1) weights, no clipping); ``train`` warns about
# every diverged run. Silence that warning for the runs started here only (a filter on this
# module, set once: ``warnings.catch_warnings`` is not safe in a background thread).
warnings.filterwarnings("ignore", message="training diverged", module=__name__)


@functools.cache
def standardized_digits() -> Dataset:
    """scikit-learn's digits with every feature standardized by the *training* mean and standard
    deviation (features that never vary, such as corner pixels, are only centered)."""
    ds = data.digits()
    x_tr, x_te = np.asarray(ds.x_train, np.float64), np.asarray(ds.x_test, np.float64)
    mean, sd = x_tr.mean(0), x_tr.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    as32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    return Dataset(as32((x_tr - mean) / sd), ds.y_train, as32((x_te - mean) / sd), ds.y_test)


def first_epoch_reaching(values: np.ndarray, target: float) -> np.ndarray:
    """The first epoch (1-based) whose value is >= ``target``, per row; 0 where it never is."""
    hit = np.asarray(values) >= target
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1) + 1, 0)


def start_experiments(ds: Dataset) -> dict[str, Future]:
    """Start the chapter's trainings (``initializer_race``, ``clipping_sweep``, ``dead_unit_sweep``)
    one after the other in a background thread and return their futures by name (the clipping
    job's result is ``(run, training programs it compiled)``).

    The notebook reads them sections later with ``.result()``; meanwhile its other cells run on
    the other core (XLA releases the GIL while it compiles and runs).
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ch05-experiments")
    jobs = {
        "race": pool.submit(initializer_race, ds),
        "clipping": pool.submit(_counting_compilations, clipping_sweep, ds),
        "dead": pool.submit(dead_unit_sweep, ds),
    }
    pool.shutdown(wait=False)  # the jobs keep running; the pool takes no more
    return jobs


def _counting_compilations(fn, *args):
    """``(fn(*args), number of training programs compiled meanwhile)``."""
    before = train.compile_count()
    result = fn(*args)
    return result, train.compile_count() - before


# --------------------------------------------------------------------------- the deep net


PANEL_DEPTH, PANEL_WIDTH, PANEL_BATCH = 50, 64, 64
PANEL_ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid")
PANEL_INITS = ("N(0, 1)", "LeCun", "Glorot", "He")  # weight standard deviation before the scale


def init_std(fan_in: int, fan_out: int) -> jax.Array:
    """Standard deviation of each of ``PANEL_INITS`` for a (fan_in, fan_out) layer."""
    fans = {"N(0, 1)": (1.0, 1.0), "LeCun": (1.0, fan_in), "He": (2.0, fan_in)}
    fans["Glorot"] = (1.0, (fan_in + fan_out) / 2)
    return jnp.array([math.sqrt(s / f) for s, f in (fans[n] for n in PANEL_INITS)], jnp.float32)


def deep_net(n_in: int, n_out: int, *, depth: int = PANEL_DEPTH, width: int = PANEL_WIDTH):
    """A ``models.Model`` of up to ``depth`` hidden layers of ``width`` units (no biases).

    Parameters are N(0, 1) draws; ``forward`` multiplies them by the standard deviation of
    initializer ``hp["init"]`` (an index into ``PANEL_INITS``) times ``hp["gain"]``, applies
    activation ``hp["activation"]`` (an index into ``PANEL_ACTIVATIONS``) and skips every layer
    from ``hp["depth"]`` on. All four are traced: any slider position runs the same program.
    Hidden outputs come back as one (depth, batch, width) array (a ``lax.scan`` over layers).
    """
    fns = [layers.ACTIVATIONS[name] for name in PANEL_ACTIVATIONS]

    @jax.jit
    def init(key):
        k_in, k_w, k_out = jax.random.split(key, 3)
        return {
            "w_in": jax.random.normal(k_in, (n_in, width)),
            "w": jax.random.normal(k_w, (depth - 1, width, width)),
            "w_out": jax.random.normal(k_out, (width, n_out)),
        }, {}

    def forward(params, state, x, *, key=None, train=False, hp=None, offsets=None):
        del key, train
        which = jnp.asarray(hp["init"]).astype(jnp.int32)

        def act(z):
            return jax.lax.switch(jnp.asarray(hp["activation"]).astype(jnp.int32), fns, z)

        if offsets is None:
            offsets = jnp.zeros((depth, x.shape[0], width), jnp.float32)
        h = act(x @ (params["w_in"] * init_std(n_in, width)[which] * hp["gain"])) + offsets[0]
        scale = init_std(width, width)[which] * hp["gain"]

        def layer(h, inputs):
            i, w, offset = inputs
            h = jnp.where(i < hp["depth"], act(h @ (w * scale)), h) + offset
            return h, h

        first = h
        h, rest = jax.lax.scan(layer, h, (jnp.arange(1, depth), params["w"], offsets[1:]))
        out = h @ (params["w_out"] * math.sqrt(1 / width))
        return out, state, jnp.concatenate([first[None], rest])

    def apply(params, state, x, *, key=None, train=False, hp=None):
        return forward(params, state, x, key=key, train=train, hp=hp)[:2]

    return models.Model(init, apply, "xent", forward)


@functools.cache
def _panel_setup():
    ds = standardized_digits()
    net = deep_net(ds.x_train.shape[1], 10)
    params, _ = net.init(jax.random.key(0))
    x, y = ds.x_train[:PANEL_BATCH], ds.y_train[:PANEL_BATCH]

    @jax.jit
    def stats(hp):
        return models.layer_stats(net, params, x, y, hp=hp)

    return stats


def deep_net_stats(depth: int, activation: str, init: str, gain: float) -> dict[str, np.ndarray]:
    """Per-layer activation and gradient standard deviations of the panel's network at
    initialization (a batch of standardized digits), for layers 1..depth."""
    hp = {
        "depth": jnp.int32(depth),
        "activation": jnp.int32(PANEL_ACTIVATIONS.index(activation)),
        "init": jnp.int32(PANEL_INITS.index(init)),
        "gain": jnp.float32(gain),
    }
    out = jax.device_get(_panel_setup()(hp))
    return {k: np.asarray(v)[:depth] if np.ndim(v) else float(v) for k, v in out.items()}


def vanishing_panel(depth: int = 30, activation: str = "relu", init: str = "Glorot") -> viz.Panel:
    """Sliders for depth, activation, initializer and weight scale; per-layer standard deviations
    of the activations (left) and of the gradients dL/dh (right), on log axes."""
    import ipywidgets as widgets

    fig, (ax_a, ax_g) = viz.figure(2)
    layers_ = np.arange(1, PANEL_DEPTH + 1)
    lines, titles = [], []
    for ax, what in ((ax_a, "std of activations h_i"), (ax_g, "std of gradients dL/dh_i")):
        ax.set_yscale("log")
        ax.set_xlim(0.5, PANEL_DEPTH + 0.5)
        ax.set_ylim(1e-12, 1e12)
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_xlabel("layer")
        ax.set_ylabel(what)
        (line,) = ax.plot(layers_, np.ones(PANEL_DEPTH), "o-", ms=2.5, animated=True)
        lines.append(line)
        titles.append(ax.set_title("", animated=True, fontsize=9))

    def describe(v: np.ndarray) -> str:
        bad = ~np.isfinite(v)
        if bad.any():
            return f"overflow (inf/NaN) from layer {int(bad.argmax()) + 1}"
        return f"layer 1: {v[0]:.2g}, layer {len(v)}: {v[-1]:.2g}"

    def draw(depth, activation, init, weight_scale):
        s = deep_net_stats(depth, activation, init, weight_scale)
        for line, title, key in zip(lines, titles, ("act_std", "grad_std"), strict=True):
            line.set_data(layers_[:depth], viz.finite(s[key]))
            title.set_text(describe(s[key]))  # the settings are on the sliders: one short line

    controls = {
        "depth": widgets.IntSlider(
            value=depth, min=1, max=PANEL_DEPTH, description="depth", continuous_update=False
        ),
        "activation": widgets.SelectionSlider(
            options=PANEL_ACTIVATIONS,
            value=activation,
            description="activation",
            continuous_update=False,
        ),
        "init": widgets.SelectionSlider(
            options=PANEL_INITS, value=init, description="initializer", continuous_update=False
        ),
        "weight_scale": viz.log_slider("scale", value=1.0, min_exp=-0.5, max_exp=0.5, step=0.05),
    }
    # Compile (and run every activation once) before the panel renders its one image: every
    # slider position runs this same program, so not even a first move compiles.
    for name in PANEL_ACTIVATIONS:
        deep_net_stats(depth, name, init, 1.0)
    return viz.Panel(fig, draw, **controls)


# --------------------------------------------------------------------------- deep ReLU MLP runs

# The deep network of the initializer race and of the clipping experiment: both go through
# ``train_deep``, i.e. one compiled program (a sweep of ``DEEP["runs"]`` runs, each with its own
# initial weights, learning rate and clipping threshold; threshold inf = no clipping).
DEEP = {"depth": 8, "width": 32, "epochs": 12, "batch_size": 32, "runs": 12}


@functools.cache
def deep_mlp(n_in: int = 64, n_out: int = 10) -> models.Model:
    """The ReLU MLP ``n_in -> DEEP["depth"] x DEEP["width"] -> n_out``, cached: the same object
    every time, so every ``train_deep`` call reuses one compiled program."""
    return models.mlp([n_in] + [DEEP["width"]] * DEEP["depth"] + [n_out])


def sgd_clipped(hp):
    """SGD after ``clip_by_global_norm(hp["clip"])``; ``hp["clip"] = inf`` never clips."""
    return optim.chain(optim.clip_by_global_norm(hp["clip"]), optim.sgd(hp["lr"]))


def stack_params(draws: Sequence) -> dict:
    """A list of parameter pytrees as one pytree with a leading run axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *draws)


def train_deep(ds: Dataset, params, *, lr, clip, key: jax.Array) -> train.Run:
    """``DEEP["runs"]`` runs of ``deep_mlp`` in one vmapped sweep: run k starts from
    ``params[k]`` with learning rate ``lr[k]`` and threshold ``clip[k]`` (``sgd_clipped``)."""
    k = DEEP["runs"]
    hp = {"lr": np.broadcast_to(np.float32(lr), k), "clip": np.broadcast_to(np.float32(clip), k)}
    return train.sweep(
        deep_mlp(ds.x_train.shape[1]),
        params,
        ds,
        key=key,
        hp=hp,
        epochs=DEEP["epochs"],
        batch_size=DEEP["batch_size"],
        optimizer=sgd_clipped,
        stacked=True,
    )


# --------------------------------------------------------------------------- initializer race

RACE_LR, RACE_SEEDS, RACE_TARGET = 0.05, 3, 0.9  # SGD learning rate; target: test accuracy


def _normal(std: float):
    def draw(key, fan_in, fan_out):
        return std * jax.random.normal(key, (fan_in, fan_out), jnp.float32)

    return draw


# name -> init(key, fan_in, fan_out); "random" is a fixed-std normal, as before Glorot & Bengio
RACE_INITIALIZERS = {
    "random N(0, 1)": _normal(1.0),
    "random N(0, 0.05²)": _normal(0.05),  # Keras's RandomNormal() default
    "Glorot": functools.partial(models.variance_scaling, kind="glorot"),
    "He": functools.partial(models.variance_scaling, kind="he"),
}


def initializer_race(ds: Dataset, *, seed: int = 0) -> dict:
    """Train ``deep_mlp`` from every initializer of ``RACE_INITIALIZERS`` with ``RACE_SEEDS``
    seeds each (the same seeds for every initializer), all in one ``train_deep`` call.

    Returns ``test_acc`` and ``train_loss`` of shape (initializers, seeds, epochs), the names, and
    ``epochs_to_target`` (initializers, seeds): the first epoch whose test accuracy reaches
    ``RACE_TARGET``, 0 if none did.
    """
    init_key, run_key = jax.random.split(jax.random.key(seed))
    seed_keys = jax.random.split(init_key, RACE_SEEDS)
    sizes = [ds.x_train.shape[1]] + [DEEP["width"]] * DEEP["depth"] + [10]
    draws = [
        models.mlp(sizes, init=draw).init(k)[0]
        for draw in RACE_INITIALIZERS.values()
        for k in seed_keys
    ]
    assert len(draws) == DEEP["runs"]
    run = train_deep(ds, stack_params(draws), lr=RACE_LR, clip=np.inf, key=run_key)
    shape = (len(RACE_INITIALIZERS), RACE_SEEDS, DEEP["epochs"])
    acc = run.history["test_acc"].reshape(shape)
    return {
        "names": list(RACE_INITIALIZERS),
        "test_acc": acc,
        "train_loss": run.history["train_loss"].reshape(shape),
        "epochs_to_target": first_epoch_reaching(acc, RACE_TARGET),
    }


# --------------------------------------------------------------------------- dead units

DEAD = {
    "sizes": (64, 64, 64, 64, 10),
    "activations": ("relu", "leaky_relu", "elu"),
    "lrs": (0.00316, 0.01, 0.0316, 0.1, 0.316),
    "epochs": 6,
    "batch_size": 32,
}


def never_active(hidden: jax.Array) -> jax.Array:
    """Fraction of units that are never active: ``h <= 0`` for every example (rows) of the
    (examples, units) array ``hidden``. For ReLU such a unit outputs 0 and gets no gradient."""
    return jnp.mean(jnp.all(hidden <= 0, axis=0))


def _adam(hp):
    return optim.adam(hp["lr"])


def dead_unit_sweep(ds: Dataset, *, seed: int = 0) -> dict:
    """Train the ``DEAD`` network for every activation x learning rate (Adam), epoch by epoch, and
    measure after each epoch the fraction of hidden units never active on the whole training set.

    One compiled program: the activation is a traced index (``mlp(activation=(...))``) swept
    with the learning rate, and every run starts from the same He-initialized weights. Returns
    ``dead`` and ``test_acc`` of shape (activations, lrs, epochs + 1) (column 0: before training).
    """
    acts, lrs, n_epochs = DEAD["activations"], np.asarray(DEAD["lrs"], np.float32), DEAD["epochs"]
    net = models.mlp(DEAD["sizes"], activation=acts)
    init_key, run_key = jax.random.split(jax.random.key(seed))
    p0, s0 = net.init(init_key)
    k = len(acts) * len(lrs)
    params, state = jax.tree.map(lambda v: jnp.stack([v] * k), (p0, s0))
    hp = {
        "activation": np.repeat(np.arange(len(acts)), len(lrs)).astype(np.float32),
        "lr": np.tile(lrs, len(acts)),
    }

    @jax.jit
    def measure(params, act_index):
        def one(p, a):
            _, _, hidden = net.forward(p, {}, ds.x_train, hp={"activation": a})
            return jnp.mean(jnp.stack([never_active(h) for h in hidden]))

        return jax.vmap(one)(params, act_index)

    dead = [measure(params, hp["activation"])]
    acc = [np.full(k, np.nan)]
    for epoch in range(n_epochs):
        run = train.sweep(
            net,
            params,
            ds,
            state=state,
            key=jax.random.fold_in(run_key, epoch),
            hp=hp,
            epochs=1,
            batch_size=DEAD["batch_size"],
            optimizer=_adam,
            stacked=True,
        )
        params, state = run.params, run.state
        dead.append(measure(params, hp["activation"]))
        acc.append(run.history["test_acc"][:, 0])
    shape = (len(acts), len(lrs), n_epochs + 1)
    return {
        "activations": acts,
        "lrs": lrs,
        "dead": np.stack([np.asarray(d) for d in dead], -1).reshape(shape),
        "test_acc": np.stack(acc, -1).reshape(shape),
    }


def dead_units_panel(result: dict, lr: float = 0.0316) -> viz.Panel:
    """Log slider over the learning rates of ``result``: never-active units (left) and test
    accuracy (right) per epoch, one curve per activation."""
    lrs = result["lrs"]
    epochs = np.arange(result["dead"].shape[-1])
    fig, (ax_d, ax_a) = viz.figure(2)
    curves = {}
    for ax, key, label in ((ax_d, "dead", "never-active units"), (ax_a, "test_acc", "test acc")):
        ax.set_xlim(0, epochs[-1])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        curves[key] = [
            ax.plot(epochs, np.zeros(len(epochs)), "o-", ms=3, label=name, animated=True)[0]
            for name in result["activations"]
        ]
        if key == "dead":
            ax.legend(loc="upper left", fontsize=8)
    title = ax_d.set_title("", animated=True, fontsize=9)
    title_a = ax_a.set_title("", animated=True, fontsize=9)

    def draw(lr):
        j = int(np.argmin(np.abs(np.log(lrs) - np.log(lr))))
        for key, lines in curves.items():
            for line, row in zip(lines, result[key][:, j], strict=True):
                line.set_ydata(viz.finite(row))
        final = result["dead"][:, j, -1]
        title.set_text(
            f"lr = {lrs[j]:.3g}: never active at the end: "
            + ", ".join(f"{a} {d:.0%}" for a, d in zip(result["activations"], final, strict=True))
        )
        title_a.set_text(
            f"lr = {lrs[j]:.3g}: final test acc "
            + ", ".join(
                f"{n} {a:.2f}"
                for n, a in zip(result["activations"], result["test_acc"][:, j, -1], strict=True)
            )
        )

    lo, hi = math.log10(lrs[0]), math.log10(lrs[-1])
    step = (hi - lo) / (len(lrs) - 1)
    slider = viz.log_slider("lr", value=lr, min_exp=lo, max_exp=hi, step=round(step, 6))
    return viz.Panel(fig, draw, lr=slider)


# --------------------------------------------------------------------------- SELU


SELU_DEPTH, SELU_WIDTH = 100, 100
_DROPS = (None, "dropout", "alpha_dropout")


def selu_moments(
    x: jax.Array,
    *,
    init: str = "lecun",
    dropout: str | None = None,
    rate: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every layer's output through ``SELU_DEPTH`` dense SELU
    layers (no biases) of ``SELU_WIDTH`` units with normal LeCun (``init="lecun"``, Var(w) =
    1/fan_in) or He (2/fan_in) weights, optionally with ``"dropout"`` or ``"alpha_dropout"`` at ``rate`` after every layer
    (training mode). Every condition runs the same compiled program."""
    _checks.one_of("init", init, ("lecun", "he"))
    _checks.one_of("dropout", dropout, _DROPS)
    scale = models.KINDS[init][1]  # Var(w) = scale / fan_in
    means, sds = _selu_stack(
        x, jnp.float32(scale), jnp.int32(_DROPS.index(dropout)), jnp.float32(rate), seed
    )
    return np.asarray(means), np.asarray(sds)


@functools.partial(jax.jit, static_argnums=4)
def _selu_stack(x, scale, drop, rate, seed):
    k_first, k_w, k_drop = jax.random.split(jax.random.key(seed), 3)
    n_in = x.shape[1]
    w_first = jax.random.normal(k_first, (n_in, SELU_WIDTH)) * jnp.sqrt(scale / n_in)
    ws = jax.random.normal(k_w, (SELU_DEPTH - 1, SELU_WIDTH, SELU_WIDTH))
    ws = ws * jnp.sqrt(scale / SELU_WIDTH)
    branches = [
        lambda h, k: h,
        lambda h, k: layers.dropout(h, rate, key=k),
        lambda h, k: layers.alpha_dropout(h, rate, key=k),
    ]

    def layer(h, inputs):
        i, w = inputs
        h = layers.selu(h @ w)
        h = jax.lax.switch(drop, branches, h, jax.random.fold_in(k_drop, i))
        return h, (jnp.mean(h), jnp.std(h))

    first = jax.lax.switch(drop, branches, layers.selu(x @ w_first), jax.random.fold_in(k_drop, 0))
    _, (means, sds) = jax.lax.scan(layer, first, (jnp.arange(1, SELU_DEPTH), ws))
    return (
        jnp.concatenate([jnp.mean(first)[None], means]),
        jnp.concatenate([jnp.std(first)[None], sds]),
    )


# --------------------------------------------------------------------------- clipping

CLIP_GAIN, CLIP_LR = 1.5, 0.1
# 11 thresholds, a factor 10**0.3 (about 2) apart, and inf (no clipping) last: DEEP["runs"] runs
THRESHOLDS = tuple(float(v) for v in np.round(10.0 ** np.arange(-1.0, 2.01, 0.3), 4))


def exploding_params(ds: Dataset, *, key: jax.Array) -> dict:
    """``deep_mlp``'s He weights scaled by ``CLIP_GAIN``: every layer amplifies the signal, and
    the gradient, by about that factor."""
    sizes = [ds.x_train.shape[1]] + [DEEP["width"]] * DEEP["depth"] + [10]

    def draw(k, fan_in, fan_out):
        return CLIP_GAIN * models.variance_scaling(k, fan_in, fan_out, kind="he")

    return models.mlp(sizes, init=draw).init(key)[0]


def clipping_sweep(ds: Dataset, *, seed: int = 0) -> train.Run:
    """``exploding_params`` trained with SGD (``CLIP_LR``) after ``clip_by_global_norm`` at every
    threshold of ``THRESHOLDS``, and without clipping (last row): one ``train_deep`` call, the
    same initial weights and minibatches for every threshold."""
    init_key, run_key = jax.random.split(jax.random.key(seed))
    clips = np.array([*THRESHOLDS, np.inf], np.float32)
    params = stack_params([exploding_params(ds, key=init_key)] * len(clips))
    return train_deep(ds, params, lr=CLIP_LR, clip=clips, key=run_key)


def clipping_panel(run: train.Run, threshold: float = 3.981) -> viz.Panel:
    """Log slider over ``THRESHOLDS``: the loss of every training step with that threshold and
    without clipping (left), test accuracy per epoch (right)."""
    h = run.history
    steps = np.arange(1, h["batch_loss"][0].size + 1)
    epochs = np.arange(1, h["test_acc"].shape[1] + 1)
    fig, (ax_l, ax_a) = viz.figure(2)
    ax_l.set_yscale("log")
    ax_l.set_xscale("log")  # the unclipped run only lives for a few steps
    ax_l.set_xlim(1, steps[-1])
    ax_l.set_ylim(1e-2, 1e4)
    ax_l.set_xlabel("training step")
    ax_l.set_ylabel("minibatch loss")
    none_loss = h["batch_loss"][-1].ravel()
    ax_l.plot(steps, viz.finite(none_loss), color="0.6", lw=0.8, label="no clipping")
    bad = ~np.isfinite(none_loss)
    if bad.any():
        ax_l.axvline(int(bad.argmax()) + 1, color="k", ls=":", lw=1)
        ax_l.text(int(bad.argmax()) * 1.15, 2e3, "no clipping: NaN from here", fontsize=8)
    (clipped,) = ax_l.plot(steps, none_loss, color="C0", lw=0.8, label="clipped", animated=True)
    ax_l.legend(loc="lower left", fontsize=8)
    ax_a.set_xlim(1, epochs[-1])
    ax_a.set_ylim(0, 1.02)
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("test accuracy")
    ax_a.plot(epochs, viz.finite(h["test_acc"][-1]), color="0.6", label="no clipping")
    (acc,) = ax_a.plot(epochs, h["test_acc"][0], "o-", color="C0", label="clipped", animated=True)
    ax_a.legend(loc="lower right", fontsize=8)
    title = ax_l.set_title("", animated=True, fontsize=9)
    title_a = ax_a.set_title("", animated=True, fontsize=9)

    def draw(threshold):
        j = int(np.argmin(np.abs(np.log(THRESHOLDS) - np.log(threshold))))
        clipped.set_ydata(viz.finite(h["batch_loss"][j].ravel()))
        acc.set_ydata(viz.finite(h["test_acc"][j]))
        title.set_text(
            f"clip_by_global_norm({THRESHOLDS[j]:.3g}): final loss {h['train_loss'][j, -1]:.3g}"
        )
        title_a.set_text(f"threshold {THRESHOLDS[j]:.3g}: test acc {h['test_acc'][j, -1]:.3f}")

    slider = viz.log_slider("threshold", value=threshold, min_exp=-1.0, max_exp=2.0, step=0.3)
    return viz.Panel(fig, draw, threshold=slider)


def angle_deg(u, v) -> float:
    """The angle between two vectors, in degrees."""
    u, v = np.ravel(np.asarray(u, np.float64)), np.ravel(np.asarray(v, np.float64))
    cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
