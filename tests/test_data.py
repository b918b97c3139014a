import gzip
import struct

import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import data


def test_synthetic_linear_contract():
    X, y = data.synthetic_linear(500, 7, seed=3)
    assert X.shape == (500, 7) and y.shape == (500,)
    assert X.dtype == jnp.float32 and y.dtype == jnp.float32
    # Least squares recovers w = 0.01 and b = 0.05 up to the noise level (noise 0.01, n = 500).
    A = np.c_[np.asarray(X, np.float64), np.ones(500)]
    coef, *_ = np.linalg.lstsq(A, np.asarray(y, np.float64), rcond=None)
    np.testing.assert_allclose(coef[:-1], 0.01, atol=3e-3)
    np.testing.assert_allclose(coef[-1], 0.05, atol=3e-3)
    resid = np.asarray(y) - A @ coef
    assert 0.008 < resid.std() < 0.012


def test_synthetic_linear_is_seeded():
    a, b = data.synthetic_linear(5, 3, seed=1), data.synthetic_linear(5, 3, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    c = data.synthetic_linear(5, 3, seed=2)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n": 0, "d": 3}, "n"),
        ({"n": 5, "d": -1}, "d"),
        ({"n": 5, "d": 3, "noise": -0.1}, "noise"),
        ({"n": 2.5, "d": 3}, "n"),
    ],
)
def test_synthetic_linear_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.synthetic_linear(**kwargs, seed=0)


def test_d2l_split():
    ds = data.d2l_weight_decay_data(seed=0)
    assert ds.x_train.shape == (20, 200) and ds.x_test.shape == (100, 200)


@pytest.mark.parametrize("name", sorted(data.TOY_2D))
def test_toy_2d(name):
    X, y = data.TOY_2D[name](300, seed=0, noise=0.05)
    assert X.shape == (300, 2) and X.dtype == jnp.float32
    assert set(np.unique(np.asarray(y))) == {0, 1}
    ds = data.toy_2d(name, 300, seed=0, train_share=0.3)
    assert ds.x_train.shape[0] == 90 and ds.x_test.shape[0] == 210


def test_toy_2d_classes_are_separable_without_noise():
    # Circles: radius alone tells the class.
    X, y = data.circles(400, seed=0, noise=0.0)
    r = np.linalg.norm(np.asarray(X), axis=1)
    np.testing.assert_allclose(r[np.asarray(y) == 1], 0.5, atol=1e-5)
    np.testing.assert_allclose(r[np.asarray(y) == 0], 1.0, atol=1e-5)


def test_toy_2d_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        data.toy_2d("swirl", 10, seed=0)
    with pytest.raises(ValueError, match="train_share"):
        data.toy_2d("moons", 10, seed=0, train_share=1.5)
    with pytest.raises(ValueError, match="noise"):
        data.two_moons(10, seed=0, noise=-1)


def test_digits():
    ds = data.digits(seed=0)
    assert ds.x_train.shape == (1437, 64) and ds.x_test.shape == (360, 64)
    assert float(ds.x_train.max()) <= 1.0
    assert ds.y_train.dtype == jnp.int32


def test_mnist1d_shapes_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path))
    ds = data.mnist1d()
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert sorted(np.unique(np.asarray(ds.y_train)).tolist()) == list(range(10))
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1
    again = data.mnist1d()  # from the cache
    np.testing.assert_array_equal(ds.x_test, again.x_test)


def _write_idx(path, array: np.ndarray, code: int = 0x08, compress: bool = False):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = (
        header
        + array.astype(
            array.dtype.newbyteorder(">") if array.itemsize > 1 else array.dtype
        ).tobytes()
    )
    (gzip.open if compress else open)(path, "wb").write(raw)


def test_load_idx_roundtrip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a-idx3-ubyte", images)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "a-idx3-ubyte"), images)
    _write_idx(tmp_path / "b.gz", images, compress=True)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "b.gz"), images)
    floats = np.linspace(0, 1, 6).astype(np.float32).reshape(2, 3)
    _write_idx(tmp_path / "f", floats, code=0x0D)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "f"), floats)


def test_load_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        data.load_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="shape"):
        data.load_idx(tmp_path / "short")


def test_fashion_mnist_from_local_files(tmp_path):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 6), ("t10k", 4)):
        _write_idx(
            tmp_path / f"{stem}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            compress=True,
        )
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    ds = data.load_fashion_mnist(tmp_path)
    assert ds.x_train.shape == (6, 784) and ds.x_test.shape == (4, 784)
    assert 0.0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1.0


def test_fashion_mnist_missing_files_fail_fast(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        data.load_fashion_mnist(tmp_path)


def test_epoch_batches():
    import jax

    idx = data.epoch_batches(jax.random.key(0), 23, 5)
    assert idx.shape == (4, 5)
    assert len(set(np.asarray(idx).ravel().tolist())) == 20  # no repeats within an epoch
    with pytest.raises(ValueError, match="batch_size"):
        data.epoch_batches(jax.random.key(0), 3, 5)


@pytest.mark.parametrize("name", ["moons", "circles", "spiral"])
def test_toy_generators_compile_once_per_size(name):
    """Seeds and noise are traced: a loop over seeds (chapter 01) or a noise slider reuses one program."""
    gen = data.TOY_2D[name]
    jitted = {"moons": data._two_moons, "circles": data._circles, "spiral": data._spiral}[name]
    gen(30, seed=1, noise=0.1)
    before = jitted._cache_size()
    for s in range(4):
        gen(30, seed=100 + s, noise=0.05 * s)
    assert jitted._cache_size() == before


@pytest.mark.parametrize("seed", [2**40, 1.5, True, "0"])
def test_seed_is_checked(seed):
    with pytest.raises(ValueError, match="seed"):
        data.two_moons(10, seed=seed)
