"""The grader's compile cache (filled once from the chapter's solutions) and the worker's lazy
imports: both make a submission faster without changing its grade."""

from __future__ import annotations

import subprocess
import sys

from lessonlib.grading.grader import grade_notebook, warm_compile_cache
from lessonlib.grading.sandbox import Sandbox

from .conftest import correct_submission


def _grades(rows):
    return [(r.exercise, r.status, r.points) for r in rows]


def test_warm_once_then_grade_the_same(ch99, limits, tmp_path):
    cache = tmp_path / "cache"
    nb = correct_submission(ch99)
    with Sandbox(limits=limits, compile_cache=cache) as sandbox:
        assert warm_compile_cache(ch99, sandbox)
        entries = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
        assert entries, "the solutions' programs were not saved"
        assert not warm_compile_cache(ch99, sandbox)  # marker: nothing changed, nothing to do
        cached = grade_notebook(ch99, nb, sandbox)
        # grading reads a private copy: the cache itself is unchanged
        assert {p.name for p in cache.iterdir() if not p.name.startswith(".")} == entries
    with Sandbox(limits=limits) as sandbox:
        plain = grade_notebook(ch99, nb, sandbox)
    assert _grades(cached) == _grades(plain)
    assert all(r.status == "pass" for r in cached)


def test_display_modules_load_on_first_use():
    code = (
        "import sys\n"
        "from lessonlib.grading import worker\n"
        "sys.meta_path.insert(0, worker._LazyFinder())\n"
        "from lessonlib import viz\n"
        "import ipywidgets\n"
        "assert 'matplotlib.figure' not in sys.modules, 'viz loaded eagerly'\n"
        "assert callable(viz.Panel)\n"
        "assert 'matplotlib.figure' in sys.modules\n"
        "assert ipywidgets.IntSlider(value=3).value == 3\n"
        "from scipy import integrate\n"
        "assert 'scipy.integrate._quadpack_py' not in sys.modules, 'integrate loaded eagerly'\n"
        "assert abs(integrate.quad(lambda x: x * x, 0, 1)[0] - 1 / 3) < 1e-12\n"
        "from scipy.integrate import trapezoid\n"
        "assert trapezoid([0.0, 1.0]) == 0.5\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_an_unusable_cache_folder_only_costs_speed(ch99, limits, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with Sandbox(limits=limits, compile_cache=blocker / "cache") as sandbox:
        assert not warm_compile_cache(ch99, sandbox)
        rows = grade_notebook(ch99, correct_submission(ch99), sandbox)
    assert all(r.status == "pass" for r in rows)


def test_a_failing_reference_is_reported_not_raised(ch99):
    """Exercise.prepare runs outside any judge: an error there must not end a batch (the judge
    meets it again and reports it for that exercise)."""
    import dataclasses
    import types

    from lessonlib.grading import grader

    def broken():
        raise RuntimeError("reference crashed")

    ex = dataclasses.replace(ch99.exercises[0], prepare=broken)
    grader.prepare_references(types.SimpleNamespace(exercises=[ex, *ch99.exercises[1:]]))
