"""Layers as pure functions: dropout, batch normalization and the activations of chapter 05.

Nothing here holds state: randomness comes in as an explicit ``key`` and running statistics come
in as ``state`` and go out as a new ``state`` (as in equinox's ``BatchNorm``).

Arguments are checked with ``lessonlib._checks`` (traced values are skipped).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck


def dropout(x: jax.Array, rate, *, key: jax.Array | None = None, train: bool = True) -> jax.Array:
    """Inverted dropout (Srivastava et al. 2014, with the scaling moved to training time).

    Each unit is zeroed with probability ``rate`` and the survivors are scaled by ``1/(1-rate)``:

        x' = 0 with probability p,   x' = x / (1 - p) otherwise,   so  E[x'] = x.

    At evaluation (``train=False``) the layer is the identity: no rescaling is needed because the
    expectation already matches. (Classic dropout instead keeps ``x`` during training and multiplies
    by the keep probability ``1 - p`` at test time.)

    ``rate`` may be a Python float or a traced scalar (so a training run can sweep it without
    recompiling). ``key`` is required when ``train=True``: pass a fresh one every step, e.g.
    ``jax.random.fold_in(key, step)`` — a fixed key repeats the same mask forever.

    >>> x = jnp.ones(8)
    >>> y = dropout(x, 0.5, key=jax.random.key(0))
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    >>> bool((dropout(x, 0.5, train=False) == x).all())
    True
    """
    ck.in_range("rate", rate, 0.0, 1.0, hi_open=True)
    if not train or (not ck.is_traced(rate) and float(rate) == 0.0):
        return x
    ck.prng_key("key", key)
    rate = jnp.asarray(rate, x.dtype)
    keep = jax.random.uniform(key, x.shape, x.dtype) >= rate  # kept with probability 1 - rate
    return jnp.where(keep, x / (1 - rate), jnp.zeros_like(x))


def alpha_dropout(
    x: jax.Array, rate, *, key: jax.Array | None = None, train: bool = True
) -> jax.Array:
    r"""Alpha dropout (Klambauer et al. 2017): dropout that keeps SELU's mean 0 and variance 1.

    Ordinary dropout sets units to 0 and rescales the rest, which keeps the mean but changes the
    variance, so a self-normalizing network drifts away from its fixed point. Alpha dropout sets a
    dropped unit to SELU's saturation value :math:`\alpha' = -\lambda\alpha \approx -1.7581`
    instead and then applies the affine map that restores mean 0 and variance 1:

    .. math:: y = a\,(m x + (1 - m)\,\alpha') + b, \quad
        a = \left((1 - p)(1 + p\,\alpha'^2)\right)^{-1/2}, \quad b = -a\,p\,\alpha'

    with :math:`m \sim \mathrm{Bernoulli}(1 - p)`, so for inputs with mean 0 and variance 1 the
    output has mean 0 and variance 1 too (Keras's ``AlphaDropout``). Same contract as ``dropout``:
    ``rate`` in [0, 1) (may be traced), a fresh ``key`` required when ``train=True``, identity at
    evaluation.

    >>> z = jax.random.normal(jax.random.key(0), (100_000,))
    >>> y = alpha_dropout(z, 0.2, key=jax.random.key(1))
    >>> bool(abs(y.mean()) < 0.02), bool(abs(y.var() - 1) < 0.02)
    (True, True)
    """
    ck.in_range("rate", rate, 0.0, 1.0, hi_open=True)
    if not train or (not ck.is_traced(rate) and float(rate) == 0.0):
        return x
    ck.prng_key("key", key)
    p = jnp.asarray(rate, x.dtype)
    saturation = -SELU_SCALE * SELU_ALPHA
    a = jax.lax.rsqrt((1 - p) * (1 + p * saturation**2))
    b = -a * p * saturation
    keep = jax.random.uniform(key, x.shape, x.dtype) >= p  # kept with probability 1 - rate
    return a * jnp.where(keep, x, jnp.full_like(x, saturation)) + b


def batch_norm_init(num_features: int) -> tuple[dict, dict]:
    """Parameters ``{"gamma": 1, "beta": 0}`` (trained) and state ``{"mean": 0, "var": 1}`` (buffers)."""
    num_features = ck.positive_int("num_features", num_features)
    ones, zeros = jnp.ones(num_features, jnp.float32), jnp.zeros(num_features, jnp.float32)
    return {"gamma": ones, "beta": zeros}, {"mean": zeros, "var": ones}


def batch_norm(params: dict, state: dict, x: jax.Array, *, train: bool, momentum=0.9, eps=1e-5):
    """Batch normalization (Ioffe & Szegedy 2015) over all axes but the last (the features).

    Training mode normalizes with the statistics of this batch and updates the running averages:

        mu_B = mean(x),  var_B = mean((x - mu_B)^2)           (biased variance)
        y = gamma * (x - mu_B) / sqrt(var_B + eps) + beta
        mean <- momentum * mean + (1 - momentum) * mu_B       (momentum is the KEEP rate)
        var  <- momentum * var  + (1 - momentum) * var_B

    Evaluation mode uses the running ``mean``/``var`` instead and returns ``state`` unchanged, so a
    prediction does not depend on the other examples in the batch.

    Conventions differ: here (as in Keras and Flax) ``momentum`` is how much of the old average is
    kept (0.9 to 0.99); PyTorch's ``momentum=0.1`` is the update rate, i.e. our ``1 - momentum``.
    PyTorch also stores the unbiased batch variance in its running average.

    Returns ``(y, new_state)``; ``gamma``/``beta`` are trained, ``mean``/``var`` are not.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):  # integer data: compute in gamma's float dtype
        x = x.astype(jnp.result_type(params["gamma"]))
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have a last (feature) axis of size >= 1, got shape {x.shape}")
    features = x.shape[-1]
    for name, tree in (("params", params), ("state", state)):
        for k, v in tree.items():
            if jnp.shape(v) != (features,):
                raise ValueError(
                    f"{name}[{k!r}] has shape {jnp.shape(v)} but x has {features} features "
                    f"(last axis of x with shape {x.shape})"
                )
    ck.in_range("momentum", momentum, 0.0, 1.0)  # the keep rate
    ck.positive("eps", eps)
    axes = tuple(range(x.ndim - 1))
    lead = (None,) * (x.ndim - 1)  # broadcast (F,) vectors over the batch axes explicitly
    if not train:
        mean, var, new_state = state["mean"], state["var"], state
    else:
        count = x.size // features
        if count < 2:
            raise ValueError(
                f"batch_norm in train mode needs at least 2 examples per feature, got x with shape "
                f"{x.shape}: the variance of one example is 0. Use train=False or a larger batch."
            )
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean[lead]), axis=axes)
        m = jnp.asarray(momentum, x.dtype)
        new_state = {
            "mean": m * state["mean"] + (1 - m) * jax.lax.stop_gradient(mean),
            "var": m * state["var"] + (1 - m) * jax.lax.stop_gradient(var),
        }
    scale = params["gamma"] * jax.lax.rsqrt(var + jnp.asarray(eps, x.dtype))
    y = scale[lead] * (x - mean[lead]) + params["beta"][lead]
    return y, new_state


# --------------------------------------------------------------------------- activations
#
# Names, arguments and defaults are jax.nn's (tests compare them), written out so each formula can
# be read. Branches use the "double where" so that the unused branch cannot produce an inf (whose
# zero-weighted gradient would still be NaN): exp is only ever evaluated at x <= 0.

SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. 14
SELU_SCALE = 1.0507009873554804934193349852946


def relu(x: jax.Array) -> jax.Array:
    """max(x, 0) (Nair & Hinton 2010). Its derivative is 0 for x <= 0, so a unit whose
    pre-activation is negative on every example gets no gradient at all: a "dead" unit.

    >>> relu(jnp.array([-2.0, 0.0, 3.0]))
    Array([0., 0., 3.], dtype=float32)
    """
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def leaky_relu(x: jax.Array, negative_slope=0.01) -> jax.Array:
    """x for x >= 0, ``negative_slope * x`` otherwise (Maas et al. 2013): never a zero gradient.

    Defaults differ: 0.01 in jax.nn and PyTorch; Keras's ``LeakyReLU`` layer uses 0.3 (called
    ``alpha`` in Keras 2, ``negative_slope`` in Keras 3) and ``keras.activations.leaky_relu`` 0.2.

    >>> leaky_relu(jnp.array([-2.0, 3.0]), negative_slope=0.2)
    Array([-0.4,  3. ], dtype=float32)
    """
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x: jax.Array, alpha=1.0) -> jax.Array:
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise (Clevert et al. 2016): smooth, and it
    saturates at -alpha for very negative x, which pushes mean activations towards 0.

    >>> elu(jnp.array([-50.0, 0.0, 2.0]))
    Array([-1.,  0.,  2.], dtype=float32)
    """
    negative = jnp.where(x > 0, jnp.zeros_like(x), x)  # exp never sees a large x
    return jnp.where(x > 0, x, alpha * jnp.expm1(negative))


def selu(x: jax.Array) -> jax.Array:
    r"""Scaled ELU (Klambauer et al. 2017): ``SELU_SCALE * elu(x, SELU_ALPHA)``,

    .. math:: \mathrm{selu}(x) = \lambda \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \le 0
        \end{cases}, \quad \alpha \approx 1.6733,\ \lambda \approx 1.0507 .

    The two constants are chosen so that mean 0 and variance 1 is a fixed point: if
    :math:`z \sim N(0, 1)` then :math:`E[\mathrm{selu}(z)] = 0` and :math:`E[\mathrm{selu}(z)^2] = 1`.

    >>> [round(float(v), 4) for v in selu(jnp.array([-100.0, 1.0]))]  # saturates at -lambda*alpha
    [-1.7581, 1.0507]
    """
    return SELU_SCALE * elu(x, SELU_ALPHA)


def gelu(x: jax.Array, approximate: bool = True) -> jax.Array:
    r"""Gaussian error linear unit (Hendrycks & Gimpel 2016): :math:`x\,\Phi(x)`.

    ``approximate=True`` (jax.nn's default) uses the tanh form
    :math:`\tfrac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)`;
    ``approximate=False`` the exact :math:`\tfrac{x}{2}\left(1 + \mathrm{erf}(x/\sqrt 2)\right)`
    (PyTorch's and Keras's default).

    >>> x = jnp.linspace(-4.0, 4.0, 81)
    >>> bool(jnp.abs(gelu(x) - gelu(x, approximate=False)).max() < 1e-3)
    True
    """
    if approximate:
        return 0.5 * x * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + jax.lax.erf(x / math.sqrt(2)))


def swish(x: jax.Array, beta=1.0) -> jax.Array:
    """``x * sigmoid(beta * x)`` (Ramachandran et al. 2017). ``beta = 1`` is SiLU; with
    ``beta = 1.702`` it is close to GELU, since ``sigmoid(1.702 x)`` approximates ``Phi(x)``.
    ``beta`` may be traced (or trained).

    >>> swish(jnp.array([0.0, 2.0]), beta=0.0)  # beta = 0: x / 2
    Array([0., 1.], dtype=float32)
    """
    return x * jax.nn.sigmoid(beta * x)


def silu(x: jax.Array) -> jax.Array:
    """``x * sigmoid(x)``, the sigmoid linear unit (``swish`` with beta = 1; jax.nn's name).

    >>> silu(jnp.array([0.0]))
    Array([0.], dtype=float32)
    """
    return swish(x, 1.0)


def mish(x: jax.Array) -> jax.Array:
    """``x * tanh(softplus(x))`` with ``softplus(x) = log(1 + e^x)`` (Misra 2019).

    >>> [round(float(v), 4) for v in mish(jnp.array([-1.0, 1.0]))]
    [-0.3034, 0.8651]
    """
    return x * jnp.tanh(jax.nn.softplus(x))


ACTIVATIONS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "silu": silu,
    "swish": swish,
    "mish": mish,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
}
