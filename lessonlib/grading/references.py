"""The trusted references on disk: ``Exercise.prepare`` results kept between grading runs.

Some judges compare with a result that takes seconds to compute: chapter 01's ``lam_best`` is
judged against a lambda sweep that trains 60 networks (about 8 s on one core). Without a store,
every ``lessonlib grade 01`` pays that again. The store keeps each :class:`~lessonlib.exercises.
Precomputed` result in ``$LESSONLIB_CACHE/grader-refs`` (next to the compile cache
``grader-xla``), keyed like the compile cache's marker: the chapter's source notebook, the library
copy the sandbox runs, Python and JAX (``sandbox.library_digest``), plus the chapter's spec module
and numpy. Editing any of them computes the reference again.

Whoever can change a stored reference decides what counts as right, so:

1. Only the trusted process reads or writes the store (``grader.prepare_references``). The
   sandbox never gets it: the whole cache folder is hidden from the learner's code where
   namespaces are available, and the store is owner-only (0700), so ``nobody`` cannot enter it.
2. Each file carries an HMAC-SHA256 of its key and content under a per-user secret
   (``.secret``, 0600, created on first use). A file written by anyone without the secret (a
   forged file in a shared or loosened cache folder, a copy from another course version or another
   exercise) fails the check and is computed again; so does a torn or corrupt file.
3. A store folder or secret that is not owned by the user, or is a link, is not used at all:
   references are then computed in memory as before (slower, never a different grade).
4. Files are read through ``O_NOFOLLOW``, size-checked, and loaded with ``allow_pickle=False``.

Not protected: in the ``process`` isolation mode the learner's code runs as the user and could read
the secret, as it can read everything else (docs/instructors.md, "Threat model").
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import io
import os
import re
import secrets
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lessonlib import exercises as lx
from lessonlib.cache import atomic_write, cache_dir, tidy_compile_cache

from .course import Chapter
from .sandbox import MAX_CACHE_BYTES, package_version

if TYPE_CHECKING:
    import nbformat

FORMAT = b"lessonlib-grader-refs-1"
MAX_BYTES = 256 << 20
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def default_store() -> Path:
    """``$LESSONLIB_CACHE/grader-refs`` (``~/.cache/lessonlib/grader-refs`` by default)."""
    return cache_dir() / "grader-refs"


def _read_own(path: Path, *, private: bool = False) -> bytes | None:
    """The bytes of a regular file owned by this user (not through a link), at most ``MAX_BYTES``;
    with ``private``, also unreadable by anyone else. None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > MAX_BYTES:
            return None
        if private and st.st_mode & 0o077:
            return None
        return f.read(MAX_BYTES + 1)


def _private_folder(folder: Path) -> bool:
    """The folder exists, is ours, is a real folder and is owner-only (tightened if needed)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        if st.st_mode & 0o077:
            os.chmod(folder, 0o700)
        return True
    except OSError:
        return False


def enable_trusted_compile_cache(folder: Path | None = None) -> Path | None:
    """Keep the programs this (trusted) grading process compiles on disk, and return the folder.

    The judges compare a learner's result with the reference and with the results of the plausible
    wrong answers, which they compute with many small JAX programs: compiling them took 4-6 s of a
    warm ``lessonlib grade``. They are written, whatever their compile time, to
    ``$LESSONLIB_CACHE/grader-trusted-xla`` (next to ``grader-refs`` and the sandbox's
    ``grader-xla``), an owner-only folder that only this side writes: the sandbox never sees it,
    and a folder that is not ours is not used (JAX would load a forged program). Call it before
    the first compilation. None (and JAX left alone) when the folder is unusable, a cache folder is
    already configured or ``$LESSONLIB_COMPILE_CACHE`` is ``0``; see ``cache.enable_compile_cache``.
    """
    from lessonlib.cache import enable_compile_cache

    folder = Path(folder) if folder is not None else cache_dir() / "grader-trusted-xla"
    if not _private_folder(folder):
        return None
    tidy_compile_cache(folder, max_bytes=MAX_CACHE_BYTES)
    enabled = enable_compile_cache(folder, min_compile_time_s=0.0)
    if enabled is not None:
        import jax

        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return enabled


class ReferenceStore:
    """Stored ``Exercise.prepare`` results of one user, verified with their secret."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else default_store()
        self._secret: bytes | None = None

    # ------------------------------------------------------------ keys

    def key(self, chapter: Chapter, exercise: lx.Exercise, library: str) -> str:
        """What the stored result depends on (``library`` is ``sandbox.library_digest()``)."""
        compute = getattr(exercise.prepare, "compute", exercise.prepare)
        h = hashlib.sha256(FORMAT)
        for part in (
            chapter.source_path.read_bytes(),
            library.encode(),
            _source_of(compute),
            f"{exercise.id}|{getattr(compute, '__qualname__', '')}".encode(),
            f"numpy {np.__version__} jaxlib {package_version('jaxlib')} {sys.version}".encode(),
            f"{os.environ.get('JAX_PLATFORMS', '')}|{os.environ.get('JAX_ENABLE_X64', '')}".encode(),
        ):
            h.update(hashlib.sha256(part).digest())
        return h.hexdigest()[:32]

    def path(self, exercise: lx.Exercise, key: str) -> Path:
        return self.folder / f"{_SAFE.sub('_', exercise.id)}-{key}.ref"

    # ------------------------------------------------------------ the folder and its secret

    def _usable(self) -> bool:
        return _private_folder(self.folder)

    def secret(self) -> bytes | None:
        """The user's secret (created on first use), or None when the store is unusable."""
        if self._secret is not None:
            return self._secret
        if not self._usable():
            return None
        path = self.folder / ".secret"
        for _ in range(2):
            data = _read_own(path, private=True)
            if data is not None and len(data) == 32:
                self._secret = data
                return data
            # none yet, or one that others could have read or written: a new one (which also
            # invalidates every file signed with the old one). Concurrent creators: the last
            # rename wins and the next read takes it.
            try:
                with atomic_write(path) as f:
                    os.fchmod(f.fileno(), 0o600)
                    f.write(secrets.token_bytes(32))
            except OSError:
                return None
        return None

    def _mac(self, secret: bytes, key: str, body: bytes) -> bytes:
        return hmac.new(secret, key.encode() + b"\0" + body, hashlib.sha256).digest()

    # ------------------------------------------------------------ load and save

    def load(self, exercise: lx.Exercise, key: str) -> dict[str, np.ndarray] | None:
        """The stored arrays if present and verified, else None."""
        body = self._load_signed(self.path(exercise, key), key)
        if body is None:
            return None
        try:
            with np.load(io.BytesIO(body), allow_pickle=False) as z:
                return lx.plain_arrays({k: z[k] for k in z.files})
        except (OSError, ValueError):
            return None

    def save(self, exercise: lx.Exercise, key: str, arrays: dict[str, np.ndarray]) -> bool:
        """Store ``arrays`` (atomically) and remove the exercise's older versions; False when the
        store is unusable (costs time later, nothing else)."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        older = f"{_SAFE.sub('_', exercise.id)}-*.ref"
        return self._save_signed(self.path(exercise, key), key, buf.getvalue(), older)

    def released(self, chapter: Chapter) -> nbformat.NotebookNode:
        """``chapter``'s notebook as released to learners (``workspace.student_version``: nbgrader's
        ClearSolutions, ClearHiddenTests, ClearOutput), which the tamper check compares with.
        Making it imports nbgrader (about 2 s), so it is stored too, keyed on the source notebook
        and nbgrader's version, and signed like the references."""
        import nbformat

        from lessonlib.workspace import student_version

        h = hashlib.sha256(FORMAT + b"|released|")
        h.update(f"nbgrader {package_version('nbgrader')} nbformat {nbformat.__version__}".encode())
        h.update(chapter.source_path.read_bytes())
        key = h.hexdigest()[:32]
        name = f"{_SAFE.sub('_', chapter.name)}-released"
        path = self.folder / f"{name}-{key}.ipynb.signed"
        body = self._load_signed(path, key)
        if body is not None:
            try:
                return nbformat.reads(body.decode("utf-8"), as_version=4)
            except (ValueError, UnicodeDecodeError):
                pass
        nb = student_version(chapter.source)
        self._save_signed(path, key, nbformat.writes(nb).encode("utf-8"), f"{name}-*.ipynb.signed")
        return nb

    def _load_signed(self, path: Path, key: str) -> bytes | None:
        secret = self.secret()
        if secret is None:
            return None
        data = _read_own(path)
        if data is None or len(data) < 32:
            return None
        mac, body = data[:32], data[32:]
        if not hmac.compare_digest(mac, self._mac(secret, key, body)):
            return None
        return body

    def _save_signed(self, path: Path, key: str, body: bytes, older: str) -> bool:
        """Write ``mac + body`` atomically and remove the files matching the glob ``older`` (the
        older versions); False when the store is unusable."""
        secret = self.secret()
        if secret is None:
            return False
        try:
            with atomic_write(path) as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(self._mac(secret, key, body) + body)
            for old in self.folder.glob(older):
                if old.name != path.name:
                    old.unlink(missing_ok=True)
        except OSError:
            return False
        return True


def _source_of(fn: object) -> bytes:
    """The source file of the module that defines ``fn`` (its chapter's spec), or its source."""
    try:
        return Path(inspect.getsourcefile(fn)).read_bytes()  # type: ignore[arg-type]
    except (TypeError, OSError):
        try:
            return inspect.getsource(fn).encode()  # type: ignore[arg-type]
        except (TypeError, OSError):
            return repr(fn).encode()
