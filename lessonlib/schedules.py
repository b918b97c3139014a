"""Learning-rate schedules: step -> value functions, reduce-on-plateau, and the LR range finder.

A schedule is a closure over its hyperparameters that maps the optimizer's step counter ``t``
(0, 1, 2, ... one per *batch*) to a learning rate. It is built once, in Python, where its
arguments are checked; its body uses ``jnp`` only, so it runs inside ``jax.jit`` and
``lax.scan``, and it can be passed anywhere optax accepts a ``learning_rate``::

    opt = optax.sgd(learning_rate=exponential_decay(0.1, s=1_000))

Every schedule is elementwise: ``sched(jnp.arange(1000))`` gives the first 1,000 rates at once.
Hyperparameters may themselves be traced values (arguments of a jitted function): then the same
compiled training run serves every setting of a slider. Traced values cannot be checked in
Python, so the checks apply to concrete numbers only.

| schedule              | formula                                             | Keras / optax name         |
|-----------------------|-----------------------------------------------------|----------------------------|
| ``power_decay``       | eta0 / (1 + t/s)^c                                  | InverseTimeDecay (c = 1)   |
| ``exponential_decay`` | eta0 * 0.1^(t/s)                                    | ExponentialDecay           |
| ``piecewise_constant``| values[i] for boundaries[i-1] <= t < boundaries[i]  | piecewise_constant_schedule|
| ``one_cycle``         | linear up, linear down, then a long tail much lower | linear_onecycle_schedule   |

References: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017
(the LR range test); L. N. Smith & N. Topin, "Super-Convergence", 2018 and L. N. Smith, "A
disciplined approach to neural network hyper-parameters: Part 1", 2018 (1cycle, cycled
momentum); A. Géron, *Hands-On Machine Learning*, 3rd ed., ch. 11 ("Learning Rate
Scheduling"); Keras docs for ``keras.optimizers.schedules`` and ``ReduceLROnPlateau``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Schedule = Callable[[Any], jax.Array]

__all__ = [
    "PlateauState",
    "exponential_decay",
    "lr_finder",
    "make_sgd_step",
    "one_cycle",
    "one_cycle_momentum",
    "pick_lr",
    "piecewise_constant",
    "plateau_init",
    "plateau_update",
    "power_decay",
    "smooth_losses",
]


# --------------------------------------------------------------------------- argument checks
def _concrete(x):
    """The Python float of `x`, or None when `x` is traced (inside jit it has no value yet)."""
    try:
        return float(x)
    except jax.errors.ConcretizationTypeError:
        return None


def _check(name: str, x, ok: Callable[[float], bool], allowed: str) -> None:
    value = _concrete(x)
    if value is not None and not ok(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _positive(name: str, x) -> None:
    _check(name, x, lambda v: v > 0, "> 0")


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
    _positive("init_value", init_value)
    _positive("s", s)
    _positive("c", c)

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
    _positive("init_value", init_value)
    _positive("s", s)

    def schedule(t):
        return init_value * 0.1 ** (_step(t) / s)

    return schedule


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
        _positive(f"values[{i}]", v)
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
    if _concrete(total_steps) is not None and (
        total_steps != int(total_steps) or int(total_steps) <= 0
    ):
        raise ValueError(f"total_steps must be an integer > 0, got {total_steps!r}")
    _check("pct_start", pct_start, lambda v: 0 < v < 1, "in (0, 1)")
    _check("pct_final", pct_final, lambda v: 0 < v <= 1, "in (0, 1]")
    ps, pf = _concrete(pct_start), _concrete(pct_final)
    if ps is not None and pf is not None and not ps < pf:
        raise ValueError(f"pct_start must be < pct_final, got {ps} and {pf}")
    total = jnp.asarray(total_steps, dtype=jnp.float32)
    # int() as optax does: phase ends are whole steps.
    b1 = jnp.floor(pct_start * total)
    b2 = jnp.floor(pct_final * total)
    if _concrete(total_steps) is not None and ps is not None and pf is not None:
        if not 0 < int(ps * total_steps) < int(pf * total_steps):
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
    LR range finder (``lr_finder`` / ``pick_lr``). Every value may be traced.

    Example:
      >>> sched = one_cycle(100, 0.1)
      >>> [round(float(sched(t)), 6) for t in (0, 45, 90, 100)]
      [0.01, 0.1, 0.01, 1e-05]

    References: L. N. Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
    arXiv:1803.09820, 2018; Smith & Topin, "Super-Convergence", arXiv:1708.07120;
    Géron, Hands-On ML 3rd ed., ch. 11.
    """
    knots = _one_cycle_knots(total_steps, pct_start, pct_final)
    _positive("max_value", max_value)
    if start_value is None:
        start_value = max_value / 10.0
    if final_value is None:
        final_value = start_value / 1000.0
    _positive("start_value", start_value)
    _positive("final_value", final_value)
    mv, sv = _concrete(max_value), _concrete(start_value)
    if mv is not None and sv is not None and not sv <= mv:
        raise ValueError(f"start_value must be <= max_value (= {mv}), got {sv}")
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
    _check("max_momentum", max_momentum, lambda v: 0 <= v < 1, "in [0, 1)")
    _check("min_momentum", min_momentum, lambda v: 0 <= v < 1, "in [0, 1)")
    lo, hi = _concrete(min_momentum), _concrete(max_momentum)
    if lo is not None and hi is not None and not lo <= hi:
        raise ValueError(f"min_momentum must be <= max_momentum (= {hi}), got {lo}")
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
    _positive("lr", lr)
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
      factor: in (0, 1); Géron / seed 004 use 0.5 (Keras' default is 0.1).
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
    _check("factor", factor, lambda v: 0 < v < 1, "in (0, 1)")
    _check("patience", patience, lambda v: v >= 0 and v == int(v), "an integer >= 0")
    _check("cooldown", cooldown, lambda v: v >= 0 and v == int(v), "an integer >= 0")
    _check("min_lr", min_lr, lambda v: v >= 0, ">= 0")
    _check("min_delta", min_delta, lambda v: v >= 0, ">= 0")
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


# --------------------------------------------------------------------------- LR range finder
def make_sgd_step(loss_fn: Callable) -> Callable:
    """``step(params, batch, lr) -> (params, loss)`` doing plain SGD on ``loss_fn(params, batch)``.

    The loss returned is the one measured *before* the update, as Keras and fastai log it.
    """

    def step(params, batch, lr):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return params, loss

    return step


@functools.partial(jax.jit, static_argnums=0)
def _sweep(step, params, batches, lrs, stop_factor, beta):
    def body(carry, xs):
        params, avg, best, stopped, i = carry
        batch, lr = xs
        new_params, loss = step(params, batch, lr)
        loss = jnp.asarray(loss).astype(jnp.float32)
        recorded = jnp.where(stopped, jnp.nan, loss)
        # fastai's stopping rule on the bias-corrected moving average of the loss (a single
        # noisy batch must not end the sweep): stop once it exceeds stop_factor x its best,
        # or at the first non-finite loss. Then the parameters are frozen.
        avg = beta * avg + (1.0 - beta) * loss
        smooth = avg / (1.0 - beta ** (i + 1.0))
        best = jnp.where(stopped, best, jnp.minimum(best, smooth))
        stopped = stopped | ~jnp.isfinite(loss) | (smooth > stop_factor * best)
        params = jax.tree.map(lambda new, old: jnp.where(stopped, old, new), new_params, params)
        return (params, avg, best, stopped, i + 1.0), recorded

    zero = jnp.zeros((), jnp.float32)
    init = (params, zero, jnp.asarray(jnp.inf, jnp.float32), jnp.asarray(False), zero)
    _, losses = jax.lax.scan(body, init, (batches, lrs))
    return losses


def lr_finder(
    step: Callable,
    params,
    batches,
    *,
    min_lr=1e-5,
    max_lr=10.0,
    stop_factor=4.0,
    beta=0.9,
) -> tuple[jax.Array, jax.Array]:
    r"""LR range test (Smith 2017): train one epoch while the rate grows exponentially.

    Batch ``i`` of ``n`` is trained with ``lr_i = min_lr * (max_lr / min_lr) ** (i / (n - 1))``
    and its loss (before the update) is recorded. Plotted against ``lr`` on a log axis the loss
    first stays flat (rate too small), then falls, then shoots up (too large): a good rate sits
    below the point where it shoots up -- see ``pick_lr``. The sweep stops (later losses are
    NaN) at the first non-finite loss or once the smoothed loss (moving average, factor
    ``beta``, as in ``pick_lr``) exceeds ``stop_factor`` times its best value.

    Pure: the whole sweep is one ``lax.scan`` over copies of ``params``; the caller's ``params``
    are not modified and the trained ones are thrown away -- re-initialise nothing, just train
    from the same ``params`` with the rate you pick.

    Args:
      step: ``step(params, batch, lr) -> (new_params, loss)``, any model and optimizer. To
        carry optimizer state, let ``params`` be a pytree ``(params, opt_state)``. Use
        ``make_sgd_step(loss_fn)`` for plain SGD.
      params: the starting pytree.
      batches: a pytree whose leaves have a leading axis of length n (one epoch of batches),
        e.g. ``(X.reshape(n, B, d), y.reshape(n, B))``.
      min_lr, max_lr: ``0 < min_lr < max_lr``; the sweep's ends.
      stop_factor: > 1; ``jnp.inf`` never stops.
      beta: smoothing factor in [0, 1) of the loss used by the stopping rule.

    Returns:
      ``(lrs, losses)``, both of shape ``(n,)``.

    Example:
      >>> loss_fn = lambda w, batch: jnp.mean((batch[0] * w - batch[1]) ** 2)
      >>> xs = jnp.ones((100, 8))
      >>> lrs, losses = lr_finder(make_sgd_step(loss_fn), jnp.float32(0.0), (xs, 2 * xs),
      ...                         min_lr=1e-4, max_lr=10.0)
      >>> lrs.shape, round(float(lrs[0]), 6), round(float(lrs[-1]), 3)
      ((100,), 0.0001, 10.0)

    References: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
    sec. 3.3; Géron, Hands-On ML 3rd ed., ch. 11 (``find_learning_rate``); fastai ``lr_find``.
    """
    _positive("min_lr", min_lr)
    _positive("max_lr", max_lr)
    _check("stop_factor", stop_factor, lambda v: v > 1, "> 1")
    _check("beta", beta, lambda v: 0 <= v < 1, "in [0, 1)")
    lo, hi = _concrete(min_lr), _concrete(max_lr)
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"min_lr must be < max_lr (= {hi}), got {lo}")
    leaves = jax.tree.leaves(batches)
    if not leaves or jnp.ndim(leaves[0]) == 0:
        raise ValueError("batches must be a pytree of arrays with a leading batch axis")
    n = leaves[0].shape[0]
    if n < 2:
        raise ValueError(f"batches must hold at least 2 batches, got {n}")
    i = jnp.arange(n, dtype=jnp.float32)
    lo_, hi_ = jnp.float32(min_lr), jnp.float32(max_lr)
    lrs = lo_ * (hi_ / lo_) ** (i / (n - 1))
    return lrs, _sweep(step, params, batches, lrs, jnp.float32(stop_factor), jnp.float32(beta))


def smooth_losses(losses, beta=0.9) -> jax.Array:
    """Bias-corrected exponential moving average of an LR-finder curve (fastai's smoothing).

    ``a_i = beta * a_{i-1} + (1 - beta) * loss_i`` with ``a_{-1} = 0``, returned as
    ``a_i / (1 - beta**(i + 1))`` (the division undoes the pull towards the zero start, as in
    Adam). Non-finite losses become +inf, and so does every smoothed value after them.

    Example:
      >>> [round(float(v), 4) for v in smooth_losses(jnp.array([1.0, 3.0, jnp.nan]), beta=0.5)]
      [1.0, 2.3333, inf]
    """
    losses = jnp.asarray(losses).astype(jnp.float32)
    beta = jnp.float32(beta)
    losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)

    def body(avg, loss):
        avg = beta * avg + (1.0 - beta) * loss
        return avg, avg

    _, avgs = jax.lax.scan(body, jnp.zeros((), losses.dtype), losses)
    i = jnp.arange(1, losses.shape[0] + 1, dtype=losses.dtype)
    smooth = avgs / (1.0 - beta**i)
    return jnp.where(jnp.isnan(smooth), jnp.inf, smooth)  # beta = 0: 0 * inf is NaN


def pick_lr(lrs, losses, *, rule="minimum", divisor=10.0, beta=0.9, skip_start=None) -> jax.Array:
    """Choose a learning rate from an LR range test.

    The raw per-batch losses are noisy, so they are first smoothed with a bias-corrected
    exponential moving average (factor ``beta``; fastai uses 0.98 for 100+ batches, a short
    sweep needs less). Then:

    * ``rule="minimum"`` (default): the rate at the smoothed loss' minimum divided by
      ``divisor`` (10). At the minimum the loss is about to shoot up -- training there is on the
      edge of divergence; an order of magnitude lower is still fast and safely stable
      (Géron ch. 11: "a bit lower than the point at which the loss starts to climb", fastai v1's
      ``lr_min / 10``). This is the rule the chapter uses.
    * ``rule="steepest"``: the rate where the smoothed loss falls fastest per unit of
      ``log(lr)`` (a difference over +-n/20 points), searched before the minimum (fastai's
      ``lr_steep``): the loss is improving most quickly there. Usually of the same order as
      the first rule, but noisier.

    The first ``skip_start`` points (default: a tenth of the sweep) are left out of both
    searches: there the rate is too small to change anything and the slope is pure noise.
    NaN losses (after the finder stopped) are ignored.

    Example:
      >>> lrs = jnp.logspace(-4, 0, 5)  # 1e-4, 1e-3, 1e-2, 1e-1, 1
      >>> losses = jnp.array([1.0, 0.8, 0.3, 2.0, jnp.nan])
      >>> round(float(pick_lr(lrs, losses, beta=0.0)), 6)
      0.001
    """
    if rule not in ("minimum", "steepest"):
        raise ValueError(f'rule must be "minimum" or "steepest", got {rule!r}')
    _check("divisor", divisor, lambda v: v >= 1, ">= 1")
    _check("beta", beta, lambda v: 0 <= v < 1, "in [0, 1)")
    lrs = jnp.asarray(lrs).astype(jnp.float32)
    n = lrs.shape[0]
    skip = n // 10 if skip_start is None else int(skip_start)
    if not 0 <= skip < n:
        raise ValueError(f"skip_start must be in [0, {n}), got {skip}")
    losses = jnp.asarray(losses).astype(jnp.float32)
    return _pick(lrs, losses, jnp.float32(beta), jnp.float32(divisor), rule, skip)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _pick(lrs, losses, beta, divisor, rule, skip):
    n = lrs.shape[0]
    smooth = smooth_losses(losses, beta)
    index = jnp.arange(n)
    i_min = jnp.argmin(jnp.where(index >= skip, smooth, jnp.inf))
    if rule == "minimum":
        return lrs[i_min] / divisor
    # Slope d(loss)/d(log lr) as a difference over +-k points: a wide stencil averages noise.
    k = max(1, n // 20)
    lo, hi = jnp.clip(index - k, 0, n - 1), jnp.clip(index + k, 0, n - 1)
    log_lr = jnp.log(lrs)
    slope = (smooth[hi] - smooth[lo]) / (log_lr[hi] - log_lr[lo])
    slope = jnp.where((index >= skip) & (index <= i_min) & ~jnp.isnan(slope), slope, jnp.inf)
    return lrs[jnp.argmin(slope)]
