"""Rules for every source notebook's graded cells (lessonlib/grading/authoring.py): no test cell
ends in a bare value, writes to stderr or uses widgets; every graded cell has a unique id; test
cells have points equal to the spec's; every check id exists and every exercise is checked."""

from __future__ import annotations

import copy

import nbformat
import pytest

from lessonlib import exercises as lx
from lessonlib.grading.authoring import lint_notebook, unchecked_exercises
from lessonlib.grading.course import ROOT, chapters, is_test_cell, nbgrader_meta

CHAPTERS = chapters(ROOT)


def _nb(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / name / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", CHAPTERS)
def test_source_notebook_follows_the_rules(name):
    assert lint_notebook(_nb(name), name=name) == []


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_exercise_has_a_test_cell(name):
    if not _has_spec(name):
        nb = _nb(name)
        assert not any(is_test_cell(c) for c in nb.cells), f"{name} has test cells but no spec"
        return
    assert unchecked_exercises(_nb(name), name.split("_")[0]) == []


def test_grade_ids_unique_across_the_course():
    seen: dict[str, str] = {}
    for name in CHAPTERS:
        for cell in _nb(name).cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid and is_test_cell(cell):
                assert gid not in seen, f"test cell id {gid!r} in {name} and {seen[gid]}"
                seen[gid] = name


def _has_spec(name: str) -> bool:
    try:
        lx.chapter_exercises(name.split("_")[0])
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("name", CHAPTERS)
def test_checks_write_nothing_to_stderr(name, capfd):
    """The test cells only call check(): run every check with the reference answer (visible and
    hidden cases) and require silence on stderr (nbgrader scores a cell with stderr output 0)."""
    if not _has_spec(name):
        pytest.skip(f"{name} has no exercises")
    for ex in lx.chapter_exercises(name.split("_")[0]):
        if ex.reference is None:
            continue
        try:
            lx.check(ex.id, ex.reference, hidden=True)
        except lx.CheckFailed as e:
            pytest.fail(f"{ex.id}: the spec's own reference fails its check:\n{e}")
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------- the rules can fail


def _fixture_nb():
    from grader.conftest import FIXTURES, build  # registers chapter 99 as a side effect

    src = FIXTURES / "course/notebooks/99_fixture/99_fixture.py"
    return nbformat.reads(build(src), as_version=4)


def _test_cell(nb):
    return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "ch99-test-l2")


def test_fixture_chapter_is_clean():
    assert lint_notebook(_fixture_nb(), name="99") == []
    assert unchecked_exercises(_fixture_nb(), "99") == []


@pytest.mark.parametrize(
    "edit, phrase",
    [
        (lambda c: setattr(c, "source", c.source + "\n1 + 1"), "bare expression"),
        (
            lambda c: setattr(c, "source", c.source + "\nimport sys\nprint('x', file=sys.stderr)"),
            "stderr",
        ),
        (lambda c: setattr(c, "source", c.source + "\nimport ipywidgets"), "widgets"),
        (lambda c: c.metadata.nbgrader.pop("points"), "without points"),
        (lambda c: c.metadata.nbgrader.__setitem__("points", 5), "spec says 2"),
        (lambda c: setattr(c, "source", 'check("99.nope", l2_penalty)'), "no exercise"),
        (
            lambda c: c.metadata.nbgrader.__setitem__("grade_id", "ch99-test-relu"),
            "used by 2 cells",
        ),
    ],
)
def test_rules_catch_violations(edit, phrase):
    nb = copy.deepcopy(_fixture_nb())
    edit(_test_cell(nb))
    problems = lint_notebook(nb, name="99")
    assert any(phrase in p for p in problems), problems
