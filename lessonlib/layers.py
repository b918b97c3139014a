"""Layers as pure functions: dropout, Gaussian noise, batch normalization and the activations.

Nothing here holds state: randomness comes in as an explicit ``key`` and running statistics come
in as ``state`` and go out as a new ``state`` (as in equinox's ``BatchNorm``).

Arguments are checked with ``lessonlib._checks`` (traced values are skipped).
"""

from __future__ import annotations

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


def gaussian_noise(x: jax.Array, std, *, key: jax.Array | None = None, train: bool = True):
    """Gaussian noise injection: ``x + N(0, std^2)`` during training, the identity at evaluation.

    On the inputs of a linear model with squared loss it is, in expectation, an L2 penalty with
    ``lambda = std^2`` (Bishop 1995); on hidden units it is dropout's additive cousin. The key
    contract is dropout's: ``std`` may be traced, ``key`` is required when ``train=True`` (a
    fresh one every step), and ``std == 0`` returns ``x`` itself.

    >>> x = jnp.zeros(100_000)
    >>> round(float(gaussian_noise(x, 0.5, key=jax.random.key(0)).std()), 2)
    0.5
    >>> bool((gaussian_noise(x, 0.5, train=False) == x).all())
    True
    """
    ck.non_negative("std", std)
    if not train or (not ck.is_traced(std) and float(std) == 0.0):
        return x
    ck.prng_key("key", key)
    return x + jnp.asarray(std, x.dtype) * jax.random.normal(key, x.shape, x.dtype)


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

relu = jax.nn.relu


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """max(x, a x) with a small slope ``a`` for x < 0, so units cannot die completely."""
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """x for x > 0, alpha (e^x - 1) otherwise (Clevert et al. 2016)."""
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def selu(x: jax.Array) -> jax.Array:
    """Scaled ELU with the self-normalizing constants of Klambauer et al. 2017."""
    return jax.nn.selu(x)


def gelu(x: jax.Array) -> jax.Array:
    """x * Phi(x), the Gaussian error linear unit (Hendrycks & Gimpel 2016), exact form."""
    return jax.nn.gelu(x, approximate=False)


def swish(x: jax.Array, beta: float = 1.0) -> jax.Array:
    """x * sigmoid(beta x) (Ramachandran et al. 2017); beta = 1 is SiLU."""
    return x * jax.nn.sigmoid(beta * x)


def mish(x: jax.Array) -> jax.Array:
    """x * tanh(softplus(x)) (Misra 2019)."""
    return x * jnp.tanh(jax.nn.softplus(x))


ACTIVATIONS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "swish": swish,
    "mish": mish,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
}
