r"""Data augmentation as pure functions of ``(key, batch)``: shifts, scaling, noise, flips.

Each function takes a PRNG key and a batch ``x`` whose first axis indexes the examples, and gives
every example its OWN random draw (one shift per signal, not one for the whole batch). 1-D
signals (MNIST-1D, shape (batch, length)) are transformed along their last axis; flattened
images such as the 8x8 digits (shape (batch, 64)) are reshaped with ``image_shape=(8, 8)``.

Strengths (``max_shift``, ``max_scale``, ``std``, ``rate``) may be traced values, so a training
run reads them from ``hp`` and a slider over them never recompiles. The training engine calls an
augmentation with a fresh key for every minibatch (``train.fit(..., augment=f)`` with
``f(key, x, hp)``): combine these functions there, splitting the key, e.g.::

    def augment_signal(key, x, hp):
        k_shift, k_noise = jax.random.split(key)
        x = augment.shift(k_shift, x, hp["shift"], mode="pad")
        return augment.noise(k_noise, x, hp["noise"])

This is what Keras's ``ImageDataGenerator(width_shift_range=..., zoom_range=...)`` does, as
functions of a key instead of a stateful generator. An augmentation must keep the label true:
shift a digit by one pixel and it is the same digit; shift a signal out of its window, or flip a
"6" into a "9", and the label is wrong (chapter 04 measures both).

>>> x = jnp.arange(10.0)[None, :].repeat(3, axis=0)          # three copies of one signal
>>> y = shift(jax.random.key(0), x, 2, mode="wrap")
>>> [sorted(row.tolist()) == list(range(10)) for row in y]   # wrap: every value is kept
[True, True, True]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck
from lessonlib import layers

MODES = ("wrap", "pad")


def _batch(x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be a batch of shape (batch, ...), got shape {x.shape}")
    return x


def _per_example(v: jax.Array, x: jax.Array) -> jax.Array:
    """A (batch,) vector shaped (batch, 1, ..., 1) to broadcast over the rest of ``x``."""
    return v.reshape(v.shape + (1,) * (x.ndim - 1))


def _along_last(v: jax.Array, x: jax.Array) -> jax.Array:
    """A (length,) vector shaped (1, ..., 1, length) to broadcast along the last axis of ``x``."""
    return v.reshape((1,) * (x.ndim - 1) + v.shape)


def _offsets(key: jax.Array, shape: tuple[int, ...], max_shift) -> jax.Array:
    """Integers drawn uniformly from {-m, ..., m}, ``m = round(max_shift)``, one per entry of
    ``shape``."""
    m = jnp.round(jnp.asarray(max_shift, jnp.float32))
    u = jax.random.uniform(key, shape, jnp.float32)
    return (jnp.clip(jnp.floor(u * (2 * m + 1)), 0, 2 * m) - m).astype(jnp.int32)


def _gather(x: jax.Array, idx: jax.Array, mode: str, axis: int) -> jax.Array:
    """``x`` read at integer positions ``idx`` along ``axis``: wrapped around, or 0 outside."""
    n = x.shape[axis]
    inside = (idx >= 0) & (idx < n)
    out = jnp.take_along_axis(x, jnp.mod(idx, n), axis=axis)
    return out if mode == "wrap" else jnp.where(inside, out, jnp.zeros_like(out))


def shift(key: jax.Array, x: jax.Array, max_shift, *, mode: str = "pad") -> jax.Array:
    """Shift each signal along its last axis by its own integer ``s`` in ``[-max_shift, max_shift]``:
    ``y[i] = x[i - s]``. ``mode="wrap"`` moves what leaves one end in at the other (a rotation),
    ``"pad"`` fills with zeros.

    >>> x = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    >>> shift(jax.random.key(3), x, 0).tolist()   # max_shift 0: unchanged
    [[1.0, 2.0, 3.0, 4.0]]
    """
    ck.prng_key("key", key)
    ck.non_negative("max_shift", max_shift)
    ck.one_of("mode", mode, MODES)
    x = _batch(x)
    s = _offsets(key, x.shape[:1], max_shift)
    idx = _along_last(jnp.arange(x.shape[-1], dtype=jnp.int32), x) - _per_example(s, x)
    return _gather(x, jnp.broadcast_to(idx, x.shape), mode, axis=-1)


def scale(key: jax.Array, x: jax.Array, max_scale) -> jax.Array:
    """Stretch or squeeze each signal in time about its centre by its own factor
    ``z ~ U(1 - max_scale, 1 + max_scale)``: ``y(t) = x(c + (t - c) / z)`` with linear
    interpolation, zero outside the signal (Keras's ``zoom_range`` for a 1-D signal).

    >>> x = jnp.linspace(-1.0, 1.0, 5)[None, :]
    >>> bool(jnp.allclose(scale(jax.random.key(0), x, 0.0), x))   # factor 1: unchanged
    True
    """
    ck.prng_key("key", key)
    ck.in_range("max_scale", max_scale, 0.0, 1.0, hi_open=True)
    x = _batch(x)
    n = x.shape[-1]
    a = jnp.asarray(max_scale, jnp.float32)
    z = jax.random.uniform(key, x.shape[:1], jnp.float32, 1.0 - a, 1.0 + a)
    c = (n - 1) / 2
    t = _along_last(jnp.arange(n, dtype=jnp.float32), x)
    pos = jnp.broadcast_to(c + (t - c) / _per_example(z, x), x.shape)
    lo = jnp.floor(pos)
    frac = (pos - lo).astype(x.dtype)
    lo = lo.astype(jnp.int32)
    left, right = _gather(x, lo, "pad", -1), _gather(x, lo + 1, "pad", -1)
    return (1 - frac) * left + frac * right


def noise(key: jax.Array, x: jax.Array, std) -> jax.Array:
    """Additive Gaussian noise ``x + N(0, std^2)``, a fresh draw for every entry
    (``layers.gaussian_noise`` in training mode: on the inputs it is input-noise injection)."""
    return layers.gaussian_noise(_batch(x), std, key=key, train=True)


def shift_2d(key: jax.Array, x: jax.Array, max_shift=1, *, image_shape: tuple[int, int]):
    """Shift each (flattened) image by its own ``(dy, dx)``, each in ``[-max_shift, max_shift]``,
    filling with zeros: for the 8x8 digits, ``max_shift=1`` is a one-pixel jitter
    (``width_shift_range``/``height_shift_range`` of Keras's ``ImageDataGenerator``).

    >>> img = jnp.zeros((1, 9)).at[0, 4].set(1.0)                 # a 3x3 image, centre pixel on
    >>> out = shift_2d(jax.random.key(1), img.repeat(50, axis=0), 1, image_shape=(3, 3))
    >>> bool((out.sum(axis=1) == 1).all())                        # a 1-pixel shift keeps it
    True
    """
    ck.prng_key("key", key)
    ck.non_negative("max_shift", max_shift)
    h, w = (ck.positive_int(f"image_shape[{i}]", v) for i, v in enumerate(image_shape))
    x = _batch(x)
    if x.shape[1:] != (h * w,):
        raise ValueError(
            f"x must have shape (batch, {h * w}) for image_shape {image_shape}, got {x.shape}"
        )
    ky, kx = jax.random.split(key)
    b = x.shape[0]
    dy, dx = _offsets(ky, (b,), max_shift), _offsets(kx, (b,), max_shift)
    img = x.reshape(b, h, w)
    rows = jnp.broadcast_to(jnp.arange(h)[None, :, None] - dy[:, None, None], img.shape)
    img = _gather(img, rows, "pad", axis=1)
    cols = jnp.broadcast_to(jnp.arange(w)[None, None, :] - dx[:, None, None], img.shape)
    return _gather(img, cols, "pad", axis=2).reshape(b, h * w)


def flip(key: jax.Array, x: jax.Array, rate=0.5, *, image_shape: tuple[int, int] | None = None):
    """Mirror each example left-right with probability ``rate`` (Keras's ``horizontal_flip``):
    the last axis of a signal, or the columns of an image of ``image_shape``."""
    ck.prng_key("key", key)
    ck.in_range("rate", rate, 0.0, 1.0)
    x = _batch(x)
    b = x.shape[0]
    view = x if image_shape is None else x.reshape(b, *image_shape)
    flipped = jnp.flip(view, axis=-1).reshape(x.shape)
    do = jax.random.uniform(key, (b,), jnp.float32) < jnp.asarray(rate, jnp.float32)
    return jnp.where(_per_example(do, x), flipped, x)
