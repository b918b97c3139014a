"""``lessonlib.augment``: every example its own draw, exact shifts and scalings, traced strengths.

References are written independently with numpy: ``np.roll`` for wrapped shifts, slicing with
zero fill for padded ones, ``np.interp`` for the time scaling.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import augment


def _signals(b=64, n=20, seed=0):
    return jax.random.normal(jax.random.key(seed), (b, n), jnp.float32)


def _find_shift(row, src, mode):
    """The s with row == shift of src by s, by trying every s (numpy reference)."""
    n = len(src)
    for s in sorted(range(-n + 1, n), key=abs):  # the smallest shift that explains it
        if mode == "wrap":
            ref = np.roll(src, s)
        else:
            ref = np.zeros(n, src.dtype)
            if s >= 0:
                ref[s:] = src[: n - s]
            else:
                ref[:s] = src[-s:]
        if np.array_equal(row, ref):
            return s
    return None


@pytest.mark.parametrize("mode", ["wrap", "pad"])
def test_shift_is_an_exact_shift_with_one_draw_per_example(mode):
    x = np.asarray(_signals())
    y = np.asarray(augment.shift(jax.random.key(1), jnp.asarray(x), 3, mode=mode))
    shifts = [_find_shift(y[i], x[i], mode) for i in range(len(x))]
    assert None not in shifts
    assert set(shifts) == set(range(-3, 4))  # every value in [-3, 3] drawn among 64 signals
    counts = np.bincount(np.asarray(shifts) + 3)
    assert counts.min() >= 2  # roughly uniform (expected 64/7 ~ 9 each)


def test_shift_zero_and_traced_strength():
    x = _signals(8)
    np.testing.assert_array_equal(augment.shift(jax.random.key(0), x, 0), x)
    f = jax.jit(lambda m: augment.shift(jax.random.key(2), x, m))
    for m in (0.0, 1.0, 5.0):
        y = np.asarray(f(jnp.float32(m)))
        shifts = [_find_shift(y[i], np.asarray(x[i]), "pad") for i in range(8)]
        assert max(abs(s) for s in shifts) <= m
    assert f._cache_size() == 1


def test_scale_matches_numpy_interpolation():
    x = np.asarray(_signals(16, 30))
    key = jax.random.key(4)
    y = np.asarray(augment.scale(key, jnp.asarray(x), 0.3))
    z = np.asarray(jax.random.uniform(key, (16,), jnp.float32, 0.7, 1.3))  # the documented draw
    c = (30 - 1) / 2
    for i in range(16):
        pos = c + (np.arange(30) - c) / z[i]
        ref = np.interp(pos, np.arange(30), x[i], left=0.0, right=0.0)
        inside = (pos >= 0) & (pos <= 29)
        np.testing.assert_allclose(y[i][inside], ref[inside], rtol=1e-5, atol=1e-5)
    assert len({round(float(v), 6) for v in z}) == 16  # one factor per signal


def test_noise_statistics_and_keys():
    x = jnp.zeros((200, 500))
    y = np.asarray(augment.noise(jax.random.key(5), x, 0.2))
    assert abs(y.std() - 0.2) < 0.002
    assert not np.allclose(y, augment.noise(jax.random.key(6), x, 0.2))


def test_shift_2d_moves_a_pixel_by_at_most_one():
    img = np.zeros((1, 64), np.float32)
    img[0, 3 * 8 + 4] = 1.0  # row 3, column 4
    x = jnp.asarray(np.repeat(img, 200, axis=0))
    y = np.asarray(augment.shift_2d(jax.random.key(7), x, 1, image_shape=(8, 8)))
    assert np.all(y.sum(axis=1) == 1)  # nothing falls off an interior pixel
    r, c = np.divmod(y.argmax(axis=1), 8)
    assert set(zip(r - 3, c - 4, strict=True)) == {
        (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    }


def test_shift_2d_fills_with_zeros_at_the_border():
    img = np.zeros((1, 9), np.float32)
    img[0, 0] = 1.0  # top-left corner of a 3x3 image
    y = np.asarray(
        augment.shift_2d(
            jax.random.key(8), jnp.asarray(np.repeat(img, 100, 0)), 1, image_shape=(3, 3)
        )
    )
    lost = y.sum(axis=1) == 0
    assert 0 < lost.mean() < 1  # shifted up or left: the pixel leaves the image


def test_flip():
    x = jnp.asarray(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(augment.flip(jax.random.key(0), x, 1.0), x[:, ::-1])
    np.testing.assert_array_equal(augment.flip(jax.random.key(0), x, 0.0), x)
    img = jnp.asarray(np.arange(8.0, dtype=np.float32).reshape(2, 4))
    out = augment.flip(jax.random.key(0), img, 1.0, image_shape=(2, 2))
    np.testing.assert_array_equal(out, np.asarray(img).reshape(2, 2, 2)[:, :, ::-1].reshape(2, 4))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: augment.shift(jax.random.key(0), jnp.ones((2, 3)), -1), "max_shift must be >= 0"),
        (
            lambda: augment.shift(jax.random.key(0), jnp.ones((2, 3)), 1, mode="reflect"),
            "mode must be one of",
        ),
        (
            lambda: augment.shift(jax.random.key(0), jnp.ones(3), 1),
            r"batch of shape \(batch, ...\)",
        ),
        (lambda: augment.shift(None, jnp.ones((2, 3)), 1), "key is required"),
        (
            lambda: augment.scale(jax.random.key(0), jnp.ones((2, 3)), 1.0),
            r"max_scale must be in \[0, 1\)",
        ),
        (
            lambda: augment.shift_2d(jax.random.key(0), jnp.ones((2, 10)), 1, image_shape=(3, 3)),
            r"shape \(batch, 9\)",
        ),
        (
            lambda: augment.flip(jax.random.key(0), jnp.ones((2, 3)), 1.5),
            r"rate must be in \[0, 1\]",
        ),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
