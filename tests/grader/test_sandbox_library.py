"""The library copy the sandbox imports: every subpackage (``demos/``, future ones) goes in, the
exercise specs (hidden cases, references) and the grader stay out; its digest sees every file."""

from __future__ import annotations

import shutil

import pytest

from lessonlib import exercises as lx
from lessonlib.grading import sandbox as sb
from lessonlib.grading import worker
from lessonlib.grading.sandbox import Limits, Sandbox

from .conftest import TEST_LIMITS


def test_runtime_files_carry_demos_but_no_specs_or_grader():
    files = sb._runtime_files()
    demos = {f"lessonlib/demos/{p.name}" for p in (sb.PACKAGE / "demos").glob("*.py")}
    assert "lessonlib/demos/__init__.py" in demos and len(demos) > 1
    assert demos <= set(files)
    assert "lessonlib/exercises/__init__.py" in files  # the spec format, as before
    assert not [f for f in files if f.startswith("lessonlib/exercises/") and "__init__" not in f]
    assert not [f for f in files if f.startswith("lessonlib/grading/")]
    assert {"lessonlib/__init__.py", "lessonlib/train.py", "lessonlib/viz.py"} <= set(files)
    assert "_lessonlib_worker.py" in files


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of lessonlib/ the sandbox module reads instead of the real one."""
    copy = tmp_path / "lessonlib"
    shutil.copytree(sb.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sb, "PACKAGE", copy)
    return copy


def test_future_subpackages_go_in_private_ones_stay_out(package_copy):
    (package_copy / "extra").mkdir()
    (package_copy / "extra" / "__init__.py").write_text("X = 1\n")
    (package_copy / "exercises" / "ch42.py").write_text("SECRET = 1\n")
    (package_copy / "demos" / ".#ch01_weight_decay.py").write_text("editor lock file\n")
    files = sb._runtime_files()
    assert "lessonlib/extra/__init__.py" in files
    assert "lessonlib/exercises/ch42.py" not in files
    assert not any("/.#" in f for f in files)


def test_digest_changes_with_a_demo_module(package_copy):
    with Sandbox(limits=Limits(**TEST_LIMITS), mode="process") as box:
        before = box.runtime_digest()
        assert box.runtime_digest() == before
        demo = package_copy / "demos" / "ch01_weight_decay.py"
        demo.write_text(demo.read_text() + "\n# edited\n")
        assert box.runtime_digest() != before


def test_a_notebook_can_import_demos_but_not_specs_in_the_sandbox():
    cell = (
        "import importlib.util\n"
        "from lessonlib.demos import ch06_optimizers\n"
        "SEEN = {\n"
        "    'demo': float(ch06_optimizers.quadratic(ch06_optimizers.jnp.ones(2))),\n"
        "    'spec': importlib.util.find_spec('lessonlib.exercises.ch01') is not None,\n"
        "    'grader': importlib.util.find_spec('lessonlib.grading') is not None,\n"
        "}\n"
    )
    case = {"args": worker.encode((), {}), "kwargs": worker.encode({}, {}), "probe": None}
    job = {
        "cells": [{"label": "0", "source": cell}],
        "exercises": {
            "e0": {"id": "t.seen", "name": "SEEN", "kind": "value", "probes": [], "cases": [case]}
        },
        "probe_source": "",
    }
    with Sandbox(limits=Limits(**TEST_LIMITS)) as box:
        result = box.run_job(job, {})
    assert result.cell_errors == {}, result.stderr_tail
    unit = result.exercises["e0"]
    assert unit.status == "ok", unit.message
    seen = worker.decode(unit.outcomes[0]["value"], unit.arrays, key_type=lx.Key)
    assert seen == {"demo": 0.5 * (4.0 + 400.0), "spec": False, "grader": False}
