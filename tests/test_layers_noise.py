"""``lessonlib.layers.gaussian_noise``: closed-form statistics and dropout's key contract."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib.layers import gaussian_noise

N = 200_000
Z = 5.0  # standard deviations allowed


def test_mean_and_variance():
    x = jnp.full((N,), 1.5, jnp.float32)
    y = np.asarray(gaussian_noise(x, 0.3, key=jax.random.key(0)), np.float64)
    # mean of N draws of N(1.5, 0.09): sd 0.3/sqrt(N); sample variance: sd 0.09*sqrt(2/N)
    assert abs(y.mean() - 1.5) < Z * 0.3 / math.sqrt(N)
    assert abs(y.var() - 0.09) < Z * 0.09 * math.sqrt(2 / N)


def test_fresh_key_fresh_noise_same_key_same_noise():
    x = jnp.zeros(1000)
    a = gaussian_noise(x, 1.0, key=jax.random.key(1))
    b = gaussian_noise(x, 1.0, key=jax.random.key(2))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, gaussian_noise(x, 1.0, key=jax.random.key(1)))


def test_eval_and_zero_std_return_x_itself():
    x = jnp.ones(5)
    assert gaussian_noise(x, 0.5, train=False) is x
    assert gaussian_noise(x, 0.0) is x  # nothing to draw: no key needed


def test_training_without_a_key_names_the_key():
    with pytest.raises(ValueError, match="key is required"):
        gaussian_noise(jnp.ones(3), 0.1)


def test_traced_std_under_jit():
    f = jax.jit(lambda s, k: gaussian_noise(jnp.zeros(N), s, key=k))
    for s in (0.0, 0.5, 2.0):
        y = np.asarray(f(jnp.float32(s), jax.random.key(3)))
        assert abs(y.std() - s) < Z * max(s, 1e-6) * math.sqrt(1 / (2 * N)) + 1e-6
    assert f._cache_size() == 1


def test_bad_std():
    with pytest.raises(ValueError, match="std must be >= 0, got -1"):
        gaussian_noise(jnp.ones(3), -1.0, key=jax.random.key(0))
