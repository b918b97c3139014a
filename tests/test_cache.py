"""lessonlib.cache: the settings+source keyed cache and the atomic file write it shares with
data.mnist1d and the grader."""

import os

import numpy as np
import pytest

from lessonlib import cache, models


def test_cache_hits_and_invalidates_on_settings_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3.0)}

    out, hit = cache.cached("t", {"epochs": 5}, compute, modules=[cache])
    assert not hit and len(calls) == 1
    out2, hit2 = cache.cached("t", {"epochs": 5}, compute, modules=[cache])
    assert hit2 and len(calls) == 1
    np.testing.assert_array_equal(out2["a"], out["a"])
    _, hit3 = cache.cached("t", {"epochs": 6}, compute, modules=[cache])
    assert not hit3 and len(calls) == 2  # settings changed
    _, hit4 = cache.cached("t", {"epochs": 5}, compute, modules=[cache, models])
    assert not hit4 and len(calls) == 3  # the source hashed changed
    assert cache.cache_key({"a": 1}) != cache.cache_key({"a": 2})
    with pytest.raises(ValueError, match="name"):
        cache.cached("../x", {}, compute)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    from lessonlib import data

    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    assert data.cache_dir is cache.cache_dir  # the name notebooks and the grader use


# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_replaces_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "f.npz"  # missing folders are created
    with cache.atomic_write(path) as f:
        np.savez(f, a=np.arange(3))
        assert not path.exists()  # a reader sees nothing until the write is complete
    with np.load(path) as z:
        np.testing.assert_array_equal(z["a"], np.arange(3))
    assert os.listdir(path.parent) == ["f.npz"]  # no temporary file left

    with cache.atomic_write(path, "w", encoding="utf-8") as f:
        f.write("new")
        with np.load(path) as z:  # the old file is intact while the new one is written
            np.testing.assert_array_equal(z["a"], np.arange(3))
    assert path.read_text(encoding="utf-8") == "new"


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="half way"):
        with cache.atomic_write(path, "w", encoding="utf-8") as f:
            f.write("half")
            raise RuntimeError("half way")
    assert path.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_atomic_write_rejects_other_modes(tmp_path):
    for mode in ("a", "r", "w+"):
        with pytest.raises(ValueError, match="mode must be one of"):
            with cache.atomic_write(tmp_path / "x", mode):
                pass
    assert not any(tmp_path.iterdir())


def test_the_atomic_write_exists_once():
    """Every file lessonlib writes for others to read goes through ``cache.atomic_write``; only the
    sandbox's worker (it runs in the learner's process, on the sandbox's copy of the library) keeps
    its own rename."""
    from pathlib import Path

    import lessonlib

    root = Path(lessonlib.__file__).parent
    renames = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "os.replace(" in p.read_text(encoding="utf-8")
    )
    assert renames == ["cache.py", "grading/worker.py"]


_COMPILE_TWICE = """
import json, sys, time
import jax, jax.numpy as jnp
import lessonlib.demos  # turns the compile cache on, as a chapter's first cell does
from lessonlib import models, train, data
model = models.mlp([8, 64, 64, 4])
params, state = model.init(jax.random.key(0))
x = jax.random.normal(jax.random.key(1), (64, 8), jnp.float32)
y = jax.random.randint(jax.random.key(2), (64,), 0, 4)
ds = data.Dataset(x, y, x, y)
run = train.fit(model, params, ds, key=jax.random.key(3), hp={"lr": 0.1}, epochs=3, batch_size=16)
print(json.dumps({"dir": jax.config.jax_compilation_cache_dir,
                  "loss": float(run.history["train_loss"][-1])}))
"""


def _run_child(tmp_path, **env):
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _COMPILE_TWICE],
        env={**os.environ, "LESSONLIB_CACHE": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compile_cache_is_written_then_read_and_changes_no_result(tmp_path):
    (tmp_path / "xla").mkdir()
    (tmp_path / "xla" / "jit_cut_short-0-cache").write_bytes(b"")  # a kernel stopped mid-write
    first = _run_child(tmp_path, LESSONLIB_COMPILE_CACHE="1")
    assert first["dir"] == str(tmp_path / "xla")
    assert not (tmp_path / "xla" / "jit_cut_short-0-cache").exists()  # JAX would warn on it
    entries = {p.name for p in (tmp_path / "xla").iterdir() if p.is_file()}
    assert entries, "the training program was not stored"
    second = _run_child(tmp_path, LESSONLIB_COMPILE_CACHE="1")
    assert second["loss"] == first["loss"]  # loaded, not recompiled: bit-identical result
    assert {p.name for p in (tmp_path / "xla").iterdir() if p.is_file()} >= entries


def test_compile_cache_off_switch_and_existing_setting(tmp_path):
    off = _run_child(tmp_path, LESSONLIB_COMPILE_CACHE="0")
    assert off["dir"] is None and not (tmp_path / "xla").exists()
    mine = tmp_path / "my-xla"
    kept = _run_child(tmp_path, LESSONLIB_COMPILE_CACHE="1", JAX_COMPILATION_CACHE_DIR=str(mine))
    assert kept["dir"] == str(mine)  # a cache the learner configured is left alone
    assert not (tmp_path / "xla").exists()


def test_enable_compile_cache_rejects_a_negative_threshold():
    with pytest.raises(ValueError, match="min_compile_time_s"):
        cache.enable_compile_cache(min_compile_time_s=-1.0)
