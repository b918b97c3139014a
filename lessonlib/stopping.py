r"""Early stopping with the rule of Keras 3's ``EarlyStopping`` callback, as pure jittable code.

After every epoch ``e`` (0-based) the monitored value ``v`` (a validation loss, say) goes through
one step of this rule; ``best`` starts at ``+inf`` (mode ``"min"``) or ``-inf`` (``"max"``):

    if e < start_from_epoch:            nothing happens (warm-up)
    on the first monitored epoch:       remember these weights as the best so far
    wait <- wait + 1
    if v improves on best by more than min_delta   (min: v + min_delta < best; max: v - min_delta > best)
        best <- v, remember these weights
        if v also improves on the baseline (same test): wait <- 0
    elif wait >= patience and e > 0:    stop at the end of epoch e

(keras/src/callbacks/early_stopping.py: ``on_epoch_end``, ``_is_improvement``.) Three details a
hand-written version usually gets wrong: an improvement must beat ``best`` by MORE than
``min_delta`` (a strict ``<``; a change of exactly ``min_delta`` does not count); ``wait`` is
incremented *before* the improvement test, so with ``patience=p`` training stops at the ``p``-th
epoch in a row without an improvement; and an improving epoch never stops training. With a
``baseline``, an improvement resets ``wait`` only when it also beats the baseline, so a run that
never gets below the baseline stops ``patience`` epochs after its first monitored epoch. Keras 3
restores the remembered weights at the end of training when ``restore_best_weights=True``, whether
training stopped early or not; if no epoch was monitored (all before ``start_from_epoch``), it
restores nothing.

``early_stopping(values, ...)`` applies the rule to a whole history at once (a ``lax.scan``); the
training engine (``train.fit(..., early_stopping=EarlyStopping(...))``) applies the same ``update``
after every epoch inside its one compiled run. ``patience``, ``min_delta``, ``baseline`` and
``start_from_epoch`` are traced there, so changing them never recompiles.

>>> import jax.numpy as jnp
>>> stop, best = early_stopping(jnp.array([5.0, 3.0, 4.0, 3.5, 3.2]), patience=2)
>>> int(stop), int(best)   # epochs 2 and 3 do not beat 3.0: stop after epoch 3, restore epoch 1
(3, 1)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks as ck

MODES = ("min", "max")


class EarlyStopping(NamedTuple):
    """How ``train.fit`` / ``train.sweep`` stop a run early (Keras 3's ``EarlyStopping``).

    ``monitor`` names a per-epoch entry of the run's history: ``"val_loss"`` (the default, as in
    Keras) needs a validation split (``data.with_validation``); ``"val_acc"``, ``"train_loss"`` ...
    work too. ``mode="auto"`` minimizes names ending in ``loss`` and maximizes names ending in
    ``acc``. ``restore_best_weights=False`` (Keras's default) keeps the weights of the last epoch
    trained; ``True`` returns the best epoch's weights. The numbers are traced: a run with another
    ``patience`` or ``min_delta`` reuses the compiled program.
    """

    monitor: str = "val_loss"
    patience: int = 0
    min_delta: float = 0.0
    mode: str = "auto"
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: int = 0


class State(NamedTuple):
    """The rule's state between epochs (Keras's attributes ``best``, ``wait``, ``best_epoch``,
    ``stopped_epoch``; ``captured`` is Keras's ``best_weights is not None``)."""

    best: jax.Array  # best monitored value so far (+inf / -inf at the start)
    wait: jax.Array  # epochs since the last improvement that reset it
    best_epoch: jax.Array  # the epoch whose weights are remembered (-1: none yet)
    stop_epoch: jax.Array  # the epoch at whose end training stopped (-1: still training)


class Rule(NamedTuple):
    """The rule's numbers as arrays (traced in a compiled run); ``init``/``update`` read them."""

    patience: jax.Array
    min_delta: jax.Array
    baseline: jax.Array
    start_from_epoch: jax.Array


def rule(*, patience, min_delta=0.0, mode="min", baseline=None, start_from_epoch=0) -> Rule:
    """Check the arguments (concrete ones; traced ones are skipped) and pack them as arrays.

    ``baseline=None`` becomes ``+inf`` in mode ``"min"`` (``-inf`` in ``"max"``): every
    improvement then also beats the baseline, which is exactly Keras's "no baseline".
    """
    ck.one_of("mode", mode, MODES)
    ck.whole("patience", patience, min_value=0)
    ck.non_negative("min_delta", min_delta)  # Keras takes abs(min_delta); a sign here is a mistake
    ck.whole("start_from_epoch", start_from_epoch, min_value=0)
    if baseline is None:
        baseline = np.inf if mode == "min" else -np.inf
    else:
        ck.scalar("baseline", baseline)
    return Rule(
        jnp.asarray(patience).astype(jnp.int32),
        jnp.abs(jnp.asarray(min_delta, jnp.float32)),
        jnp.asarray(baseline, jnp.float32),
        jnp.asarray(start_from_epoch).astype(jnp.int32),
    )


def init(mode: str) -> State:
    """The state before the first epoch (Keras's ``on_train_begin`` and ``best = +-inf``)."""
    ck.one_of("mode", mode, MODES)
    m1 = jnp.asarray(-1, jnp.int32)
    best = jnp.asarray(np.inf if mode == "min" else -np.inf, jnp.float32)
    return State(best, jnp.asarray(0, jnp.int32), m1, m1)


def update(state: State, epoch, value, r: Rule, mode: str) -> tuple[State, jax.Array]:
    """One epoch of the rule. Returns the new state and whether this epoch's weights are to be
    remembered (the first monitored epoch, or an improvement). Nothing changes once stopped."""
    epoch = jnp.asarray(epoch, jnp.int32)
    value = jnp.asarray(value, jnp.float32)

    def improves(reference):  # Keras's _is_improvement, min_delta's sign set by the mode
        if mode == "min":
            return value + r.min_delta < reference
        return value - r.min_delta > reference

    active = (state.stop_epoch < 0) & (epoch >= r.start_from_epoch)
    better = improves(state.best)
    wait = state.wait + 1
    wait = jnp.where(better & improves(r.baseline), 0, wait)
    remember = active & (better | (state.best_epoch < 0))
    stop = active & ~better & (wait >= r.patience) & (epoch > 0)
    new = State(
        best=jnp.where(active & better, value, state.best),
        wait=jnp.where(active, wait, state.wait),
        best_epoch=jnp.where(remember, epoch, state.best_epoch),
        stop_epoch=jnp.where(stop, epoch, state.stop_epoch),
    )
    return new, remember


def early_stopping(
    values,
    *,
    patience,
    min_delta=0.0,
    mode: str = "min",
    baseline=None,
    start_from_epoch=0,
) -> tuple[jax.Array, jax.Array]:
    """Where Keras 3's ``EarlyStopping`` would stop on this history, and which epoch it restores.

    ``values[e]`` is the monitored value after epoch ``e`` (0-based); leading axes are runs (a
    sweep's history of shape (K, epochs) gives K answers). Returns ``(stop_epoch, best_epoch)``
    as int32 arrays: the epoch at whose end training stops (-1 if it would not stop within the
    history), and the epoch whose weights ``restore_best_weights=True`` leaves in the model — the
    remembered best, or the last epoch trained when no epoch was monitored (then Keras restores
    nothing). Jittable; every argument but ``mode`` may be traced.

    >>> early_stopping(jnp.array([1.0, 0.9, 0.88, 0.87]), patience=1, min_delta=0.05)
    (Array(2, dtype=int32), Array(1, dtype=int32))
    >>> early_stopping(jnp.array([0.5, 0.6, 0.7]), patience=1, mode="max")   # never stops
    (Array(-1, dtype=int32), Array(2, dtype=int32))
    """
    r = rule(
        patience=patience,
        min_delta=min_delta,
        mode=mode,
        baseline=baseline,
        start_from_epoch=start_from_epoch,
    )
    values = jnp.asarray(values, jnp.float32)
    if values.ndim == 0 or values.shape[-1] == 0:
        raise ValueError(f"values must hold at least one epoch, got shape {values.shape}")
    return _scan_jit(values, r, mode)


def _scan(values: jax.Array, r: Rule, mode: str) -> tuple[jax.Array, jax.Array]:
    if values.ndim > 1:  # one run per leading index
        return jax.vmap(lambda v: _scan(v, r, mode))(values)
    n = values.shape[0]

    def step(state, ev):
        return update(state, ev[0], ev[1], r, mode)[0], None

    final, _ = jax.lax.scan(step, init(mode), (jnp.arange(n, dtype=jnp.int32), values))
    last = jnp.where(final.stop_epoch >= 0, final.stop_epoch, n - 1)
    best = jnp.where(final.best_epoch >= 0, final.best_epoch, last)
    return final.stop_epoch, best


_scan_jit = jax.jit(_scan, static_argnums=2)  # one compilation per history shape and mode


def resolve_mode(config: EarlyStopping) -> str:
    """``"min"`` or ``"max"`` for a config; ``"auto"`` reads the monitored name as Keras does."""
    ck.one_of("mode", config.mode, ("auto", *MODES))
    if config.mode != "auto":
        return config.mode
    if config.monitor.endswith("loss"):
        return "min"
    if config.monitor.endswith("acc"):
        return "max"
    raise ValueError(
        f"EarlyStopping cannot tell whether monitor={config.monitor!r} should go down or up: "
        "pass mode='min' or mode='max'"
    )
