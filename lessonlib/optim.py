r"""Optimizers as optax-compatible gradient transformations, built from small transforms.

An optimizer is a pair of pure functions (optax's ``GradientTransformation``)::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)   # the updates already carry the minus sign
    params = apply_updates(params, updates)             # params + updates

Every optimizer below is a ``chain`` of small transforms, each doing one thing, exactly as optax's
``alias.py`` builds them. Reading the chain is reading the algorithm::

    sgd(lr, momentum) = chain(trace(momentum), scale_by_learning_rate(lr))
    adam(lr)          = chain(scale_by_adam(), scale_by_learning_rate(lr))
    adam + L2 in loss = chain(add_decayed_weights(wd), scale_by_adam(), scale_by_learning_rate(lr))
    adamw(lr, wd)     = chain(scale_by_adam(), add_decayed_weights(wd), scale_by_learning_rate(lr))

The last two lines differ only in *where* ``wd * params`` enters: before Adam's per-coordinate
rescaling (so it gets rescaled too: that is an L2 penalty in the loss) or after it (decoupled weight
decay, Loshchilov & Hutter 2019).

Hyperparameters may be Python numbers, traced JAX scalars (build the optimizer inside ``jit`` from
traced values and changing them never recompiles) or, for ``learning_rate``, a schedule
``step -> value``. Concrete Python numbers are validated when the optimizer is built; traced values
cannot be inspected and are not.

Any call this module accepts means the same thing as the optax call of the same name; arguments
that optax has and this module leaves out (``mu_dtype``, ``accumulator_dtype``, ...) raise
``TypeError`` instead of being silently reinterpreted.
"""

from collections.abc import Callable
from numbers import Real
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class GradientTransformation(NamedTuple):
    """A pair of pure functions, as in optax: ``init(params) -> state`` and
    ``update(updates, state, params=None) -> (updates, state)``."""

    init: Callable
    update: Callable


# ----------------------------------------------------------------------------------------------
# Argument checks. Only concrete Python/NumPy numbers are checked: a traced value has no value yet.
# ----------------------------------------------------------------------------------------------


def _is_number(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_nonnegative(name: str, value) -> None:
    if _is_number(value) and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_positive(name: str, value) -> None:
    if _is_number(value) and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _check_beta(name: str, value) -> None:
    if _is_number(value) and not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


# ----------------------------------------------------------------------------------------------
# States: named tuples of arrays, so they are pytrees that jit, scan and vmap carry around.
# ----------------------------------------------------------------------------------------------


class EmptyState(NamedTuple):
    """State of a transform that remembers nothing."""


class TraceState(NamedTuple):
    """Momentum buffer (velocity) m."""

    trace: Any


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


class ScaleByScheduleState(NamedTuple):
    """Step count read by a learning-rate schedule."""

    count: jax.Array


# ----------------------------------------------------------------------------------------------
# Small helpers on pytrees.
# ----------------------------------------------------------------------------------------------


def _zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def _ema(new, old, decay):
    """Exponential moving average, leaf by leaf: decay * old + (1 - decay) * new."""
    return jax.tree.map(lambda n, o: decay * o + (1 - decay) * n, new, old)


def _bias_correction(moment, decay, count):
    """An EMA started at zero is too small by a factor 1 - decay**t: divide it out."""
    correction = 1 - decay ** count.astype(jnp.float32)
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


def _int_zero():
    return jnp.zeros([], jnp.int32)


# ----------------------------------------------------------------------------------------------
# The small transforms.
# ----------------------------------------------------------------------------------------------


def identity() -> GradientTransformation:
    """Pass the updates through unchanged (plain SGD has nothing before the learning rate)."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate) -> GradientTransformation:
    r"""Multiply by :math:`-\eta_t`: the only place the minus sign of gradient *descent* lives.

    ``learning_rate`` is a number, a traced scalar, or a schedule ``step -> value`` (then the step
    count lives in the state and starts at 0, as in optax).

    >>> import jax.numpy as jnp
    >>> tx = scale_by_learning_rate(0.1)
    >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(None))
    >>> updates["w"]
    Array([-0.1,  0.2], dtype=float32)
    """
    _check_nonnegative("learning_rate", learning_rate)

    if callable(learning_rate):

        def init(params):
            del params
            return ScaleByScheduleState(count=_int_zero())

        def update(updates, state, params=None):
            del params
            lr = learning_rate(state.count)
            updates = jax.tree.map(lambda g: -jnp.asarray(lr, g.dtype) * g, updates)
            return updates, ScaleByScheduleState(count=state.count + 1)

        return GradientTransformation(init, update)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: -learning_rate * g, updates), state

    return GradientTransformation(init, update)


def trace(decay, nesterov: bool = False) -> GradientTransformation:
    r"""Momentum (heavy ball): accumulate a velocity, :math:`m_t = g_t + \mu\, m_{t-1}`.

    Output :math:`m_t`, or with ``nesterov=True`` the look-ahead :math:`g_t + \mu\, m_t`.
    The learning rate is applied afterwards, so this is optax's (and PyTorch's) form.
    """
    _check_beta("momentum", decay)

    def init(params):
        return TraceState(trace=_zeros_like(params))

    def update(updates, state, params=None):
        del params
        new_trace = jax.tree.map(lambda g, m: g + decay * m, updates, state.trace)
        if nesterov:
            updates = jax.tree.map(lambda g, m: g + decay * m, updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(trace=new_trace)

    return GradientTransformation(init, update)


scale_by_momentum = trace  # the name used in the lessons; optax calls it ``trace``


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    r"""AdaGrad's scaling: :math:`G_t = G_{t-1} + g_t^2`, output
    :math:`g_t / \sqrt{G_t + \epsilon}`."""
    _check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    _check_positive("eps", eps)

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
    _check_beta("decay", decay)
    _check_positive("eps", eps)

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
    _check_beta("decay", decay)
    _check_positive("eps", eps)

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
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_positive("eps", eps)
    _check_nonnegative("eps_root", eps_root)

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
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_positive("eps", eps)

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


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    r"""Add :math:`\lambda\,\theta` to the updates: the gradient of
    :math:`\frac{\lambda}{2}\|\theta\|^2`.

    Where it sits in a chain decides what it means: first in the chain it is an L2 penalty in
    the loss; after an adaptive rescaling it is decoupled weight decay (AdamW).

    ``mask``: a pytree of bools with the structure of (a prefix of) ``params``, or a function
    ``params -> that pytree``; ``False`` leaves are not decayed (commonly biases and norms).
    """
    _check_nonnegative("weight_decay", weight_decay)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights needs params: update(updates, state, params)")
        mask_tree = mask(params) if callable(mask) else mask

        def decay(g, p):
            return jax.tree.map(lambda gi, pi: gi + weight_decay * pi, g, p)

        if mask_tree is None:
            return decay(updates, params), state
        updates = jax.tree.map(lambda m, g, p: decay(g, p) if m else g, mask_tree, updates, params)
        return updates, state

    return GradientTransformation(init, update)


def clip(max_delta) -> GradientTransformation:
    """Clip every coordinate of the updates to ``[-max_delta, max_delta]``.

    This changes the direction of the update: ``[0.9, 100.0]`` clipped at 1 becomes ``[0.9, 1.0]``.

    >>> import jax.numpy as jnp
    >>> tx = clip(1.0)
    >>> tx.update(jnp.array([0.9, 100.0]), tx.init(None))[0]
    Array([0.9, 1. ], dtype=float32)
    """
    _check_nonnegative("max_delta", max_delta)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(init, update)


def global_norm(tree) -> jax.Array:
    r"""The norm of all leaves taken together, :math:`\sqrt{\sum_i \|g_i\|^2}`."""
    return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(tree)))


def clip_by_global_norm(max_norm) -> GradientTransformation:
    r"""If the global norm :math:`\|g\|` exceeds ``max_norm``, rescale every leaf by
    :math:`\text{max\_norm}/\|g\|` (Pascanu et al. 2013). Unlike ``clip`` it keeps the direction.

    >>> import jax.numpy as jnp
    >>> tx = clip_by_global_norm(1.0)
    >>> clipped, _ = tx.update(jnp.array([0.9, 100.0]), tx.init(None))
    >>> [round(float(x), 4) for x in clipped]  # same direction as [0.9, 100], norm 1
    [0.009, 1.0]
    """
    _check_positive("max_norm", max_norm)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        keep = norm < max_norm
        updates = jax.tree.map(
            lambda g: jnp.where(keep, g, g / norm.astype(g.dtype) * max_norm), updates
        )
        return updates, state

    return GradientTransformation(init, update)


# ----------------------------------------------------------------------------------------------
# Putting transforms together.
# ----------------------------------------------------------------------------------------------


def chain(*transforms) -> GradientTransformation:
    """Apply transforms one after the other; the state is the tuple of their states.

    Accepts optax transforms as well as the ones in this module.
    """

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def switch(index, transforms) -> GradientTransformation:
    """Apply ``transforms[index]``, where ``index`` may be a traced integer.

    This lets one compiled training run serve several optimizers: sweep ``index`` like any other
    hyperparameter (``train.sweep(..., hp={"which": jnp.arange(9), ...})``). Every transform keeps
    its own state and only the chosen one's advances. Under ``vmap`` XLA computes every branch and
    keeps one, so this pays off for small models, where compiling costs more than computing.

    >>> import jax.numpy as jnp
    >>> tx = switch(1, [sgd(0.1), sgd(1.0)])
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
    Array([-1., -1.], dtype=float32)
    """
    transforms = tuple(transforms)

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def branch(k):
        def run(operand):
            updates, state, params = operand
            updates, new_state_k = transforms[k].update(updates, state[k], params)
            return updates, state[:k] + (new_state_k,) + state[k + 1 :]

        return run

    def update(updates, state, params=None):
        branches = [branch(k) for k in range(len(transforms))]
        i = jnp.asarray(index).astype(jnp.int32)
        return jax.lax.switch(i, branches, (updates, state, params))

    return GradientTransformation(init, update)


def apply_updates(params, updates):
    """``params + updates`` leaf by leaf, keeping each parameter's dtype."""
    return jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)


# ----------------------------------------------------------------------------------------------
# The optimizers (aliases), named and shaped as in optax.
# ----------------------------------------------------------------------------------------------


def sgd(learning_rate, momentum=None, nesterov: bool = False) -> GradientTransformation:
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    .. math::
        m_t = g_t + \mu\, m_{t-1}, \qquad
        \theta_t = \theta_{t-1} - \eta\, m_t
        \quad\text{or, with Nesterov,}\quad
        \theta_t = \theta_{t-1} - \eta\, (g_t + \mu\, m_t).

    ``momentum=None`` is plain gradient descent :math:`\theta_t = \theta_{t-1} - \eta g_t`.

    References: Polyak 1964 (heavy ball); Nesterov 1983; Sutskever et al. 2013 (momentum and
    Nesterov's look-ahead in deep learning).

    Where frameworks disagree:
        * optax and PyTorch put the learning rate *outside* the buffer (:math:`m = \mu m + g`,
          :math:`\theta -= \eta m`); Sutskever et al. and Keras/Géron put it inside
          (:math:`v = \mu v - \eta g`, :math:`\theta += v`). Same path for a constant
          :math:`\eta`; with a schedule the first form rescales the whole velocity at once.
        * PyTorch's ``dampening`` (multiply :math:`g` by :math:`1-\tau`) does not exist here.
        * Nesterov: optax and PyTorch use the same rewrite (Bengio et al. 2013) of Sutskever's
          look-ahead form, which evaluates the gradient at :math:`\theta + \mu v`; the two give the
          same iterates up to the change of variables :math:`\theta' = \theta + \mu v`.

    >>> import jax, jax.numpy as jnp
    >>> opt = sgd(0.1, momentum=0.9)
    >>> params = jnp.array([1.0, 2.0])
    >>> state = opt.init(params)
    >>> for _ in range(3):
    ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
    ...     updates, state = opt.update(grads, state, params)
    ...     params = apply_updates(params, updates)
    >>> [round(float(x), 4) for x in params]
    [0.062, 0.124]
    """
    _check_nonnegative("learning_rate", learning_rate)
    if momentum is None:
        return chain(identity(), scale_by_learning_rate(learning_rate))
    return chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    r"""AdaGrad (Duchi, Hazan & Singer 2011): a per-coordinate step that only ever shrinks.

    .. math::
        G_t = G_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{G_t + \epsilon}}

    :math:`G_t` only grows, so steep coordinates slow down first, and eventually every coordinate
    stops: fine for convex problems, too early for deep networks.

    Where frameworks disagree: the initial accumulator :math:`G_0` is 0.1 in optax, Keras and TF1
    but 0 in PyTorch; ``eps`` is inside the square root here (1e-7) and outside in PyTorch
    (1e-10) and Keras (1e-7).

    >>> import jax.numpy as jnp
    >>> opt = adagrad(1.0)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> updates  # -2 / sqrt(0.1 + 4)
    Array([-0.9877296], dtype=float32)
    """
    _check_nonnegative("learning_rate", learning_rate)
    return chain(
        scale_by_rss(initial_accumulator_value, eps),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate,
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum=None,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""RMSProp (Hinton, Coursera lecture 6e, 2012): AdaGrad with a leaky sum.

    .. math::
        v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{v_t + \epsilon}}

    ``decay`` is :math:`\rho`. ``centered=True`` divides by a variance estimate instead (Graves
    2013); ``momentum`` adds a momentum buffer after the learning rate, as optax does.

    Where frameworks disagree: Keras calls :math:`\rho` ``rho`` (default 0.9), PyTorch calls it
    ``alpha`` (default 0.99!); optax puts ``eps`` inside the square root by default
    (``eps_in_sqrt=True``), PyTorch and Keras outside; TF1 started :math:`v_0` at 1, the others at 0
    (``initial_scale``).

    >>> import jax.numpy as jnp
    >>> opt = rmsprop(0.01)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> [round(float(x), 5) for x in updates]  # -0.01 * 2 / sqrt(0.1 * 4) = sqrt(10) * SGD's
    [-0.03162]
    """
    _check_nonnegative("learning_rate", learning_rate)
    if centered:
        scaling = scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt)
    else:
        scaling = scale_by_rms(decay, eps, initial_scale, eps_in_sqrt)
    if momentum is None:
        return chain(scaling, scale_by_learning_rate(learning_rate))
    return chain(scaling, scale_by_learning_rate(learning_rate), trace(momentum, nesterov))


def adam(
    learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, *, nesterov: bool = False
) -> GradientTransformation:
    r"""Adam (Kingma & Ba 2015, Algorithm 1): momentum on the gradient, RMSProp on its square,
    both bias-corrected.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.

    At step 1, :math:`\hat m_1 = g_1` and :math:`\hat v_1 = g_1^2`, so every coordinate moves by
    about :math:`\eta`, whatever the size of its gradient.

    Where frameworks disagree: optax and PyTorch follow Algorithm 1 (``eps`` added to
    :math:`\sqrt{\hat v_t}`). TensorFlow/Keras use the form just before Section 2.1 of the paper:
    :math:`\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and
    :math:`\theta -= \eta_t m_t / (\sqrt{v_t} + \hat\epsilon)`, i.e. their "epsilon hat" is added
    to the *uncorrected* root, equivalent to ``eps = eps_hat / sqrt(1 - b2**t)`` here; Keras'
    default is 1e-7. ``eps_root`` adds a constant inside the square root instead.

    >>> import jax.numpy as jnp
    >>> opt = adam(0.1)
    >>> updates, _ = opt.update(jnp.array([1e-3, 1e3]), opt.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in updates]  # gradients 1e6 apart, both move by ~lr
    [-0.1, -0.1]
    """
    _check_nonnegative("learning_rate", learning_rate)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0) -> GradientTransformation:
    r"""Nadam (Dozat 2016): Adam with Nesterov's look-ahead on the first moment.

    .. math::
        \hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)\, g_t}{1-\beta_1^t},
        \qquad \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    with :math:`m_t, v_t, \hat v_t` as in :func:`adam`. Same as ``adam(..., nesterov=True)``.

    Where frameworks disagree: Dozat's paper and Keras/PyTorch (``momentum_decay=4e-3``) also
    warm up :math:`\beta_1` with a schedule :math:`\mu_t = \beta_1(1 - 0.5\cdot 0.96^{t\psi})`;
    optax and this module use a constant :math:`\beta_1`. Dozat's Algorithm 2 also multiplies
    :math:`\hat v_t` by :math:`\beta_2`, which implementations omit.

    >>> import jax.numpy as jnp
    >>> opt = nadam(0.1)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> [round(float(x), 4) for x in updates]  # 0.1 * (0.9 * 0.1 / 0.19 + 1), Adam: 0.1
    [-0.1474]
    """
    return adam(learning_rate, b1, b2, eps, eps_root, nesterov=True)


def adamax(learning_rate, b1=0.9, b2=0.999, eps=1e-8) -> GradientTransformation:
    r"""AdaMax (Kingma & Ba 2015, Algorithm 2): Adam with the :math:`L^\infty` norm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{m_t}{(1-\beta_1^t)\, u_t}

    Where frameworks disagree: the paper has no ``eps``; optax and PyTorch add it inside the max,
    Keras adds it to the denominator, :math:`\hat m_t / (u_t + \epsilon)`.

    >>> import jax.numpy as jnp
    >>> opt = adamax(0.1)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> [round(float(x), 4) for x in updates]
    [-0.1]
    """
    _check_nonnegative("learning_rate", learning_rate)
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamw(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    *,
    weight_decay=1e-4,
    mask=None,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdamW (Loshchilov & Hutter 2019): Adam with *decoupled* weight decay.

    .. math::
        \theta_t = \theta_{t-1} - \eta\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda\,\theta_{t-1}\right)

    with :math:`\hat m_t, \hat v_t` as in :func:`adam` computed from the gradient of the loss
    *without* a penalty. Compare the two chains::

        adam + L2: chain(add_decayed_weights(wd), scale_by_adam(), scale_by_learning_rate(lr))
        adamw:     chain(scale_by_adam(), add_decayed_weights(wd), scale_by_learning_rate(lr))

    In the first, :math:`\lambda\theta` is divided by :math:`\sqrt{\hat v}` like the gradient, so
    weights with large gradients are barely decayed; in AdamW every weight decays at the same rate
    :math:`\eta\lambda`. For plain SGD the two orders are the same thing.

    Where frameworks disagree: optax, PyTorch and Keras multiply :math:`\lambda` by the learning
    rate :math:`\eta`; the paper multiplies it only by the schedule multiplier. Defaults differ:
    ``weight_decay`` is 1e-4 in optax, 1e-2 in PyTorch, 0.004 in Keras.

    ``weight_decay`` and ``mask`` are keyword-only (optax has ``mu_dtype`` before them).
    ``mask`` selects which leaves decay (see :func:`add_decayed_weights`).

    >>> import jax.numpy as jnp
    >>> opt = adamw(0.1, weight_decay=0.5)
    >>> params = jnp.array([2.0])
    >>> updates, _ = opt.update(jnp.array([0.0]), opt.init(params), params)
    >>> updates  # zero gradient: only the decay -0.1 * 0.5 * 2
    Array([-0.1], dtype=float32)
    """
    _check_nonnegative("learning_rate", learning_rate)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
