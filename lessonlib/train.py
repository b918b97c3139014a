"""The training engine: a whole run, epochs x minibatches, as one jitted XLA computation.

``fit`` builds the run with two nested ``lax.scan`` loops (epochs, then the minibatches of an
epoch) and evaluates train and test metrics after every epoch, so there is no Python loop per step
and no host sync until the run is over. Float hyperparameters travel in the dict ``hp`` as traced
arguments: moving a slider from lambda=1 to lambda=3 reuses the compiled run. ``sweep`` vmaps the
same run over a vector of hyperparameter values — 64 runs in one compiled function; with
``stacked=True`` every run also has its own initial parameters, optimizer state and key (a
population, see ``lessonlib.search``). A run resumes where another stopped when it is given that
run's ``params``, ``opt_state`` and ``first_epoch``. On a GPU that
function runs once over all values; on a CPU, where one XLA execution keeps about one core busy, the
values are split into one equal chunk per core and the chunks run concurrently (``sweep_workers``).

Two things happen inside the same compiled run when asked: **augmentation** (``augment=``, a
function ``augment(key, x_batch, hp) -> x_batch`` such as those of ``lessonlib.augment``, applied
to every minibatch with a key of its own) and **early stopping** (``early_stopping=``, an
``EarlyStopping`` config: after every epoch the rule of Keras 3's callback, ``lessonlib.stopping``,
reads the monitored history entry; once it says stop, the remaining epochs leave the parameters
as they are, and the best epoch's parameters are returned if ``restore_best_weights``). With a
validation split (``data.with_validation``) every epoch also reports ``val_loss``/``val_acc``.

Everything static (the model, the loss, the number of epochs, the batch size, the optimizer
*factory*) is part of the compiled function's identity. Pass the same function objects again to
reuse a compilation (define ``optimizer=`` once, not as a new lambda inside a slider callback).

**The keys of ``hp`` are a contract.** The engine reads none itself; the model
(``model.apply(..., hp=hp)``), the optimizer factory (``optimizer(hp)``, by default
``optim.sgd(hp["lr"])``), the penalty and the projection read what they need. Before a run, each
of them is traced once (``jax.eval_shape``, no computing) on a view of ``hp`` that records what it
reads, so ``fit`` and ``sweep`` raise a ``ValueError`` naming a key that is read but not given, and
one naming a key that is given but read by nothing (a typo such as ``lamda`` must not be ignored),
with a "did you mean" where a read key is close. A key read with ``hp.get(name, default)`` (e.g.
``bn_momentum``) is optional. The verdict is cached per compiled configuration and set of keys,
so a slider move costs a dictionary lookup.

Arguments are checked with ``lessonlib._checks`` (traced values are skipped).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks as ck
from lessonlib import _hp, optim, stopping
from lessonlib.data import Dataset, epoch_batches
from lessonlib.models import Model
from lessonlib.regularization import weight_norm
from lessonlib.stopping import EarlyStopping, early_stopping

__all__ = ["EarlyStopping", "Run", "compile_count", "early_stopping", "fit", "sweep"]


class Run(NamedTuple):
    """What ``fit`` returns: final parameters and state, and the per-epoch ``history``.

    ``history`` maps names to arrays of shape (epochs,) — ``train_loss``, ``test_loss`` (the data
    loss without penalty, on the whole split, in evaluation mode), ``train_acc``/``test_acc`` for
    classifiers, ``val_loss``/``val_acc`` when the data has a validation split, ``w_norm`` (||w||
    of the weights) — plus ``batch_loss`` of shape (epochs, batches_per_epoch) with the training
    objective of every step. For a ``sweep`` every array gets a leading axis, one row per run.

    With early stopping, ``stop_epoch`` is the epoch (0-based) at whose end the run stopped (-1:
    it did not) and ``best_epoch`` the epoch whose parameters ``restore_best_weights`` returns;
    after the stop the history repeats the stop epoch's row (the parameters no longer change).
    Both count from the run's start like ``first_epoch``: a resumed run's history row of epoch
    ``e`` is ``e - first_epoch``.
    """

    params: Any
    state: Any
    history: dict[str, np.ndarray]
    opt_state: Any = None  # the optimizer's state after the last step: pass it back to resume
    stop_epoch: np.ndarray | None = None
    best_epoch: np.ndarray | None = None

    def diverged_at(self) -> np.ndarray:
        """The first epoch (1-based) whose train loss is NaN/inf, or 0 where the run stayed finite."""
        return diverged_at(self.history)


def squared_loss(y_hat: jax.Array, y: jax.Array) -> jax.Array:
    """d2l's squared loss, ``mean((y_hat - y)^2 / 2)``."""
    return jnp.mean(jnp.square(y_hat - y) / 2)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels (log-softmax subtracts the per-row max)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


LOSSES = {"mse": squared_loss, "xent": cross_entropy}


def default_optimizer(hp: Mapping[str, jax.Array]) -> optim.GradientTransformation:
    """Plain minibatch SGD, ``w <- w - hp["lr"] * g``."""
    return optim.sgd(hp["lr"])


def no_penalty(params, hp) -> jax.Array:
    del params, hp
    return jnp.zeros((), jnp.float32)


class _Static(NamedTuple):
    model: Model
    epochs: int
    batch_size: int
    optimizer: Callable
    penalty: Callable
    project: Callable | None
    augment: Callable | None = None
    stop: tuple[str, str, bool] | None = None  # early stopping: (monitor, mode, restore)


def _evaluate(model: Model, params, state, x, y, hp):
    out, _ = model.apply(params, state, x, key=None, train=False, hp=hp)
    metrics = {"loss": LOSSES[model.loss](out, y)}
    if model.loss == "xent":
        metrics["acc"] = accuracy(out, y)
    return metrics


def step_keys(epoch_key: jax.Array, step, steps: int) -> tuple[jax.Array, jax.Array]:
    """The keys of minibatch ``step`` (0-based) of an epoch with ``steps`` minibatches.

    Within epoch ``e`` (key ``fold_in(key, e)``) the numbers are shared out so that no draw is
    made twice: 0 shuffles the epoch, ``1 .. steps`` are the model's step keys (dropout masks,
    hidden noise), ``steps + 1 .. 2 steps`` the augmentation's keys.
    """
    return (
        jax.random.fold_in(epoch_key, step + 1),
        jax.random.fold_in(epoch_key, steps + 1 + step),
    )


def epoch_indices(key: jax.Array, epochs: jax.Array, n: int, batch_size: int) -> jax.Array:
    """The minibatch indices of the epochs numbered ``epochs`` (1-D), shape (epochs, steps,
    batch_size): epoch ``e`` is ``epoch_batches(fold_in(fold_in(key, e), 0), ...)``, as ``fit``
    shuffles it."""
    return jax.vmap(lambda e: _epoch_shuffle(jax.random.fold_in(key, e), n, batch_size))(epochs)


def _epoch_shuffle(epoch_key: jax.Array, n: int, batch_size: int) -> jax.Array:
    """An epoch's minibatch indices from its key ``fold_in(key, e)`` (``fit``'s shuffle: draw 0
    of the epoch, see ``step_keys``)."""
    return epoch_batches(jax.random.fold_in(epoch_key, 0), n, batch_size)


# An epoch of this many minibatch steps or fewer is unrolled (no loop inside the epoch): on the
# d2l demo's 4 steps the loop's own cost was ~15-25 % of the run; 16-step epochs gained nothing.
_MAX_UNROLLED = 4


def _run(
    static: _Static,
    params,
    state,
    data: Dataset,
    key,
    hp,
    opt_state=None,
    first_epoch=0,
    rule=None,
    batches=None,
):
    """One run. ``batches``: its epochs' ``epoch_indices`` drawn beforehand (runs that share a
    key share them: a population's buckets shuffle once), or None to shuffle here."""
    model, loss_fn = static.model, LOSSES[static.model.loss]
    n = data.x_train.shape[0]
    n_steps = n // static.batch_size
    opt = static.optimizer(hp)
    if opt_state is None:  # a fresh run; a resumed one continues its optimizer's state
        opt_state = opt.init(params)

    def objective(p, s, xb, yb, k):
        out, new_s = model.apply(p, s, xb, key=k, train=True, hp=hp)
        return loss_fn(out, yb) + static.penalty(p, hp), new_s

    def step(carry, batch):
        params, state, opt_state, ekey = carry
        i, idx = batch
        skey, akey = step_keys(ekey, i, n_steps)
        xb = data.x_train[idx]
        if static.augment is not None:
            xb = static.augment(akey, xb, hp)
        (value, state), grads = jax.value_and_grad(objective, has_aux=True)(
            params, state, xb, data.y_train[idx], skey
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
        if static.project is not None:
            params = static.project(params, hp)
        return (params, state, opt_state, ekey), value

    def train_epoch(carry, e):
        params, state, opt_state = carry
        ekey = jax.random.fold_in(key, e)
        if batches is None:
            idx = _epoch_shuffle(ekey, n, static.batch_size)
        else:
            idx = batches[e - first_epoch]
        steps = jnp.arange(idx.shape[0])
        (params, state, opt_state, _), batch_loss = jax.lax.scan(
            step, (params, state, opt_state, ekey), (steps, idx), unroll=n_steps <= _MAX_UNROLLED
        )
        row = {}
        for split in ("train", "val", "test"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            if x is not None:
                metrics = _evaluate(model, params, state, x, y, hp)
                row |= {f"{split}_{k}": v for k, v in metrics.items()}
        row["w_norm"] = weight_norm(params)
        row["batch_loss"] = batch_loss
        return (params, state, opt_state), row

    # epochs are numbered from first_epoch, so a resumed run draws the batches it would have drawn
    epochs = first_epoch + jnp.arange(static.epochs)
    if static.stop is None:
        (params, state, opt_state), history = jax.lax.scan(
            train_epoch, (params, state, opt_state), epochs
        )
        return params, state, history, opt_state, None

    monitor, mode, restore = static.stop
    start = (params, state, opt_state)
    blank = jax.tree.map(
        lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(train_epoch, start, epochs[0])[1]
    )

    # Keras semantics on resuming: every call is a new training (on_train_begin: wait 0, best
    # +-inf, nothing remembered) whose epochs keep their numbers (Keras's `epoch` counts from
    # initial_epoch), so start_from_epoch and the stop/best epochs are counted from the run's start
    def epoch(carry, e):
        trained, es, last_row, kept = carry
        # once stopped, an epoch changes nothing (under vmap both branches run, then one is kept)
        trained, row = jax.lax.cond(
            es.stop_epoch >= 0,
            lambda c, r: (c, r),
            lambda c, r: train_epoch(c, e),
            trained,
            last_row,
        )
        es, remember = stopping.update(es, e, row[monitor], rule, mode)
        if restore:  # Keras's best_weights (BN statistics included), kept in the carry
            kept = jax.tree.map(lambda a, b: jnp.where(remember, a, b), trained[:2], kept)
        return (trained, es, row, kept), row

    kept = start[:2] if restore else None
    (trained, es, _, kept), history = jax.lax.scan(
        epoch, (start, stopping.init(mode), blank, kept), epochs
    )
    params, state = kept if restore else trained[:2]
    if restore:  # nothing monitored (all epochs before start_from_epoch): Keras restores nothing
        params, state = jax.tree.map(
            lambda a, b: jnp.where(es.best_epoch >= 0, a, b), (params, state), trained[:2]
        )
    last = jnp.where(es.stop_epoch >= 0, es.stop_epoch, first_epoch + static.epochs - 1)
    best = jnp.where(es.best_epoch >= 0, es.best_epoch, last)
    return params, state, history, trained[2], (es.stop_epoch, best)


_run_jit = jax.jit(_run, static_argnums=0)


@partial(jax.jit, static_argnums=(0, 6, 9))
def _sweep_jit(static, params, state, data, key, hp, swept, opt_state, first_epoch, stacked, rule):
    axes = {k: (0 if k in swept else None) for k in hp}  # built here: in_axes must be static
    run = 0 if stacked[0] else None  # stacked: params, state, opt_state have a run axis ...
    key_axis = 0 if stacked[1] else None  # ... and so has the key unless all runs share it
    in_axes = (run, run, None, key_axis, axes, None if opt_state is None else run, None, None)
    return jax.vmap(partial(_run, static), in_axes=in_axes)(
        params, state, data, key, hp, opt_state, first_epoch, rule
    )


def _first_epoch(first_epoch) -> jax.Array:
    return jnp.asarray(ck.integer("first_epoch", first_epoch, min_value=0), jnp.int32)


def _as_hp(hp: Mapping[str, Any]) -> dict[str, jax.Array]:
    if not isinstance(hp, Mapping):
        raise TypeError(f"hp must be a dict of hyperparameters, got {type(hp).__name__}")
    for k in hp:
        if not isinstance(k, str):
            raise TypeError(f"hp keys must be strings, got {k!r}")
    return {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}


def _static(
    model, epochs, batch_size, optimizer, penalty, project, data, key, augment=None, stop=None
) -> tuple[_Static, stopping.Rule | None]:
    """The compiled run's static identity, and early stopping's traced numbers (or None)."""
    if not isinstance(model, Model):
        raise TypeError(f"model must be a lessonlib.models.Model, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a lessonlib.data.Dataset, got {type(data).__name__}")
    epochs = ck.positive_int("epochs", epochs)
    batch_size = ck.positive_int("batch_size", batch_size)
    n = data.x_train.shape[0]
    ck.ordered("batch_size", batch_size, "the number of training examples", n, strict=False)
    ck.prng_key("key", key)
    fns = (("optimizer", optimizer), ("penalty", penalty), ("project", project))
    for name, fn in (*fns, ("augment", augment)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function (or None), got {type(fn).__name__}")
    static = _Static(
        model,
        epochs,
        batch_size,
        optimizer or default_optimizer,
        penalty or no_penalty,
        project,
        augment,
    )
    if stop is None:
        return static, None
    if not isinstance(stop, EarlyStopping):
        raise TypeError(
            f"early_stopping must be a train.EarlyStopping(...) (or None), got {type(stop).__name__}"
        )
    names = history_names(model, data)
    if stop.monitor not in names:
        hint = (
            " The data has no validation split: hold one out with data.with_validation(ds, n_val)."
            if stop.monitor.startswith("val_") and data.x_val is None
            else ""
        )
        raise ValueError(
            f"EarlyStopping(monitor={stop.monitor!r}) names no entry of the history, which has "
            f"{names}.{hint}"
        )
    if stop.monitor.startswith("test_"):
        warnings.warn(
            f"early stopping on {stop.monitor!r} chooses the epoch with the test split, so the "
            "test score is no longer an unbiased estimate: monitor a validation split "
            "(data.with_validation) instead",
            UserWarning,
            stacklevel=3,
        )
    mode = stopping.resolve_mode(stop)
    rule = stopping.rule(
        patience=stop.patience,
        min_delta=stop.min_delta,
        mode=mode,
        baseline=stop.baseline,
        start_from_epoch=stop.start_from_epoch,
    )
    return static._replace(stop=(stop.monitor, mode, bool(stop.restore_best_weights))), rule


def history_names(model: Model, data: Dataset) -> list[str]:
    """The per-epoch entries of a run's history for this model and data (``batch_loss`` aside)."""
    metrics = ["loss", "acc"] if model.loss == "xent" else ["loss"]
    splits = ["train", "val", "test"] if data.x_val is not None else ["train", "test"]
    return [f"{s}_{m}" for s in splits for m in metrics] + ["w_norm"]


# --------------------------------------------------------------------------- the hp contract


def _components(static: _Static) -> dict[str, Callable]:
    """The parts of a run that read ``hp``, each as ``f(params, state, x, key, hp)``."""

    def model(p, s, x, k, h):
        static.model.apply(p, s, x, key=k, train=True, hp=h)
        static.model.apply(p, s, x, key=None, train=False, hp=h)

    def optimizer(p, s, x, k, h):
        opt = static.optimizer(h)
        opt.update(jax.tree.map(jnp.zeros_like, p), opt.init(p), p)

    parts = {"model": model, "optimizer": optimizer}
    parts["penalty"] = lambda p, s, x, k, h: static.penalty(p, h)
    if static.project is not None:
        parts["projection"] = lambda p, s, x, k, h: static.project(p, h)
    if static.augment is not None:
        parts["augmentation"] = lambda p, s, x, k, h: static.augment(k, x, h)
    return parts


_hp_verdicts: dict = {}  # (static, given keys) -> error message or None


def _check_hp(static: _Static, params, state, data: Dataset, key, hp: dict, swept=()) -> None:
    """Raise ValueError unless every key read is given and every key given is read."""
    given = sorted(hp)
    cache_key = (static, tuple(given))
    if cache_key not in _hp_verdicts:
        h = {  # one run's hp: a swept entry contributes one of its values
            k: jax.ShapeDtypeStruct(v.shape[1:] if k in swept else v.shape, v.dtype)
            for k, v in hp.items()
        }
        x = jax.ShapeDtypeStruct((static.batch_size, *data.x_train.shape[1:]), data.x_train.dtype)
        reads = _hp.reads(_components(static), params, state, x, key, hp=h)
        _hp_verdicts[cache_key] = _hp.contract_error(reads, given)
    if _hp_verdicts[cache_key] is not None:
        raise ValueError(_hp_verdicts[cache_key])


def fit(
    model: Model,
    params,
    data: Dataset,
    *,
    key: jax.Array,
    hp: Mapping[str, float],
    epochs: int,
    batch_size: int,
    state=None,
    optimizer: Callable | None = None,
    penalty: Callable | None = None,
    project: Callable | None = None,
    opt_state=None,
    first_epoch: int = 0,
    augment: Callable | None = None,
    early_stopping: EarlyStopping | None = None,
) -> Run:
    """Train ``model`` from ``params`` on ``data`` for ``epochs`` epochs of minibatch steps.

    Each step minimizes ``loss(model(x), y) + penalty(params, hp)`` with ``optimizer(hp)`` (default:
    SGD with ``hp["lr"]``), then applies ``project(params, hp)`` if given (e.g. a max-norm
    constraint). ``key`` drives the shuffling (``fold_in(key, epoch)``) and the per-step keys of
    stochastic layers and of ``augment`` (``step_keys``): the same key gives the same run.

    ``augment(key, x_batch, hp) -> x_batch`` transforms every training minibatch before the step
    (e.g. ``lessonlib.augment.shift``; its strength read from ``hp`` so that changing it does not
    recompile). Evaluation always uses the data as it is.

    ``early_stopping=EarlyStopping(monitor="val_loss", patience=5, ...)`` applies Keras 3's rule
    after every epoch (``lessonlib.stopping``); after the stop epoch the parameters stay as they
    are, and with ``restore_best_weights=True`` the best epoch's parameters are returned.
    ``Run.stop_epoch`` and ``Run.best_epoch`` say what happened; patience, min_delta, baseline and
    start_from_epoch are traced, so another value reuses the compiled run.

    ``hp`` must hold every key those functions read and nothing else: a missing or unread key
    raises ``ValueError`` naming it (see the module docstring).

    To resume a run, pass its ``params``, ``state``, ``Run.opt_state`` and the number of epochs
    it has done as ``first_epoch``: 4 epochs and then 4 more give the 8-epoch run, step for step
    (epoch ``e`` always shuffles with ``fold_in(key, e)``).
    Early stopping on a resumed run follows Keras's ``fit(initial_epoch=...)``: the rule starts
    afresh (``wait`` 0, no best value, nothing to restore from before), while epochs keep their
    numbers — ``start_from_epoch`` and ``Run.stop_epoch``/``best_epoch`` count from the run's
    start, not from this call's first epoch.

    A run whose loss becomes NaN or inf (e.g. a learning rate that is too large) is not an error:
    its history holds the non-finite values, ``Run.diverged_at()`` says when, and a warning names
    the epoch.

    >>> from lessonlib import data, models
    >>> ds = data.d2l_weight_decay_data(seed=0)
    >>> model = models.linear_regression(200)
    >>> params, _ = model.init(jax.random.key(1))
    >>> run = fit(model, params, ds, key=jax.random.key(2), hp={"lr": 0.003}, epochs=100, batch_size=5)
    >>> run.history["train_loss"].shape
    (100,)
    """
    static, rule = _static(
        model, epochs, batch_size, optimizer, penalty, project, data, key, augment, early_stopping
    )
    state, traced_hp = ({} if state is None else state), _as_hp(hp)
    _check_hp(static, params, state, data, key, traced_hp)
    params, state, history, opt_state, stop = _run_jit(
        static, params, state, data, key, traced_hp, opt_state, _first_epoch(first_epoch), rule
    )
    run = _as_run(params, state, history, opt_state, stop)
    _warn_divergence(run.history, hp)
    return run


def _as_run(params, state, history, opt_state, stop) -> Run:
    stop_epoch, best_epoch = (None, None) if stop is None else (np.asarray(a) for a in stop)
    return Run(params, state, jax.tree.map(np.asarray, history), opt_state, stop_epoch, best_epoch)


def sweep(
    model: Model,
    params,
    data: Dataset,
    *,
    key: jax.Array,
    hp: Mapping[str, Any],
    epochs: int,
    batch_size: int,
    state=None,
    optimizer: Callable | None = None,
    penalty: Callable | None = None,
    project: Callable | None = None,
    stacked: bool = False,
    opt_state=None,
    first_epoch: int = 0,
    augment: Callable | None = None,
    early_stopping: EarlyStopping | None = None,
) -> Run:
    """Many runs of ``fit`` in one vmapped, jitted call: one per entry of the vector-valued ``hp``.

    Entries of ``hp`` that are 1-D sequences are swept together (they must have equal length K);
    scalars are shared. All runs start from the same ``params`` and use the same ``key``, so they
    differ only in the swept values. Every array of the returned history has a leading axis K.
    With ``early_stopping`` every run stops at its own epoch (``Run.stop_epoch`` has shape (K,)).

    ``stacked=True`` makes it a population: ``params``, ``state`` and ``opt_state`` (if given)
    carry a leading axis K, and so does ``key`` when it is an array of K keys; run ``i`` starts
    from row ``i`` of each, and ``hp`` may then be all scalars. Run ``i`` is exactly ``fit`` with
    row ``i`` of everything. One shared key (same batches, same dropout masks in every run: common
    random numbers) is also faster: the first layer's products become one wide matrix product.

    >>> # runs = sweep(model, params, ds, key=key, hp={"lr": 0.003, "lam": jnp.linspace(0, 5, 64)}, ...)
    """
    static, rule = _static(
        model, epochs, batch_size, optimizer, penalty, project, data, key, augment, early_stopping
    )
    hp = _as_hp(hp)
    if any(v.ndim > 1 for v in hp.values()):
        raise ValueError("hp entries must be scalars or 1-D sequences")
    sizes = {k: v.shape[0] for k, v in hp.items() if v.ndim == 1}
    state = {} if state is None else state
    modes = (bool(stacked), bool(stacked) and _is_key_array(key))
    per_run = (params, state, opt_state) + ((key,) if modes[1] else ()) if stacked else ()
    if stacked:
        rows = {np.shape(leaf)[:1] for leaf in jax.tree.leaves(per_run)}
        if len(rows) != 1 or () in rows:
            raise ValueError(
                "stacked=True needs params, state, opt_state (and key, unless one key is shared) "
                f"with one leading axis of runs, of equal lengths; got leading axes {sorted(rows)}"
            )
        sizes["(stacked runs)"] = rows.pop()[0]
    elif not sizes:
        raise ValueError("sweep needs at least one hp entry that is a 1-D sequence of values")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"swept hp entries must have equal lengths, got {sizes}")
    swept = tuple(sorted(k for k in sizes if k in hp))
    k, first_epoch = next(iter(sizes.values())), _first_epoch(first_epoch)
    if stacked:  # the contract is checked on one run: row 0 of everything per run
        row0 = jax.tree.map(lambda leaf: leaf[0], per_run)
        _check_hp(static, row0[0], row0[1], data, row0[3] if modes[1] else key, hp, swept)
    else:
        _check_hp(static, params, state, data, key, hp, swept)
    n = sweep_workers(k)
    chunks = list(zip(_chunk_hp(hp, swept, k, n), _chunk_rows(per_run, k, n), strict=True))

    def args_of(chunk):
        chunk_hp, rows = chunk
        p, s, o, ky = (*rows, key)[:4] if stacked else (params, state, opt_state, key)
        return (p, s, data, ky, chunk_hp, swept, o, first_epoch, modes, rule)

    def one(chunk):
        return jax.block_until_ready(_sweep_jit(static, *args_of(chunk)))

    if len(chunks) == 1:
        outs = [one(chunks[0])]
    else:
        args = args_of(chunks[0])
        traced = args[:5] + args[6:8] + args[10:]
        signature = (
            static,
            swept,
            modes,
            jax.tree.structure(traced),
            tuple(map(np.shape, jax.tree.leaves(traced))),
        )
        if signature not in _compiled:  # compile here, once, so that the threads only run it
            _sweep_jit.lower(static, *args).compile()
            _compiled.add(signature)
        with ThreadPoolExecutor(len(chunks)) as pool:  # XLA releases the GIL while it runs
            outs = list(pool.map(one, chunks))
    if len(outs) == 1:
        params, state, history, opt_state, stop = outs[0]
    else:
        params, state, history, opt_state, stop = jax.tree.map(  # joined on the host
            lambda *xs: jnp.asarray(np.concatenate(xs)[:k]), *outs
        )
    run = _as_run(params, state, history, opt_state, stop)
    _warn_divergence(run.history, hp)
    return run


_compiled: set = set()  # sweep signatures already compiled (their chunks only need running)


def sweep_workers(k: int) -> int:
    """How many chunks ``sweep`` splits ``k`` runs into: 1 on a GPU; on a CPU one per usable core.

    The environment variable ``LESSONLIB_SWEEP_WORKERS`` overrides the core count.
    """
    k = ck.positive_int("k", k)
    if jax.default_backend() != "cpu":
        return 1
    env = os.environ.get("LESSONLIB_SWEEP_WORKERS", "")
    if env.isdigit():
        cores = int(env)
    elif hasattr(os, "sched_getaffinity"):  # the cores this process may use (Linux)
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return max(1, min(k, cores))


def _chunk_hp(hp: dict, swept: tuple[str, ...], k: int, n: int) -> list[dict]:
    """``n`` hp dicts with ``ceil(k / n)`` values each; the last one is padded by repeating the last
    value, so every chunk has the same shape and shares one compilation (``sweep`` drops the pads)."""
    if n == 1:
        return [hp]
    size = -(-k // n)
    padded = {name: np.resize(np.asarray(hp[name]), size * n) for name in swept}
    for v in padded.values():
        v[k:] = v[k - 1]
    return [
        {**hp, **{name: v[i * size : (i + 1) * size] for name, v in padded.items()}}
        for i in range(n)
    ]


def _is_key_array(key) -> bool:
    """True for an array of keys (``jax.random.split(key, K)``), False for a single key."""
    if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        return np.ndim(key) == 1
    return np.ndim(key) == 2  # legacy uint32[K, 2] keys


def _chunk_rows(tree, k: int, n: int) -> list:
    """``tree`` (leaves with a leading axis ``k``) cut like ``_chunk_hp``: ``n`` equal chunks,
    the last padded by repeating its last row. Cut on the host (several chunks: a CPU), where
    an index costs no dispatch; an array of keys is indexed as a jax array."""
    if n == 1:
        return [tree]
    size = -(-k // n)
    rows = np.minimum(np.arange(size * n), k - 1).reshape(n, size)

    def cut(x, r):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x[jnp.asarray(r)]
        return np.asarray(x)[r]

    return [jax.tree.map(lambda x, r=r: cut(x, r), tree) for r in rows]


def diverged_at(history: Mapping[str, np.ndarray]) -> np.ndarray:
    """First epoch (1-based) with a non-finite train loss, 0 if none; one entry per swept run."""
    bad = ~np.isfinite(np.asarray(history["train_loss"]))
    first = np.where(bad.any(axis=-1), bad.argmax(axis=-1) + 1, 0)
    return first


def _warn_divergence(history, hp) -> None:
    first = np.atleast_1d(diverged_at(history))
    if first.any():
        which = np.flatnonzero(first)
        desc = ", ".join(f"run {i} at epoch {first[i]}" for i in which[:5])
        more = f" and {len(which) - 5} more" if len(which) > 5 else ""
        warnings.warn(
            f"training diverged (loss became NaN/inf): {desc}{more}. The learning rate is probably "
            f"too large for this problem (hp={ {k: np.asarray(v).round(6).tolist() for k, v in hp.items()} }).",
            RuntimeWarning,
            stacklevel=3,
        )


def compile_count() -> int:
    """How many distinct compiled versions of the single-run and sweep functions exist so far."""
    return _run_jit._cache_size() + _sweep_jit._cache_size()
