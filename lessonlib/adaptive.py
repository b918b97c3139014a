r"""Adaptive per-coordinate scalings: AdaGrad, RMSProp, Adam, AdaMax (without the learning rate).

Each divides the gradient, coordinate by coordinate, by a running estimate of its size — a sum of
squares (AdaGrad), an exponential moving average of squares (RMSProp), bias-corrected first and
second moments (Adam), an exponentially weighted infinity norm (AdaMax). They are gradient
transforms like those in ``lessonlib.transforms``: ``lessonlib.optim`` chains them with
``scale_by_learning_rate`` and re-exports every name here. Names, arguments and defaults are
optax's; arguments are checked with ``lessonlib._checks`` (traced values are skipped).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck
from lessonlib.transforms import GradientTransformation, _int_zero, _zeros_like

# ------------------------------------------------------------------------- states


class ScaleByRssState(NamedTuple):
    """AdaGrad's running sum of squared gradients G."""

    sum_of_squares: Any


class ScaleByRmsState(NamedTuple):
    """RMSProp's moving average of squared gradients v."""

    nu: Any


class ScaleByRStdDevState(NamedTuple):
    """Centered RMSProp: moving averages of gradients (mu) and squared gradients (nu)."""

    mu: Any
    nu: Any


class ScaleByAdamState(NamedTuple):
    """Adam/AdaMax/Nadam: step count t, first moment m (mu) and second moment v (nu)."""

    count: jax.Array
    mu: Any
    nu: Any


# ------------------------------------------------------------------------- moving averages


def _ema(new, old, decay):
    """Exponential moving average, leaf by leaf: decay * old + (1 - decay) * new."""
    return jax.tree.map(lambda n, o: decay * o + (1 - decay) * n, new, old)


def _bias_correction(moment, decay, count):
    """An EMA started at zero is too small by a factor 1 - decay**t: divide it out."""
    correction = 1 - decay ** count.astype(jnp.float32)
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


# ------------------------------------------------------------------------- the scalings


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    r"""AdaGrad's scaling: :math:`G_t = G_{t-1} + g_t^2`, output
    :math:`g_t / \sqrt{G_t + \epsilon}`."""
    ck.non_negative("initial_accumulator_value", initial_accumulator_value)
    ck.positive("eps", eps)

    def init(params):
        return ScaleByRssState(
            sum_of_squares=jax.tree.map(
                lambda p: jnp.full_like(p, initial_accumulator_value), params
            )
        )

    def update(updates, state, params=None):
        del params
        sum_sq = jax.tree.map(lambda g, s: s + g**2, updates, state.sum_of_squares)
        updates = jax.tree.map(lambda g, s: g / jnp.sqrt(s + eps), updates, sum_sq)
        return updates, ScaleByRssState(sum_of_squares=sum_sq)

    return GradientTransformation(init, update)


def scale_by_rms(
    decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True
) -> GradientTransformation:
    r"""RMSProp's scaling: :math:`v_t = \rho v_{t-1} + (1-\rho) g_t^2`, output
    :math:`g_t/\sqrt{v_t + \epsilon}` (or :math:`g_t/(\sqrt{v_t} + \epsilon)`)."""
    ck.in_range("decay", decay, 0.0, 1.0, hi_open=True)
    ck.positive("eps", eps)
    ck.non_negative("initial_scale", initial_scale)

    def init(params):
        return ScaleByRmsState(nu=jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params))

    def update(updates, state, params=None):
        del params
        nu = _ema(jax.tree.map(lambda g: g**2, updates), state.nu, decay)
        if eps_in_sqrt:
            updates = jax.tree.map(lambda g, v: g / jnp.sqrt(v + eps), updates, nu)
        else:
            updates = jax.tree.map(lambda g, v: g / (jnp.sqrt(v) + eps), updates, nu)
        return updates, ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update)


def scale_by_stddev(
    decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True
) -> GradientTransformation:
    r"""Centered RMSProp (Graves 2013): divide by an estimate of the standard deviation,
    :math:`\sqrt{v_t - \bar g_t^2 + \epsilon}`, where :math:`\bar g_t` is an EMA of gradients."""
    ck.in_range("decay", decay, 0.0, 1.0, hi_open=True)
    ck.positive("eps", eps)
    ck.non_negative("initial_scale", initial_scale)

    def init(params):
        nu = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return ScaleByRStdDevState(mu=_zeros_like(params), nu=nu)

    def update(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, decay)
        nu = _ema(jax.tree.map(lambda g: g**2, updates), state.nu, decay)
        if eps_in_sqrt:
            scaled = jax.tree.map(lambda g, m, v: g / jnp.sqrt(v - m**2 + eps), updates, mu, nu)
        else:
            scaled = jax.tree.map(lambda g, m, v: g / (jnp.sqrt(v - m**2) + eps), updates, mu, nu)
        return scaled, ScaleByRStdDevState(mu=mu, nu=nu)

    return GradientTransformation(init, update)


def scale_by_adam(
    b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, *, nesterov: bool = False
) -> GradientTransformation:
    r"""Adam's scaling (Kingma & Ba 2015, Algorithm 1), without the learning rate.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad
        \text{output } \frac{\hat m_t}{\sqrt{\hat v_t + \bar\epsilon} + \epsilon}.

    With ``nesterov=True`` (Nadam, Dozat 2016) :math:`\hat m_t` becomes the look-ahead
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.
    """
    ck.in_range("b1", b1, 0.0, 1.0, hi_open=True)
    ck.in_range("b2", b2, 0.0, 1.0, hi_open=True)
    ck.positive("eps", eps)
    ck.non_negative("eps_root", eps_root)

    def init(params):
        return ScaleByAdamState(count=_int_zero(), mu=_zeros_like(params), nu=_zeros_like(params))

    def update(updates, state, params=None):
        del params
        count = state.count + 1
        mu = _ema(updates, state.mu, b1)
        nu = _ema(jax.tree.map(lambda g: g**2, updates), state.nu, b2)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: b1 * m + (1 - b1) * g,
                _bias_correction(mu, b1, count + 1),
                _bias_correction(updates, b1, count),
            )
        else:
            mu_hat = _bias_correction(mu, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8) -> GradientTransformation:
    r"""AdaMax's scaling (Kingma & Ba 2015, Algorithm 2): the second moment becomes an
    exponentially weighted infinity norm, :math:`u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon)`,
    output :math:`\hat m_t / u_t`. No bias correction is needed for :math:`u_t`."""
    ck.in_range("b1", b1, 0.0, 1.0, hi_open=True)
    ck.in_range("b2", b2, 0.0, 1.0, hi_open=True)
    ck.positive("eps", eps)

    def init(params):
        return ScaleByAdamState(count=_int_zero(), mu=_zeros_like(params), nu=_zeros_like(params))

    def update(updates, state, params=None):
        del params
        count = state.count + 1
        mu = _ema(updates, state.mu, b1)
        nu = jax.tree.map(lambda g, u: jnp.maximum(b2 * u, jnp.abs(g) + eps), updates, state.nu)
        mu_hat = _bias_correction(mu, b1, count)
        updates = jax.tree.map(lambda m, u: m / u, mu_hat, nu)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)
