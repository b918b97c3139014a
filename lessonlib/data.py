"""Data for the lessons: synthetic generators, real offline data sets and key-driven batching.

Everything here works offline. Generators take an integer ``seed`` (or an explicit ``key``) and
return float32 arrays, so the same call gives the same data on every machine.

Sources:
- ``synthetic_linear`` follows Dive into Deep Learning v0.17, section 4.5 (``d2l.synthetic_data``).
- ``two_moons``, ``circles``, ``spiral``: 2-D toy problems in the spirit of TensorFlow Playground.
- ``digits``: scikit-learn's 1,797 real 8x8 digits, shipped inside the package.
- ``mnist1d``: MNIST-1D (Greydanus 2020), generated procedurally by the ``mnist1d`` package.
- ``load_idx`` / ``load_fashion_mnist``: the IDX files of (Fashion-)MNIST a user already has.

Arguments are checked with ``lessonlib._checks`` (traced values are skipped).
"""

from __future__ import annotations

import gzip
import os
import struct
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks as ck
from lessonlib.cache import atomic_write, cache_dir


class Dataset(NamedTuple):
    """Train and test splits as float32 features and labels/targets, and optionally a validation
    split (``with_validation``): the data you choose epochs and hyperparameters on, so that the
    test split is scored without having been used to choose anything."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    x_val: jax.Array | None = None
    y_val: jax.Array | None = None


def _seed(seed) -> int:
    """A seed must fit jax.random.key's int32 (the toy generators trace it)."""
    return ck.in_range("seed", ck.integer("seed", seed), -(2**31), 2**31 - 1)


# --------------------------------------------------------------------------- regression


def synthetic_linear(
    n: int, d: int, *, seed: int, w: float = 0.01, b: float = 0.05, noise: float = 0.01
) -> tuple[jax.Array, jax.Array]:
    """Linear data ``y = b + sum_i w * x_i + eps`` with ``x ~ N(0, I)`` and ``eps ~ N(0, noise^2)``.

    This is the high-dimensional regression of Dive into Deep Learning v0.17 (section 4.5), where
    every true weight equals ``w`` (0.01) and the bias is ``b`` (0.05).

    Returns ``X`` of shape (n, d) and ``y`` of shape (n,), both float32.

    >>> X, y = synthetic_linear(20, 200, seed=0)
    >>> X.shape, y.shape, str(X.dtype)
    ((20, 200), (20,), 'float32')
    """
    n, d = ck.positive_int("n", n), ck.positive_int("d", d)
    ck.non_negative("noise", noise)
    ck.finite("w", w)
    ck.finite("b", b)
    kx, ke = jax.random.split(jax.random.key(_seed(seed)))
    X = jax.random.normal(kx, (n, d), jnp.float32)
    y = X @ jnp.full((d,), w, jnp.float32) + jnp.float32(b)
    y = y + jnp.float32(noise) * jax.random.normal(ke, (n,), jnp.float32)
    return X, y


def d2l_weight_decay_data(*, seed: int = 0, n_train: int = 20, n_test: int = 100, d: int = 200):
    """The exact split of the d2l weight-decay demo: 20 training and 100 test points in 200-D."""
    n_train, n_test = ck.positive_int("n_train", n_train), ck.positive_int("n_test", n_test)
    X, y = synthetic_linear(n_train + n_test, d, seed=seed)
    return Dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


# --------------------------------------------------------------------------- 2-D classification


def _check_2d_args(n: int, seed: int, noise: float) -> tuple[int, int, float]:
    return ck.positive_int("n", n), _seed(seed), ck.non_negative("noise", noise)


# The generators are jitted with the seed and the floats traced: one compilation per size, so a
# loop over seeds (chapter 01's bias-variance demo) or a noise slider never recompiles.


def two_moons(n: int, *, seed: int, noise: float = 0.1) -> tuple[jax.Array, jax.Array]:
    """Two interleaving half circles; labels 0/1 (int32). Points are jittered by ``N(0, noise^2)``."""
    return _two_moons(*_check_2d_args(n, seed, noise))


@partial(jax.jit, static_argnums=0)
def _two_moons(n, seed, noise):
    kt, kl, kn = jax.random.split(jax.random.key(seed), 3)
    label = jax.random.bernoulli(kl, 0.5, (n,)).astype(jnp.int32)
    t = jnp.pi * jax.random.uniform(kt, (n,), jnp.float32)
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    X = jnp.where(label[:, None] == 1, lower, upper) - jnp.array([[0.5, 0.25]], jnp.float32)
    X = X + noise * jax.random.normal(kn, (n, 2), jnp.float32)
    return X.astype(jnp.float32), label


def circles(n: int, *, seed: int, noise: float = 0.1, factor: float = 0.5):
    """A small circle (label 1) inside a large one (label 0); ``factor`` is the radius ratio."""
    ck.in_range("factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
    return _circles(*_check_2d_args(n, seed, noise), factor)


@partial(jax.jit, static_argnums=0)
def _circles(n, seed, noise, factor):
    kt, kl, kn = jax.random.split(jax.random.key(seed), 3)
    label = jax.random.bernoulli(kl, 0.5, (n,)).astype(jnp.int32)
    t = 2 * jnp.pi * jax.random.uniform(kt, (n,), jnp.float32)
    r = jnp.where(label == 1, jnp.asarray(factor, jnp.float32), jnp.float32(1.0))
    X = r[:, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    X = X + noise * jax.random.normal(kn, (n, 2), jnp.float32)
    return X.astype(jnp.float32), label


def spiral(n: int, *, seed: int, noise: float = 0.1, turns: float = 1.5):
    """Two interleaved spiral arms (labels 0/1), the hardest of TensorFlow Playground's data sets."""
    ck.positive("turns", turns)
    return _spiral(*_check_2d_args(n, seed, noise), turns)


@partial(jax.jit, static_argnums=0)
def _spiral(n, seed, noise, turns):
    kt, kl, kn = jax.random.split(jax.random.key(seed), 3)
    label = jax.random.bernoulli(kl, 0.5, (n,)).astype(jnp.int32)
    r = jax.random.uniform(kt, (n,), jnp.float32, 0.05, 1.0)
    angle = 2 * jnp.pi * turns * r + jnp.pi * label.astype(jnp.float32)
    X = r[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    X = X + noise * jax.random.normal(kn, (n, 2), jnp.float32)
    return X.astype(jnp.float32), label


TOY_2D = {"moons": two_moons, "circles": circles, "spiral": spiral}


def toy_2d(name: str, n: int, *, seed: int, noise: float = 0.1, train_share: float = 0.5):
    """One of ``TOY_2D`` split into train/test by ``train_share`` (the Playground's "ratio")."""
    ck.one_of("name", name, sorted(TOY_2D))
    ck.in_range("train_share", train_share, 0.0, 1.0, lo_open=True, hi_open=True)
    X, y = (np.asarray(a) for a in TOY_2D[name](n, seed=seed, noise=noise))
    k = max(1, min(n - 1, round(n * train_share)))
    # split on the host and copy with device_put: slicing device arrays, or jnp.asarray on a new
    # shape, compiles a program for every new share (a slider's first visit)
    return Dataset(*jax.device_put((X[:k], y[:k], X[k:], y[k:])))


# --------------------------------------------------------------------------- real data


def _split(X: np.ndarray, y: np.ndarray, n_test: int, seed: int) -> Dataset:
    order = np.random.default_rng(seed).permutation(len(X))
    X, y = X[order], y[order]
    return Dataset(
        jnp.asarray(X[n_test:], jnp.float32),
        jnp.asarray(y[n_test:], jnp.int32),
        jnp.asarray(X[:n_test], jnp.float32),
        jnp.asarray(y[:n_test], jnp.int32),
    )


def digits(*, seed: int = 0, n_test: int = 360) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 64 features scaled to [0, 1]), shuffled and split."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    ck.ordered("n_test", ck.positive_int("n_test", n_test), "the number of images", len(raw.data))
    return _split(raw.data / 16.0, raw.target, n_test, ck.integer("seed", seed, min_value=0))


def mnist1d(*, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020): 4,000 train / 1,000 test signals of length 40, 10 classes.

    Generated procedurally by the ``mnist1d`` package with its default arguments (no download).
    Generating takes ~8 s on a laptop CPU, so the arrays are cached in ``cache_dir()`` under a name
    that includes the package version and the seed; delete the file to regenerate.
    """
    from importlib.metadata import version

    seed = ck.integer("seed", seed, min_value=0)
    path = cache_dir() / f"mnist1d-{version('mnist1d')}-seed{seed}.npz"
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, KeyError, ValueError):
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.seed = seed
        data = make_dataset(args)
        with atomic_write(path) as f:  # parallel notebooks never read a half-written file
            np.savez(f, **{k: data[k] for k in ("x", "y", "x_test", "y_test")})
    return Dataset(
        jnp.asarray(data["x"], jnp.float32),
        jnp.asarray(data["y"], jnp.int32),
        jnp.asarray(data["x_test"], jnp.float32),
        jnp.asarray(data["y_test"], jnp.int32),
    )


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the (Fashion-)MNIST format), gzipped or not, into a numpy array.

    Format (LeCun et al.): two zero bytes, a dtype byte, a rank byte, then ``rank`` big-endian
    uint32 sizes, then the data in C order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    rank = raw[3]
    shape = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype, offset=4 + 4 * rank)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def load_fashion_mnist(path: str | os.PathLike | None = None) -> Dataset:
    """(Fashion-)MNIST from IDX files already on disk, images flattened to 784 floats in [0, 1].

    ``path`` is a folder holding the four standard files (``.gz`` or not); by default
    ``$LESSONLIB_DATA/fashion-mnist`` or ``~/.cache/lessonlib/fashion-mnist``. Nothing is downloaded:
    missing files raise FileNotFoundError saying where to put them.
    """
    if path is None:
        root = os.environ.get("LESSONLIB_DATA", Path.home() / ".cache" / "lessonlib")
        path = Path(root) / "fashion-mnist"
    path = Path(path)
    out = {}
    for field, stem in _FASHION_FILES.items():
        found = [p for p in (path / stem, path / f"{stem}.gz") if p.is_file()]
        if not found:
            raise FileNotFoundError(
                f"{stem}[.gz] not found in {path}. lessonlib never downloads data: copy the four "
                f"(Fashion-)MNIST IDX files there, or pass path=... to the folder that has them."
            )
        out[field] = load_idx(found[0])
    n_train, n_test = len(out["x_train"]), len(out["x_test"])
    return Dataset(
        jnp.asarray(out["x_train"].reshape(n_train, -1) / 255.0, jnp.float32),
        jnp.asarray(out["y_train"], jnp.int32),
        jnp.asarray(out["x_test"].reshape(n_test, -1) / 255.0, jnp.float32),
        jnp.asarray(out["y_test"], jnp.int32),
    )


def with_validation(ds: Dataset, n_val: int, *, seed: int = 0) -> Dataset:
    """Hold ``n_val`` randomly chosen training examples out as the validation split.

    The training split shrinks by ``n_val``; the test split is left alone. The training engine
    then reports ``val_loss``/``val_acc`` after every epoch next to ``train_*`` and ``test_*``,
    and early stopping monitors ``val_loss`` by default.

    >>> ds = with_validation(d2l_weight_decay_data(seed=0), 5, seed=1)
    >>> ds.x_train.shape, ds.x_val.shape, ds.x_test.shape
    ((15, 200), (5, 200), (100, 200))
    """
    if ds.x_val is not None:
        raise ValueError("ds already has a validation split")
    n = int(ds.x_train.shape[0])
    n_val = ck.positive_int("n_val", n_val)
    ck.ordered("n_val", n_val, "the number of training examples", n)
    order = np.random.default_rng(ck.integer("seed", seed, min_value=0)).permutation(n)
    val, keep = order[:n_val], np.sort(order[n_val:])
    return Dataset(
        ds.x_train[keep], ds.y_train[keep], ds.x_test, ds.y_test, ds.x_train[val], ds.y_train[val]
    )


# --------------------------------------------------------------------------- batching


def epoch_batches(key: jax.Array, n: int, batch_size: int) -> jax.Array:
    """Indices of one shuffled epoch as an array of shape (n // batch_size, batch_size).

    The last ``n % batch_size`` shuffled examples are dropped for this epoch (a different few each
    epoch), so every batch has the same shape and the whole epoch can run inside ``lax.scan``.
    """
    ck.prng_key("key", key)
    n, batch_size = ck.positive_int("n", n), ck.positive_int("batch_size", batch_size)
    ck.ordered("batch_size", batch_size, "the number of examples", n, strict=False)
    steps = n // batch_size
    return jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)
