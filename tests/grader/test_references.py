"""The reference store (``grading/references.py``): a judge's precomputed reference is computed
once, then loaded by later grading runs; a file that the trusted process did not write under the
user's secret (a forged, copied, truncated or linked one) is never trusted, and a store folder that
is not the user's own is not used at all. (That the sandbox cannot reach the store is checked by
the exploit corpus, ``poison_references``.)"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import io
import os
import stat

import numpy as np
import pytest

from lessonlib import exercises as lx
from lessonlib.grading.grader import prepare_references
from lessonlib.grading.references import ReferenceStore
from lessonlib.grading.sandbox import library_digest

SPEC = importlib.import_module("lessonlib.exercises.ch99")  # registered by conftest


@pytest.fixture
def lam(ch99):
    """Chapter 99's lam_best, whose judge reads the precomputed ``_sweep``; forgotten before and
    after each test so every test starts from an empty process."""
    ex = next(e for e in ch99.exercises if e.id == "99.lam_best")
    ex.prepare.forget()
    yield ex
    ex.prepare.forget()


def _computed() -> int:
    return len(SPEC.COMPUTED)


def _verdicts(ex) -> tuple:
    return ex.judge(lx.Case(), lx.Outcome(value=0.25)), ex.judge(lx.Case(), lx.Outcome(value=0.5))


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


FORGED = {"lams": np.array([0.0625, 0.125, 0.25, 0.5, 1.0]), "val": np.array([5.0, 4, 3, 0, 1])}


def test_a_result_already_in_memory_is_stored_too(ch99, lam, tmp_path):
    """A reference this process computed before (another grading call, the notebook's check) is
    kept in an empty store as well, instead of being skipped because it is ready."""
    lam.prepare()
    assert lam.prepare.ready
    before = _computed()
    prepare_references(ch99, ReferenceStore(tmp_path / "refs"))
    assert _computed() == before  # not computed again
    names = [p.name for p in (tmp_path / "refs").iterdir() if p.suffix == ".ref"]
    assert len(names) == 1 and names[0].startswith("99.lam_best-")


def test_computed_once_then_loaded(ch99, lam, tmp_path):
    folder = tmp_path / "refs"
    before = _computed()
    prepare_references(ch99, ReferenceStore(folder))
    assert _computed() == before + 1 and lam.prepare.ready
    files = [p for p in folder.iterdir() if p.suffix == ".ref"]
    assert len(files) == 1 and files[0].name.startswith("99.lam_best-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / ".secret").stat().st_mode) == 0o600
    lam.prepare.forget()  # a new grading run: a fresh process with an empty memory
    prepare_references(ch99, ReferenceStore(folder))
    assert _computed() == before + 1 and lam.prepare.ready  # loaded, not computed
    assert _verdicts(lam)[0] is None and "lowest validation loss" in _verdicts(lam)[1]
    # a second exercise version leaves one file per exercise
    assert len([p for p in folder.iterdir() if p.suffix == ".ref"]) == 1


def _forge(kind: str, path, key: str, secret: bytes) -> None:
    body = _npz(FORGED)
    if kind == "no signature":
        data = body
    elif kind == "zero signature":
        data = bytes(32) + body
    elif kind == "another secret":
        data = hmac.new(os.urandom(32), key.encode() + b"\0" + body, hashlib.sha256).digest() + body
    elif kind == "signed for another key":  # a genuine file of another version or exercise
        other = "0" * len(key)
        data = hmac.new(secret, other.encode() + b"\0" + body, hashlib.sha256).digest() + body
    elif kind == "truncated":
        data = path.read_bytes()[:40]
    elif kind == "a link":
        target = path.parent.parent / "elsewhere.ref"
        target.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(target)
        return
    else:
        raise AssertionError(kind)
    path.write_bytes(data)


@pytest.mark.parametrize(
    "kind",
    [
        "no signature",
        "zero signature",
        "another secret",
        "signed for another key",
        "truncated",
        "a link",
    ],
)
def test_a_forged_reference_is_not_trusted(ch99, lam, tmp_path, kind):
    """A reference planted in the store (as someone with write access to the folder but not the
    secret would) makes 0.5 look right; it must be ignored, recomputed and replaced."""
    folder = tmp_path / "refs"
    store = ReferenceStore(folder)
    prepare_references(ch99, store)
    key = store.key(ch99, lam, library_digest())
    path = store.path(lam, key)
    _forge(kind, path, key, (folder / ".secret").read_bytes())
    lam.prepare.forget()
    before = _computed()
    prepare_references(ch99, ReferenceStore(folder))
    assert _computed() == before + 1, "the forged file was used instead of computing"
    right, wrong = _verdicts(lam)
    assert right is None and wrong is not None, "the judge compares with the forged sweep"
    stored = ReferenceStore(folder).load(lam, key)  # replaced by a genuine one
    assert stored is not None and stored["val"].argmin() == 2
    assert not path.is_symlink()


def test_a_store_that_is_not_ours_is_not_used(ch99, lam, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the folder to another user")
    folder = tmp_path / "refs"
    folder.mkdir(mode=0o777)
    os.chown(folder, 65534, 65534)
    before = _computed()
    prepare_references(ch99, ReferenceStore(folder))
    assert _computed() == before + 1 and _verdicts(lam)[0] is None
    assert list(folder.iterdir()) == []  # neither a secret nor a reference was written there


def test_a_linked_store_folder_is_not_used(ch99, lam, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "refs").symlink_to(real)
    prepare_references(ch99, ReferenceStore(tmp_path / "refs"))
    assert lam.prepare.ready and list(real.iterdir()) == []


def test_loose_permissions_are_tightened_and_a_readable_secret_replaced(ch99, lam, tmp_path):
    folder = tmp_path / "refs"
    store = ReferenceStore(folder)
    prepare_references(ch99, store)
    key = store.key(ch99, lam, library_digest())
    old_secret = (folder / ".secret").read_bytes()
    os.chmod(folder, 0o777)
    os.chmod(folder / ".secret", 0o644)  # anyone could have read it: files signed with it are void
    fresh = ReferenceStore(folder)
    assert fresh.load(lam, key) is None
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / ".secret").stat().st_mode) == 0o600
    assert (folder / ".secret").read_bytes() != old_secret


def test_the_key_follows_what_the_reference_depends_on(ch99, lam, tmp_path):
    store = ReferenceStore(tmp_path / "refs")
    key = store.key(ch99, lam, "library-1")
    assert store.key(ch99, lam, "library-1") == key
    assert store.key(ch99, lam, "library-2") != key  # library copy, Python, JAX
    other = next(e for e in ch99.exercises if e.id == "99.l2_penalty")
    assert store.key(ch99, other, "library-1") != key
    source = ch99.source_path.read_bytes()
    try:
        ch99.source_path.write_bytes(source + b" ")  # the instructor edits the chapter
        assert store.key(ch99, lam, "library-1") != key
    finally:
        ch99.source_path.write_bytes(source)


def test_precomputed_results_are_plain_read_only_arrays():
    ref = lx.precomputed(lambda: {"a": [1.0, 2.0]})
    assert ref()["a"].flags.writeable is False
    with pytest.raises(ValueError, match="must hold numbers"):
        lx.precomputed(lambda: {"a": np.array(["x"])})()
    with pytest.raises(ValueError, match="identifiers"):
        lx.plain_arrays({"a b": np.ones(2)})
    with pytest.raises(ValueError, match="dict of arrays"):
        lx.plain_arrays([np.ones(2)])


def test_every_chapter_reference_is_storable():
    """Every ``Exercise.prepare`` of the course is a ``Precomputed`` (so the store covers it and
    warm grading stays fast); a plain function would be recomputed by every grading run."""
    import pkgutil

    import lessonlib.exercises as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"lessonlib.exercises.{info.name}")
        for ex in getattr(module, "EXERCISES", []):
            assert ex.prepare is None or isinstance(ex.prepare, lx.Precomputed), ex.id


# --------------------------------------------------------------------------- the trusted compile cache

_TRUSTED_CHILD = """
import json, os, stat
import jax, jax.numpy as jnp
from lessonlib.grading.references import enable_trusted_compile_cache
folder = enable_trusted_compile_cache()
import lessonlib.demos  # a chapter's module turning the course cache on must leave it alone
x = jax.jit(lambda a: jnp.tanh(a) * 3.0 + a.sum())(jnp.arange(5.0))  # compiles in milliseconds
print(json.dumps({"folder": str(folder), "dir": jax.config.jax_compilation_cache_dir,
                  "mode": stat.S_IMODE(os.stat(folder).st_mode), "x": [float(v) for v in x]}))
"""


def _trusted_child(cache_root):
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _TRUSTED_CHILD],
        env={**os.environ, "LESSONLIB_CACHE": str(cache_root), "LESSONLIB_COMPILE_CACHE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_trusted_compile_cache_keeps_even_quick_programs_in_a_private_folder(tmp_path):
    from lessonlib.grading.references import enable_trusted_compile_cache

    first = _trusted_child(tmp_path)
    folder = tmp_path / "grader-trusted-xla"
    assert first["folder"] == first["dir"] == str(folder)
    assert first["mode"] == 0o700  # owner-only: nobody else can plant a program there
    entries = {p.name for p in folder.iterdir() if p.is_file()}
    assert entries, "a program that compiles in milliseconds was not kept"
    assert not (tmp_path / "xla").exists()  # the course's cache (learners' kernels) is not used
    second = _trusted_child(tmp_path)
    assert second["x"] == first["x"]
    assert {p.name for p in folder.iterdir() if p.is_file()} == entries  # loaded, not added again
    # a folder that is a link, or not a folder, is never used (and JAX is left alone)
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    assert enable_trusted_compile_cache(tmp_path / "linked") is None
    (tmp_path / "file").write_bytes(b"")
    assert enable_trusted_compile_cache(tmp_path / "file") is None


def test_rehearsed_judges_compile_nothing_when_judging():
    """After ``prepare_judges`` (it runs while the sandbox does), judging chapter 02's cases builds
    no JAX program: the judges' imports and programs were made in the background."""
    import jax

    from lessonlib.grading.course import ROOT, Chapter
    from lessonlib.grading.grader import rehearse_judges

    chapter = Chapter(ROOT, "02_dropout")
    jax.clear_caches()
    compiled, listening = [], [False]

    def listen(event: str, secs: float, **kwargs) -> None:
        if listening[0] and event == "/jax/core/compile/backend_compile_duration":
            compiled.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listen)
    rehearse_judges(chapter)
    outcomes = {
        (ex.id, i): lx.expected_outcome(ex, case)
        for ex in chapter.exercises
        if ex.reference is not None
        for i, case in enumerate(ex.cases + ex.hidden)
    }
    judged = [ex for ex in chapter.exercises if ex.judge is not None and ex.reference is not None]
    assert {ex.name for ex in judged} >= {"dropout", "mc_predict"}
    listening[0] = True
    try:
        for ex in judged:
            for i, case in enumerate(ex.cases + ex.hidden):
                lx.judge_case(ex, case, outcomes[(ex.id, i)])
    finally:
        listening[0] = False
    assert compiled == [], f"{len(compiled)} programs compiled while judging"


# --------------------------------------------------------------------------- the released notebook


def test_the_released_notebook_is_stored_signed_and_recomputed_when_forged(ch99, tmp_path):
    """The tamper check's released version is made once (nbgrader), then read back; a changed
    file (it decides which cells count as locked) is not trusted."""
    from lessonlib.grading.course import Chapter
    from lessonlib.workspace import student_version

    store = ReferenceStore(tmp_path / "refs")
    made = store.released(ch99)
    assert made == student_version(ch99.source)
    (path,) = (tmp_path / "refs").glob("*-released-*.ipynb.signed")
    assert store.released(ch99) == made
    assert Chapter(ch99.root, ch99.name).student == student_version(ch99.source)

    body = path.read_bytes()
    forged = body.replace(b'"locked": true', b'"locked": false')
    assert forged != body
    path.write_bytes(forged)
    assert store.released(ch99) == made  # the forged file fails its signature: made again
    assert path.read_bytes() == body


_RELEASED_CHILD = """
import sys
from pathlib import Path
from lessonlib.grading.course import ROOT, Chapter
from lessonlib.grading.references import ReferenceStore
nb = ReferenceStore(Path(sys.argv[1])).released(Chapter(ROOT, "02_dropout"))
print(len(nb.cells), "nbgrader" in sys.modules)
"""


def test_a_stored_released_notebook_is_read_without_importing_nbgrader(tmp_path):
    import subprocess
    import sys

    def child() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", _RELEASED_CHILD, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()

    first, second = child(), child()
    assert first[1] == "True" and second == [first[0], "False"]


def test_an_entry_cut_short_is_dropped_before_jax_reads_it(tmp_path):
    """JAX writes a compile-cache entry in place: a process stopped mid-write leaves an empty
    file that JAX would warn about on every run and never replace."""
    from lessonlib.grading.references import enable_trusted_compile_cache

    folder = tmp_path / "trusted"
    folder.mkdir(mode=0o700)
    (folder / "jit_stage-0-cache").write_bytes(b"")
    (folder / "jit_stage-1-cache").write_bytes(b"\x78\x9c program")
    enable_trusted_compile_cache(folder)  # configured or not (this process has a cache already)
    assert sorted(p.name for p in folder.iterdir()) == ["jit_stage-1-cache"]
