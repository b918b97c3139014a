"""Activations and alpha dropout against jax.nn, closed forms (float64 NumPy/SciPy) and finite
differences."""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

from lessonlib import layers

X = np.concatenate([np.linspace(-6.0, 6.0, 241), [-80.0, -30.0, 30.0, 80.0]]).astype(np.float32)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))


ALPHA, SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name -> (lessonlib call, jax.nn call, float64 closed form)
CASES = {
    "relu": (layers.relu, jax.nn.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (layers.leaky_relu, jax.nn.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "leaky_relu(0.2)": (
        lambda x: layers.leaky_relu(x, negative_slope=0.2),
        lambda x: jax.nn.leaky_relu(x, negative_slope=0.2),
        lambda x: np.where(x >= 0, x, 0.2 * x),
    ),
    "elu": (layers.elu, jax.nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
    "elu(0.5)": (
        lambda x: layers.elu(x, alpha=0.5),
        lambda x: jax.nn.elu(x, alpha=0.5),
        lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0))),
    ),
    "selu": (
        layers.selu,
        jax.nn.selu,
        lambda x: SCALE * np.where(x > 0, x, ALPHA * np.expm1(np.minimum(x, 0))),
    ),
    "gelu": (
        layers.gelu,
        jax.nn.gelu,
        lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    ),
    "gelu exact": (
        lambda x: layers.gelu(x, approximate=False),
        lambda x: jax.nn.gelu(x, approximate=False),
        lambda x: 0.5 * x * (1 + special.erf(x / np.sqrt(2))),
    ),
    "silu": (layers.silu, jax.nn.silu, lambda x: x * _sigmoid(x)),
    "swish": (layers.swish, jax.nn.swish, lambda x: x * _sigmoid(x)),
    "mish": (layers.mish, jax.nn.mish, lambda x: x * np.tanh(np.logaddexp(0, x))),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_jax_nn_and_the_closed_form(name):
    ours, theirs, closed = CASES[name]
    got = np.asarray(ours(jnp.asarray(X)), np.float64)
    np.testing.assert_allclose(got, np.asarray(theirs(jnp.asarray(X))), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(got, closed(X.astype(np.float64)), rtol=2e-6, atol=1e-6)


def test_swish_with_beta_is_the_closed_form():
    for beta in (0.0, 0.5, 1.702, 3.0):
        got = np.asarray(layers.swish(jnp.asarray(X), beta=beta), np.float64)
        np.testing.assert_allclose(got, X * _sigmoid(beta * X.astype(np.float64)), atol=1e-6)
    # beta may be traced, e.g. trained or swept
    got = jax.jit(lambda b: layers.swish(jnp.asarray(X), beta=b))(jnp.float32(1.702))
    np.testing.assert_allclose(got, layers.swish(jnp.asarray(X), beta=1.702), rtol=1e-6)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish"])
def test_signature_and_defaults_are_jax_nns(name):
    ours = inspect.signature(getattr(layers, name)).parameters
    theirs = inspect.signature(getattr(jax.nn, name)).parameters
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]


def test_gelu_default_is_the_tanh_approximation():
    x = jnp.linspace(-3.0, 3.0, 61)
    np.testing.assert_array_equal(layers.gelu(x), layers.gelu(x, approximate=True))
    assert float(jnp.abs(layers.gelu(x) - layers.gelu(x, approximate=False)).max()) > 1e-5


def test_registry():
    expected = {"relu", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish"}
    assert expected <= set(layers.ACTIVATIONS)
    assert layers.ACTIVATIONS["gelu"] is layers.gelu


# --------------------------------------------------------------------------- derivatives

# points away from the kinks at 0 (where relu/leaky_relu/elu(alpha != 1) have no derivative)
POINTS = np.array([-4.0, -1.3, -0.4, 0.3, 0.9, 2.2, 5.0])


@pytest.mark.parametrize("name", CASES)
def test_grad_matches_central_differences_in_float64(name):
    ours = CASES[name][0]
    h = 1e-6
    with jax.enable_x64(True):
        x = jnp.asarray(POINTS, jnp.float64)
        grad = jax.vmap(jax.grad(lambda v: ours(v)))(x)
        fd = (ours(x + h) - ours(x - h)) / (2 * h)
        assert grad.dtype == jnp.float64
        np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_grad_is_finite_for_large_inputs(name):
    """The unused branch of a `where` must not produce inf: its zero-weighted gradient is NaN."""
    ours = CASES[name][0]
    x = jnp.array([-200.0, -90.0, 90.0, 200.0])
    assert np.isfinite(np.asarray(jax.vmap(jax.grad(lambda v: ours(v)))(x))).all()


def test_relu_derivative_at_zero_is_zero_like_jax_nn():
    assert float(jax.grad(layers.relu)(0.0)) == float(jax.grad(jax.nn.relu)(0.0)) == 0.0


# --------------------------------------------------------------------------- SELU and GELU facts


def test_selu_constants_make_mean_0_variance_1_a_fixed_point():
    """E[selu(z)] = 0 and E[selu(z)^2] = 1 for z ~ N(0, 1) (Klambauer et al. 2017)."""

    def moment(k):
        f = lambda z: SCALE**k * (z if z > 0 else ALPHA * math.expm1(z)) ** k  # noqa: E731
        pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        return sum(integrate.quad(lambda z: f(z) * pdf(z), a, b)[0] for a, b in [(-40, 0), (0, 40)])

    assert abs(moment(1)) < 1e-6
    assert abs(moment(2) - 1) < 1e-6
    assert layers.SELU_ALPHA == ALPHA and layers.SELU_SCALE == SCALE


def test_swish_1702_approximates_gelu():
    x = jnp.linspace(-8.0, 8.0, 16001)
    gap = jnp.abs(layers.swish(x, beta=1.702) - layers.gelu(x, approximate=False))
    assert 0.005 < float(gap.max()) < 0.03  # close, not equal


# --------------------------------------------------------------------------- alpha dropout


def test_alpha_dropout_keeps_mean_and_variance():
    n = 400_000
    z = jax.random.normal(jax.random.key(0), (n,))
    for rate in (0.05, 0.2, 0.5):
        y = layers.alpha_dropout(z, rate, key=jax.random.key(1))
        # 6 standard errors of the sample mean / variance of ~unit-variance data
        assert abs(float(y.mean())) < 6 / math.sqrt(n)
        assert abs(float(y.var()) - 1) < 6 * math.sqrt(2 / n) * 2  # heavier tails than a normal
        plain = layers.dropout(z, rate, key=jax.random.key(1))
        assert float(plain.var()) > 1 + 0.5 * rate  # ordinary dropout inflates it: 1 / (1 - p)


def test_alpha_dropout_is_kerass_affine_map():
    x = jnp.linspace(-2.0, 2.0, 4001)
    rate = 0.3
    y = np.asarray(layers.alpha_dropout(x, rate, key=jax.random.key(3)), np.float64)
    sat = -SCALE * ALPHA
    a = ((1 - rate) * (1 + rate * sat**2)) ** -0.5
    b = -a * rate * sat
    dropped = np.isclose(y, a * sat + b, atol=1e-6)
    kept = ~dropped
    np.testing.assert_allclose(y[kept], a * np.asarray(x)[kept] + b, rtol=1e-5, atol=1e-6)
    assert abs(dropped.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / x.size)


def test_alpha_dropout_key_contract():
    x = jnp.ones(1000)
    with pytest.raises(ValueError, match="key"):
        layers.alpha_dropout(x, 0.1)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="rate"):
            layers.alpha_dropout(x, bad, key=jax.random.key(0))
    np.testing.assert_array_equal(layers.alpha_dropout(x, 0.5, train=False), x)
    np.testing.assert_array_equal(layers.alpha_dropout(x, 0.0, key=jax.random.key(0)), x)
    a = layers.alpha_dropout(x, 0.5, key=jax.random.key(1))
    b = layers.alpha_dropout(x, 0.5, key=jax.random.key(2))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, layers.alpha_dropout(x, 0.5, key=jax.random.key(1)))
    traced = jax.jit(lambda r: layers.alpha_dropout(x, r, key=jax.random.key(1)))(0.5)
    np.testing.assert_allclose(traced, a, rtol=1e-6)
