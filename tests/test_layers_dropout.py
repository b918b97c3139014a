"""Tests of ``lessonlib.layers.dropout`` (inverted dropout) against closed-form statistics.

Tolerances follow from the sample size. For a constant input ``c`` and rate ``p`` each output is
``c/(1-p)`` with probability ``1-p`` and 0 otherwise, so

    E[x'] = c,   Var[x'] = c^2 p / (1 - p),   std of the mean of n outputs = c sqrt(p / ((1-p) n)),

and the fraction of zeros is Binomial(n, p)/n with std sqrt(p (1-p) / n). Every statistical check
allows 5 standard deviations: a correct layer fails one by chance with probability ~6e-7, while the
classic mistakes (keeping with probability p, forgetting the 1/(1-p)) are off by hundreds of them.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib.layers import dropout

N = 200_000  # samples per statistical check
Z = 5.0  # standard deviations allowed


def _mean_tolerance(c: float, p: float, n: int = N) -> float:
    return Z * abs(c) * math.sqrt(p / ((1 - p) * n))


def _zeros_tolerance(p: float, n: int = N) -> float:
    return Z * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_expectation_equals_input(p):
    c = 1.7
    x = jnp.full((N,), c, jnp.float32)
    y = np.asarray(dropout(x, p, key=jax.random.key(0)), np.float64)
    assert abs(y.mean() - c) < _mean_tolerance(c, p), (y.mean(), c)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_variance_matches_closed_form(p):
    c = 2.0
    x = jnp.full((N,), c, jnp.float32)
    y = np.asarray(dropout(x, p, key=jax.random.key(1)), np.float64)
    var = c**2 * p / (1 - p)
    # The sample variance is q (1 - q) (c / (1-p))^2 where q, the kept fraction, has mean 1-p and
    # std sqrt(p (1-p) / N): allow the largest change of that expression within Z stds of q.
    sq = math.sqrt(p * (1 - p) / N)
    qs = np.linspace(1 - p - Z * sq, 1 - p + Z * sq, 101)
    tol = np.max(np.abs(qs * (1 - qs) - p * (1 - p))) * (c / (1 - p)) ** 2
    assert abs(y.var() - var) < tol, (y.var(), var, tol)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_fraction_of_zeros_is_rate(p):
    x = jnp.ones((N,), jnp.float32)
    y = np.asarray(dropout(x, p, key=jax.random.key(2)))
    assert abs((y == 0).mean() - p) < _zeros_tolerance(p)


def test_survivors_are_scaled_by_inverse_keep_probability():
    x = jax.random.normal(jax.random.key(3), (64, 32), jnp.float32) + 3.0  # no exact zeros
    p = 0.25
    y = np.asarray(dropout(x, p, key=jax.random.key(4)))
    kept = y != 0
    assert kept.any() and (~kept).any()
    np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / (1 - p), rtol=1e-6)


def test_mean_is_unbiased_per_unit_over_many_keys():
    """E over masks, for every unit of a non-constant x, not just on average over units."""
    x = jnp.linspace(-2.0, 3.0, 16, dtype=jnp.float32)
    p, n = 0.4, 5_000
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(5), i))(jnp.arange(n))
    ys = np.asarray(jax.vmap(lambda k: dropout(x, p, key=k))(keys), np.float64)
    tol = Z * np.abs(np.asarray(x)) * math.sqrt(p / ((1 - p) * n)) + 1e-6
    assert np.all(np.abs(ys.mean(axis=0) - np.asarray(x)) < tol)


def test_eval_mode_is_identity_and_needs_no_key():
    x = jax.random.normal(jax.random.key(6), (5, 7), jnp.float32)
    for p in (0.0, 0.5, 0.99):
        y = dropout(x, p, train=False)
        assert y.shape == x.shape and y.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def test_rate_zero_returns_x_exactly():
    x = jax.random.normal(jax.random.key(7), (100,), jnp.float32)
    y = dropout(x, 0.0, key=jax.random.key(8))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    # also when the rate is traced (no shortcut possible): 1/(1-0) = 1 keeps values bit-exact
    y_traced = jax.jit(lambda x, r, k: dropout(x, r, key=k))(x, 0.0, jax.random.key(8))
    np.testing.assert_array_equal(np.asarray(y_traced), np.asarray(x))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_rate_outside_unit_interval_raises(bad):
    x = jnp.ones(4, jnp.float32)
    with pytest.raises(ValueError, match="rate"):
        dropout(x, bad, key=jax.random.key(0))
    with pytest.raises(ValueError, match="rate"):
        dropout(x, bad, train=False)


def test_missing_key_in_training_raises():
    x = jnp.ones(4, jnp.float32)
    with pytest.raises(ValueError, match="key"):
        dropout(x, 0.5)
    with pytest.raises(ValueError, match="key"):
        jax.jit(lambda x, r: dropout(x, r))(x, 0.5)  # traced rate: no shortcut either


def test_masks_differ_across_steps_with_fold_in_and_repeat_for_the_same_key():
    x = jnp.ones((1000,), jnp.float32)
    base = jax.random.key(9)
    masks = [np.asarray(dropout(x, 0.5, key=jax.random.fold_in(base, s))) != 0 for s in range(5)]
    for a in range(5):
        for b in range(a + 1, 5):
            # two independent masks agree on ~50% of 1000 units; identical masks on 100%
            assert (masks[a] == masks[b]).mean() < 0.6
    again = np.asarray(dropout(x, 0.5, key=jax.random.fold_in(base, 0))) != 0
    np.testing.assert_array_equal(again, masks[0])


def test_jittable_with_traced_rate_without_recompiling():
    f = jax.jit(lambda x, r, k: dropout(x, r, key=k))
    x = jnp.full((N,), 1.0, jnp.float32)
    for i, p in enumerate((0.1, 0.5, 0.7)):
        y = np.asarray(f(x, jnp.float32(p), jax.random.key(10 + i)), np.float64)
        assert abs((y == 0).mean() - p) < _zeros_tolerance(p)
        assert abs(y.mean() - 1.0) < _mean_tolerance(1.0, p)
    assert f._cache_size() == 1


def test_gradient_is_mask_over_keep_probability():
    x = jnp.arange(1.0, 9.0, dtype=jnp.float32)
    p, key = 0.5, jax.random.key(11)
    g = jax.grad(lambda x: jnp.sum(dropout(x, p, key=key)))(x)
    y = dropout(x, p, key=key)
    np.testing.assert_allclose(np.asarray(g), np.where(np.asarray(y) != 0, 1 / (1 - p), 0.0))


def test_shape_and_dtype_preserved():
    for dtype in (jnp.float32, jnp.float16):
        x = jnp.ones((3, 4, 5), dtype)
        y = dropout(x, 0.5, key=jax.random.key(12))
        assert y.shape == x.shape and y.dtype == dtype


def test_broadcast_mask_gives_spatial_dropout():
    """Dropping a (batch, 1, channels) mask broadcast over length zeroes whole channels."""
    x = jnp.ones((2, 30, 8), jnp.float32)
    mask = dropout(jnp.ones((2, 1, 8), jnp.float32), 0.5, key=jax.random.key(13))
    y = np.asarray(x * mask)
    per_channel = y.std(axis=1)  # constant along the length axis: each channel kept or dropped
    np.testing.assert_array_equal(per_channel, np.zeros_like(per_channel))
