"""A sandbox process started before its job is built (``Sandbox.start_early``): it imports JAX,
waits for the job, and then grades exactly as a process started for the job does, crashes and
relaunches included; one that is never used is killed with the sandbox."""

from __future__ import annotations

import time

from lessonlib.grading.grader import grade_notebook
from lessonlib.grading.sandbox import Sandbox

from .conftest import correct_submission, set_answer

RELU, L2 = "ch99-ex-relu", "ch99-ex-l2"


def _grades(rows):
    return [(r.exercise, r.status, r.points) for r in rows]


def test_an_early_process_grades_like_one_started_for_the_job(ch99, limits, tmp_path):
    right = correct_submission(ch99)
    crashing = set_answer(right, RELU, "import os\nos._exit(3)\n")  # kills launch 1 mid-cells
    wrong = set_answer(right, L2, "def l2_penalty(w, lam):\n    return lam * (w**2).sum()\n")
    results = []
    for nb in (right, crashing, wrong):
        with Sandbox(limits=limits, compile_cache=tmp_path / "cache") as box:
            assert box.start_early()
            early = grade_notebook(ch99, nb, box)
            assert box._early is None  # used by that job, not kept for another
        with Sandbox(limits=limits, compile_cache=tmp_path / "cache") as box:
            plain = grade_notebook(ch99, nb, box)
        assert _grades(early) == _grades(plain)
        results.append({r.exercise: r.status for r in early})
    assert set(results[0].values()) == {"pass"}
    assert results[1]["99.scaled_relu"] == "error" and results[1]["99.l2_penalty"] == "pass"
    assert results[2]["99.l2_penalty"] == "fail" and results[2]["99.scaled_relu"] == "pass"


def test_the_early_process_waits_for_its_job_and_an_unused_one_is_killed(limits):
    with Sandbox(limits=limits) as box:
        assert box.start_early()
        scratch, proc, _ = box._early
        deadline = time.monotonic() + limits.startup_timeout
        while not (scratch / "out-1" / "started.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, "it must wait for its job, not exit"
        assert not (scratch / "out-1" / "ready.json").exists()  # no job yet: nothing ran
    assert proc.poll() is not None
    assert not scratch.exists()


def test_a_sandbox_that_cannot_start_reports_it_at_the_job(limits, monkeypatch):
    """start_early never raises: the job's launch meets the same failure and names it."""
    import pytest

    from lessonlib.grading.sandbox import SandboxError

    with Sandbox(limits=limits, mode="process") as box:
        box.python = "/nonexistent/python"
        assert not box.start_early()
        job = {"cells": [], "exercises": {"e0": {}}, "probe_source": ""}
        with pytest.raises(SandboxError, match="nonexistent"):
            box.run_job(job, {})
