"""Fast checks of the grader's parts: the plain-data format, limits, tamper detection, cells run."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from lessonlib import exercises as lx
from lessonlib.grading import worker
from lessonlib.grading.grader import (
    _outcome,
    cells_to_run,
    clamp,
    find_tampering,
    judge_unit,
    probe_source,
)
from lessonlib.grading.sandbox import Limits, UnitResult

from .conftest import correct_submission


def test_codec_round_trip():
    arrays = {}
    value = (np.arange(3.0), {"a": [1, 2.5, None, True, "s"]}, lx.Key(4))
    enc = worker.encode(value, arrays, key_type=lx.Key)
    out = worker.decode(enc, arrays, key_type=lx.Key)
    assert np.array_equal(out[0], value[0]) and out[1] == value[1] and out[2] == lx.Key(4)


@pytest.mark.parametrize(
    "bad",
    [{"__nd__": "missing"}, {"x": 1, "y": 2}, {"__key__": 3}, {"__nd__": "obj"}],
)
def test_decode_refuses_non_plain_data(bad):
    arrays = {"obj": np.array(["a", "b"])}
    with pytest.raises(ValueError):
        worker.decode(bad, arrays)


def test_encode_refuses_objects():
    with pytest.raises(TypeError):
        worker.encode(object(), {})
    with pytest.raises(TypeError):
        worker.encode(np.array([object()]), {})


def test_outcome_from_untrusted_data():
    assert _outcome({"value": {"__nd__": "a0"}}, {"a0": np.ones(2)}).error is None
    assert "not plain data" in _outcome({"value": {"__nd__": "zz"}}, {}).error
    assert _outcome("junk", {}).error.startswith("GraderError")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"cell_timeout": 0}, "cell_timeout"),
        ({"memory_mb": 10}, "memory_mb"),
        ({"output_mb": 0}, "output_mb"),
    ],
)
def test_limits_validate(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Limits(**kwargs)


def test_clamp():
    assert (
        clamp(5, 2) == 2
        and clamp(-1, 2) == 0
        and clamp(float("nan"), 2) == 0
        and clamp(1.5, 2) == 1.5
    )


def test_judge_unit_statuses(ch99):
    ex = ch99.exercises[0]
    n = len(ex.cases) + len(ex.hidden)
    assert (
        judge_unit(ex, UnitResult(status="timeout", message="t"), defined_in=None)[0] == "timeout"
    )
    assert judge_unit(ex, UnitResult(outcomes=[]), defined_in=None)[0] == "error"
    wrong = UnitResult(outcomes=[{"value": 123.0}] * n)
    status, hint = judge_unit(ex, wrong, defined_in=None)
    assert status == "fail" and "expected" in hint and "Hint:" in hint


def test_tamper_detection_and_cells(ch99):
    nb = correct_submission(ch99)
    assert find_tampering(ch99, nb) == {}
    cells = cells_to_run(ch99, nb)
    sources = "\n".join(c["source"] for c in cells)
    assert "check(" not in sources  # submitted tests never run
    assert "SCALE = 2.0" in sources and "def l2_penalty" in sources
    assert "demo:" not in sources  # demo code is not re-run, only its definitions
    nb2 = copy.deepcopy(nb)
    for c in nb2.cells:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "ch99-setup":
            c.source = "SCALE = 1.0"
    assert "ch99-setup" in find_tampering(ch99, nb2)
    assert "SCALE = 2.0" in "\n".join(c["source"] for c in cells_to_run(ch99, nb2))


@pytest.mark.parametrize("chapter", ["02", "05", "99"])
def test_probe_source_compiles_for_chapters_with_several_probes(chapter, ch99):
    """Several probes from one spec module: each import once, ``from __future__`` first."""
    src = probe_source(lx.chapter_exercises(chapter))
    namespace: dict = {}
    exec(compile(src, "<probes>", "exec"), namespace)
    for ex in lx.chapter_exercises(chapter):
        for name in ex.probes:
            assert callable(namespace[name])
    assert src.count("from __future__") <= 1


def test_probe_source_has_no_reference(ch99):
    src = probe_source(ch99.exercises)
    assert "def _two_draws" in src and "two_draws = _two_draws" in src
    assert "_l2_reference" not in src and "EXERCISES" not in src and "hidden" not in src
