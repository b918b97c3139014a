"""The learning-rate range test ("LR finder", Smith 2017) and the rule that picks a rate from it.

Train for one sweep of batches while the rate grows exponentially from tiny to huge, one value
per batch, and record the loss: ``lr_finder`` does it as one ``lax.scan`` over copies of the
parameters (the caller's are never touched) and returns ``(lrs, losses)``. Plotted against
``log(lr)`` the loss stays flat (the rate is too small to matter), falls, then shoots up (too
large). ``smooth_losses`` removes the batch-to-batch noise and ``pick_lr`` chooses a rate a bit
below where the curve climbs. The rate picked is a good constant rate, or the peak of
``schedules.one_cycle``.

Arguments are checked with ``lessonlib._checks`` (traced values are skipped).

References: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
sec. 3.3; A. Géron, *Hands-On Machine Learning*, 3rd ed., ch. 11 (``find_learning_rate``);
fastai ``lr_find``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck
from lessonlib import optim

__all__ = ["lr_finder", "make_sgd_step", "pick_lr", "smooth_losses"]


def make_sgd_step(loss_fn: Callable) -> Callable:
    """``step(params, batch, lr) -> (params, loss)`` doing plain SGD on ``loss_fn(params, batch)``.

    The loss returned is the one measured *before* the update, as Keras and fastai log it.
    """

    def step(params, batch, lr):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        opt = optim.sgd(lr)
        updates, _ = opt.update(grads, opt.init(params), params)
        return optim.apply_updates(params, updates), loss

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

    References: see the module docstring.
    """
    ck.positive("min_lr", min_lr)
    ck.positive("max_lr", max_lr)
    ck.ordered("min_lr", min_lr, "max_lr", max_lr)
    ck.check("stop_factor", stop_factor, lambda v: v > 1, "> 1")
    ck.in_range("beta", beta, 0.0, 1.0, hi_open=True)
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
    ck.in_range("beta", beta, 0.0, 1.0, hi_open=True)
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
    ck.one_of("rule", rule, ["minimum", "steepest"])
    ck.check("divisor", divisor, lambda v: v >= 1, ">= 1")
    ck.in_range("beta", beta, 0.0, 1.0, hi_open=True)
    lrs = jnp.asarray(lrs).astype(jnp.float32)
    n = lrs.shape[0]
    skip = n // 10 if skip_start is None else ck.integer("skip_start", skip_start)
    ck.in_range("skip_start", skip, 0, n, hi_open=True)
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
