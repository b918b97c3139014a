"""Learning-rate schedules: step -> value functions, and reduce-on-plateau.

A schedule is a closure over its hyperparameters that maps the optimizer's step counter ``t``
(0, 1, 2, ... one per *batch*) to a learning rate. It is built once, in Python, where its
arguments are checked; its body uses ``jnp`` only, so it runs inside ``jax.jit`` and
``lax.scan``, and it can be passed anywhere optax accepts a ``learning_rate``::

    opt = optax.sgd(learning_rate=exponential_decay(0.1, s=1_000))

Every schedule is elementwise: ``sched(jnp.arange(1000))`` gives the first 1,000 rates at once.
Hyperparameters may themselves be traced values (arguments of a jitted function): then the same
compiled training run serves every setting of a slider. Arguments are checked with
``lessonlib._checks`` when a schedule is built (traced values are skipped).

| schedule              | formula                                             | Keras / optax name         |
|-----------------------|-----------------------------------------------------|----------------------------|
| ``power_decay``       | eta0 / (1 + t/s)^c                                  | InverseTimeDecay (c = 1)   |
| ``exponential_decay`` | eta0 * 0.1^(t/s)                                    | ExponentialDecay           |
| ``piecewise_constant``| values[i] for boundaries[i-1] <= t < boundaries[i]  | piecewise_constant_schedule|
| ``one_cycle``         | linear up, linear down, then a long tail much lower | linear_onecycle_schedule   |
| ``cosine_decay``      | eta0 * ((1-a) (1 + cos(pi t/T))/2 + a), t <= T      | cosine_decay_schedule      |
| ``linear_warmup``     | linear init -> peak over w steps, then a schedule   | linear_schedule + join     |

The LR range test that picks a schedule's peak rate is in ``lessonlib.lr_finder``.

References: I. Loshchilov & F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
ICLR 2017 (cosine annealing; ``cosine_decay`` is one period, without restarts); P. Goyal et al.,
"Accurate, Large Minibatch SGD", 2017 (linear warm-up); L. N. Smith & N. Topin, "Super-Convergence", 2018 and L. N. Smith, "A
disciplined approach to neural network hyper-parameters: Part 1", 2018 (1cycle, cycled
momentum); A. Géron, *Hands-On Machine Learning*, 3rd ed., ch. 11 ("Learning Rate
Scheduling"); Keras docs for ``keras.optimizers.schedules`` and ``ReduceLROnPlateau``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck

Schedule = Callable[[Any], jax.Array]

__all__ = [
    "PlateauState",
    "cosine_decay",
    "exponential_decay",
    "linear_warmup",
    "one_cycle",
    "one_cycle_momentum",
    "piecewise_constant",
    "plateau_init",
    "plateau_update",
    "power_decay",
]


def _step(t) -> jax.Array:
    """The step counter as a float, clamped at 0 (negative steps hold the initial value)."""
    return jnp.maximum(jnp.asarray(t).astype(jnp.float32), 0.0)


# --------------------------------------------------------------------------- closed-form schedules
def power_decay(init_value, s, c=1.0) -> Schedule:
    r"""Power scheduling: :math:`\eta(t) = \eta_0 / (1 + t/s)^c`.

    The rate halves after ``s`` steps (for c = 1), then falls ever more slowly. With ``c = 1``
    this is Keras ``InverseTimeDecay(initial_learning_rate=eta0, decay_steps=s, decay_rate=1)``;
    in general Keras' ``decay_rate / decay_steps`` is our ``1 / s``.

    Args:
      init_value: eta0 > 0, the rate at step 0.
      s: steps > 0 over which the rate falls to ``eta0 / 2**c``.
      c: exponent > 0 (Géron: usually 1).

    Example:
      >>> sched = power_decay(0.01, s=10_000)
      >>> [round(float(sched(t)), 6) for t in (0, 10_000, 30_000)]
      [0.01, 0.005, 0.0025]

    Reference: Géron, Hands-On ML 3rd ed., ch. 11, "power scheduling"; Keras InverseTimeDecay.
    """
    ck.positive("init_value", init_value)
    ck.positive("s", s)
    ck.positive("c", c)

    def schedule(t):
        return init_value * (1.0 + _step(t) / s) ** (-c)

    return schedule


def exponential_decay(init_value, s) -> Schedule:
    r"""Exponential scheduling: :math:`\eta(t) = \eta_0 \cdot 0.1^{t/s}`.

    The rate drops by a factor of 10 every ``s`` steps, smoothly. Equals
    ``optax.exponential_decay(eta0, transition_steps=s, decay_rate=0.1)`` and Keras
    ``ExponentialDecay(eta0, decay_steps=s, decay_rate=0.1)``.

    Args:
      init_value: eta0 > 0, the rate at step 0.
      s: steps > 0 per factor-of-10 drop.

    Example:
      >>> sched = exponential_decay(0.01, s=20_000)
      >>> [round(float(sched(t)), 6) for t in (0, 20_000, 40_000)]
      [0.01, 0.001, 0.0001]

    Reference: Géron, Hands-On ML 3rd ed., ch. 11, "exponential scheduling".
    """
    ck.positive("init_value", init_value)
    ck.positive("s", s)

    def schedule(t):
        return init_value * 0.1 ** (_step(t) / s)

    return schedule


def cosine_decay(init_value, decay_steps, alpha=0.0) -> Schedule:
    r"""Cosine annealing without restarts (SGDR's one period):

    .. math::
        \eta(t) = \eta_0\Big((1-\alpha)\,\tfrac12\big(1 + \cos(\pi \min(t, T)/T)\big) + \alpha\Big)

    The rate falls slowly at first, fastest halfway, slowly again near :math:`\alpha\eta_0`, and
    is held there after :math:`T` = ``decay_steps``. Equals
    ``optax.cosine_decay_schedule(eta0, decay_steps, alpha)`` and Keras
    ``CosineDecay(eta0, decay_steps, alpha)``.

    Args:
      init_value: eta0 > 0, the rate at step 0.
      decay_steps: T > 0, the steps until the rate reaches ``alpha * init_value``.
      alpha: the final rate as a fraction of ``init_value``, in [0, 1].

    Example:
      >>> sched = cosine_decay(0.1, decay_steps=100)
      >>> [round(float(sched(t)), 6) for t in (0, 50, 100, 150)]
      [0.1, 0.05, 0.0, 0.0]

    Reference: Loshchilov & Hutter, "SGDR", ICLR 2017, eq. (5) with one period.
    """
    ck.positive("init_value", init_value)
    ck.positive("decay_steps", decay_steps)
    ck.in_range("alpha", alpha, 0.0, 1.0)

    def schedule(t):
        progress = jnp.minimum(_step(t), decay_steps) / decay_steps
        return init_value * ((1 - alpha) * 0.5 * (1 + jnp.cos(jnp.pi * progress)) + alpha)

    return schedule


def linear_warmup(
    peak_value, warmup_steps, schedule: Schedule | None = None, *, init_value=0.0
) -> Schedule:
    r"""A linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps`` steps, then
    ``schedule(t - warmup_steps)`` (or ``peak_value`` held, if ``schedule`` is None).

    .. math::
        \eta(t) = \eta_{\text{init}} + (\eta_{\text{peak}} - \eta_{\text{init}})\,t/w
        \quad (t < w), \qquad \eta(t) = \text{schedule}(t - w) \quad (t \ge w)

    ``schedule`` should start at ``peak_value`` (e.g. ``cosine_decay(peak_value, ...)``) so the
    rate is continuous. Warm-up keeps the first steps small while Adam's second-moment estimate
    or a large batch's statistics settle. ``linear_warmup(p, w, cosine_decay(p, T - w, e / p),
    init_value=i)`` equals ``optax.warmup_cosine_decay_schedule(i, p, w, T, e)``.

    Args:
      peak_value: > 0, the rate reached at step ``warmup_steps``.
      warmup_steps: w > 0 steps of warm-up.
      schedule: what follows, as a function of the steps since the warm-up ended.
      init_value: >= 0, the rate at step 0.

    Example:
      >>> sched = linear_warmup(0.1, 10, cosine_decay(0.1, decay_steps=90))
      >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 55, 100)]
      [0.0, 0.05, 0.1, 0.05, 0.0]

    Reference: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
    """
    ck.positive("peak_value", peak_value)
    ck.positive("warmup_steps", warmup_steps)
    ck.non_negative("init_value", init_value)
    ck.ordered("init_value", init_value, "peak_value", peak_value, strict=False)

    def warmed(t):
        t = _step(t)
        ramp = init_value + (peak_value - init_value) * t / warmup_steps
        after = peak_value if schedule is None else schedule(t - warmup_steps)
        return jnp.where(t < warmup_steps, ramp, after)

    return warmed


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    r"""Piecewise constant: ``values[i]`` for ``boundaries[i-1] <= t < boundaries[i]``.

    ``values[0]`` is used before ``boundaries[0]``, ``values[-1]`` from ``boundaries[-1]`` on.
    The new value starts *at* the boundary step, as in optax's ``piecewise_constant_schedule``.
    Keras ``PiecewiseConstantDecay`` switches one step later (it uses ``values[i]`` while
    ``t <= boundaries[i]``): same boundaries, off by one step.

    Args:
      boundaries: strictly increasing steps >= 0 (Python numbers: they fix the structure).
      values: ``len(boundaries) + 1`` rates > 0.

    Example:
      >>> sched = piecewise_constant([50_000, 80_000], [0.01, 0.005, 0.001])
      >>> [round(float(sched(t)), 6) for t in (0, 49_999, 50_000, 80_000)]
      [0.01, 0.01, 0.005, 0.001]

    Reference: Géron, Hands-On ML 3rd ed., ch. 11; Keras PiecewiseConstantDecay.
    """
    boundaries = [float(b) for b in boundaries]
    values = list(values)
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            "values must have len(boundaries) + 1 entries "
            f"(= {len(boundaries) + 1}), got {len(values)}"
        )
    if any(b < 0 for b in boundaries) or any(
        b >= a for b, a in zip(boundaries, boundaries[1:], strict=False)
    ):
        raise ValueError(f"boundaries must be strictly increasing steps >= 0, got {boundaries}")
    for i, v in enumerate(values):
        ck.positive(f"values[{i}]", v)
    bounds = jnp.asarray(boundaries, dtype=jnp.float32)
    rates = jnp.stack([jnp.asarray(v, dtype=jnp.float32) for v in values])

    def schedule(t):
        # How many boundaries have we passed (b <= t)? That is the index of the current value.
        index = jnp.searchsorted(bounds, _step(t), side="right")
        return rates[index]

    return schedule


# --------------------------------------------------------------------------- 1cycle
def _one_cycle_knots(total_steps, pct_start, pct_final) -> jax.Array:
    """Steps where the 1cycle phases meet: [0, end of warm-up, end of cool-down, total]."""
    ck.whole("total_steps", total_steps, min_value=1)
    ck.in_range("pct_start", pct_start, 0.0, 1.0, lo_open=True, hi_open=True)
    ck.in_range("pct_final", pct_final, 0.0, 1.0, lo_open=True)
    ck.ordered("pct_start", pct_start, "pct_final", pct_final)
    total = jnp.asarray(total_steps, dtype=jnp.float32)
    # int() as optax does: phase ends are whole steps.
    b1 = jnp.floor(pct_start * total)
    b2 = jnp.floor(pct_final * total)
    t, ps, pf = (ck.scalar("", v) for v in (total_steps, pct_start, pct_final))  # None if traced
    if None not in (t, ps, pf):
        if not 0 < int(ps * t) < int(pf * t):
            raise ValueError(
                f"total_steps={total_steps} is too small for pct_start={ps}, pct_final={pf}: "
                "each of the first two phases needs at least one step"
            )
    return jnp.stack([jnp.zeros((), jnp.float32), b1, b2, total])


def one_cycle(
    total_steps,
    max_value,
    *,
    start_value=None,
    final_value=None,
    pct_start=0.45,
    pct_final=0.9,
) -> Schedule:
    r"""1cycle (Smith 2018): up to ``max_value``, back down, then a tail far below the start.

    Three linear phases over ``T = total_steps`` steps, with ``b1 = floor(pct_start T)``,
    ``b2 = floor(pct_final T)``:

    * ``0 <= t < b1``: ``start_value -> max_value`` (warm-up; large rates regularize),
    * ``b1 <= t < b2``: ``max_value -> start_value``,
    * ``b2 <= t <= T``: ``start_value -> final_value`` (annihilation), then held.

    Defaults follow Géron's ``OneCycleScheduler``: ``start_value = max_value / 10``,
    ``final_value = start_value / 1000``, the first two phases share 90% of the steps equally.
    ``one_cycle(T, m, start_value=m/25, final_value=m/25/1e4, pct_start=0.3, pct_final=0.85)``
    equals ``optax.linear_onecycle_schedule(T, m)``.

    ``total_steps`` counts *batches*: epochs x batches per epoch. Pick ``max_value`` with the
    LR range test (``lessonlib.lr_finder``). Every value may be traced.

    Example:
      >>> sched = one_cycle(100, 0.1)
      >>> [round(float(sched(t)), 6) for t in (0, 45, 90, 100)]
      [0.01, 0.1, 0.01, 1e-05]

    References: L. N. Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
    arXiv:1803.09820, 2018; Smith & Topin, "Super-Convergence", arXiv:1708.07120;
    Géron, Hands-On ML 3rd ed., ch. 11.
    """
    knots = _one_cycle_knots(total_steps, pct_start, pct_final)
    ck.positive("max_value", max_value)
    if start_value is None:
        start_value = max_value / 10.0
    if final_value is None:
        final_value = start_value / 1000.0
    ck.positive("start_value", start_value)
    ck.positive("final_value", final_value)
    ck.ordered("start_value", start_value, "max_value", max_value, strict=False)
    return _through_knots(knots, (start_value, max_value, start_value, final_value))


def one_cycle_momentum(
    total_steps,
    *,
    max_momentum=0.95,
    min_momentum=0.85,
    pct_start=0.45,
    pct_final=0.9,
) -> Schedule:
    r"""The momentum that goes with ``one_cycle``: 0.95 -> 0.85 -> 0.95, then held at 0.95.

    Momentum moves opposite to the learning rate (Smith 2018, sec. 4.2): while the rate is high
    the momentum is low, so the effective step ``lr / (1 - momentum)`` does not explode. Same
    phase boundaries as ``one_cycle`` with the same ``pct_start`` / ``pct_final``.

    Args:
      total_steps: number of batches in the whole run.
      max_momentum, min_momentum: ``0 <= min_momentum <= max_momentum < 1``.

    Example:
      >>> mom = one_cycle_momentum(100)
      >>> [round(float(mom(t)), 6) for t in (0, 45, 90, 100)]
      [0.95, 0.85, 0.95, 0.95]
    """
    knots = _one_cycle_knots(total_steps, pct_start, pct_final)
    ck.in_range("max_momentum", max_momentum, 0.0, 1.0, hi_open=True)
    ck.in_range("min_momentum", min_momentum, 0.0, 1.0, hi_open=True)
    ck.ordered("min_momentum", min_momentum, "max_momentum", max_momentum, strict=False)
    return _through_knots(knots, (max_momentum, min_momentum, max_momentum, max_momentum))


def _through_knots(knots, values) -> Schedule:
    """Linear interpolation through ``(knots[i], values[i])``, holding the end values (1cycle)."""
    heights = jnp.stack([jnp.asarray(v, dtype=jnp.float32) for v in values])

    def schedule(t):
        return jnp.interp(_step(t), knots, heights)

    return schedule


# --------------------------------------------------------------------------- reduce on plateau
class PlateauState(NamedTuple):
    """Reduce-on-plateau state. ``best``, ``wait``, ``cooldown_counter`` as in Keras."""

    lr: jax.Array  # the current learning rate
    best: jax.Array  # best metric seen so far (+inf before the first update)
    wait: jax.Array  # epochs since the last improvement (int32)
    cooldown_counter: jax.Array  # epochs of cooldown left after a reduction (int32)


def plateau_init(lr) -> PlateauState:
    """The state before the first epoch: rate ``lr``, no best metric yet."""
    ck.positive("lr", lr)
    return PlateauState(
        lr=jnp.asarray(lr, dtype=jnp.float32),
        best=jnp.asarray(jnp.inf, dtype=jnp.float32),
        wait=jnp.zeros((), jnp.int32),
        cooldown_counter=jnp.zeros((), jnp.int32),
    )


def plateau_update(
    state: PlateauState,
    metric,
    *,
    factor=0.5,
    patience=5,
    cooldown=0,
    min_lr=0.0,
    min_delta=1e-4,
) -> PlateauState:
    """Performance scheduling: one epoch of Keras' ``ReduceLROnPlateau`` (mode="min").

    Call once per epoch with the validation loss. The rule, in Keras' order:

    1. If in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1``, ``wait = 0``.
    2. If ``metric < best - min_delta``: ``best = metric``, ``wait = 0``.
    3. Else, if not (still) in cooldown: ``wait += 1``; when ``wait >= patience`` and
       ``lr > min_lr``: ``lr = max(lr * factor, min_lr)``, ``cooldown_counter = cooldown``,
       ``wait = 0``.

    So with ``patience=5`` the rate drops at the 5th epoch in a row without improvement.
    Written with ``jnp.where`` (no Python ``if`` on values): it runs inside ``jit`` and
    ``lax.scan``, where the state is carried from epoch to epoch.

    Args:
      state: from ``plateau_init`` or a previous update.
      metric: this epoch's monitored value (lower is better).
      factor: in (0, 1); Géron (and the notes on his chapter 11) use 0.5 (Keras' default is 0.1).
      patience: epochs >= 0 without improvement before reducing (Keras' default is 10).
      cooldown: epochs >= 0 after a reduction during which no waiting is counted.
      min_lr: floor >= 0 for the rate.
      min_delta: improvement >= 0 needed to count as better.

    Example:
      >>> state = plateau_init(0.1)
      >>> for loss in [1.0, 0.9, 0.9, 0.9]:
      ...     state = plateau_update(state, loss, patience=2)
      ...     print(round(float(state.lr), 6), int(state.wait))
      0.1 0
      0.1 0
      0.1 1
      0.05 0

    Reference: Keras ``keras.callbacks.ReduceLROnPlateau``; Géron, Hands-On ML 3rd ed., ch. 11.
    """
    ck.in_range("factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
    ck.whole("patience", patience, min_value=0)
    ck.whole("cooldown", cooldown, min_value=0)
    ck.non_negative("min_lr", min_lr)
    ck.non_negative("min_delta", min_delta)
    metric = jnp.asarray(metric).astype(jnp.float32)

    in_cooldown = state.cooldown_counter > 0
    counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
    wait = jnp.where(in_cooldown, 0, state.wait)

    improved = metric < state.best - min_delta
    best = jnp.where(improved, metric, state.best)
    still_cooling = counter > 0
    wait = jnp.where(improved, 0, jnp.where(still_cooling, wait, wait + 1))

    reduce = (~improved) & (~still_cooling) & (wait >= patience) & (state.lr > min_lr)
    lr = jnp.where(reduce, jnp.maximum(state.lr * factor, min_lr), state.lr)
    counter = jnp.where(reduce, cooldown, counter)
    wait = jnp.where(reduce, 0, wait)
    return PlateauState(lr=lr, best=best, wait=wait, cooldown_counter=counter)
