"""Files lessonlib keeps on disk: where they go, how they are written, and a cache of results.

- ``cache_dir()``: ``$LESSONLIB_CACHE`` or ``~/.cache/lessonlib`` (generated data sets, stored
  sweeps, the grader's compiled programs).
- ``atomic_write(path)``: write a file so that no reader ever sees half of it. The content goes to
  a temporary file in the same folder, which is renamed onto ``path`` only when complete
  (``os.replace`` is atomic on POSIX). Two notebooks filling the same cache at once, or an
  interrupted run, leave either the old file or the new one, never a torn one.
- ``cached(name, settings, compute)``: run an expensive computation (a 200-epoch sweep) once and
  load its arrays from ``cache_dir()`` afterwards. The file name hashes the settings AND the source
  code of the modules that produced the result (``cache_key``), so editing either recomputes
  instead of showing stale numbers. Chapters that store results (a sweep, a search) all use it.
- ``enable_compile_cache()``: keep the programs XLA compiles in ``cache_dir() / "xla"`` (JAX's
  persistent compilation cache), so a chapter run a second time, or in a new kernel, loads them
  instead of compiling again. The chapters turn it on when they import ``lessonlib.demos``.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> with atomic_write(d / "note.txt", "w", encoding="utf-8") as f:
...     _ = f.write("complete or absent")
>>> (d / "note.txt").read_text(encoding="utf-8"), sorted(p.name for p in d.iterdir())
('complete or absent', ['note.txt'])
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np


def cache_dir() -> Path:
    """Where generated data is cached: ``$LESSONLIB_CACHE`` or ``~/.cache/lessonlib``."""
    return Path(os.environ.get("LESSONLIB_CACHE", Path.home() / ".cache" / "lessonlib"))


COMPILE_CACHE_ENV = "LESSONLIB_COMPILE_CACHE"  # "0" turns the compile cache off


def enable_compile_cache(
    path: str | os.PathLike | None = None, *, min_compile_time_s: float = 0.2
) -> Path | None:
    """Keep compiled XLA programs on disk (JAX's persistent compilation cache) and return its folder.

    A program that took at least ``min_compile_time_s`` to compile is written to ``path`` (default
    ``cache_dir() / "xla"``), keyed by JAX on the program, the JAX version and the device; a later
    process that compiles the same program loads it instead. Nothing changes in what a program
    computes. Returns ``None`` and leaves JAX alone when ``$LESSONLIB_COMPILE_CACHE`` is ``0``,
    when a compilation cache folder is already configured (by the user, or by the grader, which
    keeps its own) or when JAX's compilation cache is turned off. The folder may be deleted at any time (programs are compiled again). JAX's
    warning applies: only point it at a folder that only you can write.
    See https://docs.jax.dev/en/latest/persistent_compilation_cache.html
    """
    if not min_compile_time_s >= 0:
        raise ValueError(f"min_compile_time_s must be >= 0, got {min_compile_time_s!r}")
    if os.environ.get(COMPILE_CACHE_ENV, "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    import jax

    if jax.config.jax_compilation_cache_dir or not jax.config.jax_enable_compilation_cache:
        return None
    folder = Path(path) if path is not None else cache_dir() / "xla"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile as before
    tidy_compile_cache(folder)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    return folder


def tidy_compile_cache(folder: str | os.PathLike, *, max_bytes: int | None = None) -> None:
    """Drop the empty entries of a compile-cache folder, and with ``max_bytes`` empty it once it
    holds more. JAX writes an entry in place: a process stopped mid-write (a kernel restarted
    while it compiled) leaves an empty file, which JAX would report on every later run and never
    replace. Files that are not ours or vanish meanwhile are left alone: only speed is at stake."""
    try:
        entries = [e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
        too_big = max_bytes is not None and sum(e.stat().st_size for e in entries) > max_bytes
        for e in entries:
            if too_big or e.stat().st_size == 0:
                os.unlink(e.path)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to ``path``; when the block ends without an error, rename it onto
    ``path``. On an error the temporary file is removed and ``path`` is left as it was.

    ``mode`` is ``"wb"`` (bytes, e.g. ``np.savez(f, ...)``) or ``"w"`` (text; pass ``encoding``,
    ``newline`` as for ``open``). Missing parent folders are created. The temporary name starts
    with a dot and names the process and thread, so concurrent writers never share one.

    (This module imports neither jax nor ``_checks``, which does: the grader's command line writes
    its files with it and starts without loading JAX.)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be one of ['wb', 'w'], got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only still there when the block raised


def cache_key(settings: Mapping, modules: Sequence[ModuleType | Callable] = ()) -> str:
    """A hash of the JSON ``settings``, the source of ``modules`` and the jax/numpy versions."""
    import jax

    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for m in modules:
        h.update(inspect.getsource(m).encode())
    h.update(f"jax {jax.__version__} numpy {np.__version__}".encode())
    return h.hexdigest()[:16]


def cached(
    name: str,
    settings: Mapping,
    compute: Callable[[], Mapping[str, np.ndarray]],
    *,
    modules: Sequence[ModuleType | Callable] = (),
) -> tuple[dict[str, np.ndarray], bool]:
    """``compute()`` once, then load from ``cache_dir()/name-<hash>.npz``; returns (arrays, hit).

    The file name hashes ``settings`` and the source code of ``modules`` (see ``cache_key``), so a
    change to either computes afresh. ``compute`` must return a flat dict of arrays. The file is
    written with ``atomic_write``, so two notebooks running at once never read half a file.
    """
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"name must be letters, digits, '-' or '_', got {name!r}")
    path = cache_dir() / f"{name}-{cache_key(settings, modules)}.npz"
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}, True
    except (OSError, ValueError):
        pass
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return arrays, False
