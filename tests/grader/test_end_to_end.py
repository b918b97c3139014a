"""End to end, as learners and instructors use it: `lessonlib grade` on a workspace notebook and
`lessonlib autograde` on a class, against SQLite and a real PostgreSQL server (chapter 01 once it
exists, else the test chapter)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import nbformat
import pytest

from lessonlib.grading.batch import autograde, write_feedback
from lessonlib.grading.cli import main
from lessonlib.grading.gradebook import open_gradebook, recorded_scores
from lessonlib.grading.sandbox import Limits

from .conftest import TEST_LIMITS, correct_submission, limit_args, set_answer, write_submission


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def wrong_submission(chapter):
    """The correct submission with the first exercise's answer replaced by a wrong one."""
    nb = correct_submission(chapter)
    first = chapter.exercises[0]
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and f"def {first.name}(" in cell.source:
            head = cell.source.split("):", 1)[0] + "):"
            return set_answer(nb, meta["grade_id"], head + "\n    return 0.123\n"), first.id
    raise AssertionError(f"no answer cell defines {first.name}")


@pytest.fixture(scope="module")
def class_submissions(e2e_chapter, tmp_path_factory):
    subs = tmp_path_factory.mktemp("class") / "submitted"
    write_submission(subs, "alice", e2e_chapter, correct_submission(e2e_chapter))
    nb, wrong_id = wrong_submission(e2e_chapter)
    write_submission(subs, "bob", e2e_chapter, nb)
    return subs, wrong_id


def _check_class(rows: list[dict], wrong_id: str) -> None:
    alice = [r for r in rows if r["student"] == "alice"]
    bob = {r["exercise"]: r for r in rows if r["student"] == "bob"}
    assert alice and all(r["status"] == "pass" and r["points"] == r["max_points"] for r in alice)
    assert bob[wrong_id]["status"] == "fail" and bob[wrong_id]["points"] == 0
    assert sum(r["points"] for r in bob.values()) < sum(r["points"] for r in alice)


def test_autograde_records_and_reruns_idempotently(
    e2e_chapter, class_submissions, db_url, tmp_path
):
    subs, wrong_id = class_submissions
    args = ["--course", str(e2e_chapter.root), "autograde", e2e_chapter.number, "--submissions"]
    args += [str(subs), "--jobs", "2", "--db", db_url, "--json", *limit_args()]
    code, out, _ = _run(*args)
    assert code == 0
    rows = json.loads(out)
    assert set(rows[0]) == {"student", "exercise", "status", "points", "max_points"}
    _check_class(rows, wrong_id)
    gb = open_gradebook(db_url)
    try:
        first = {s: recorded_scores(gb, e2e_chapter, s) for s in ("alice", "bob")}
    finally:
        gb.close()
    assert sum(first["alice"].values()) == sum(e2e_chapter.test_points.values())
    assert sum(first["bob"].values()) < sum(first["alice"].values())
    # a second run gives the same gradebook rows, not new ones
    code, out2, _ = _run(*args)
    assert code == 0 and json.loads(out2) == rows
    csv_path = tmp_path / "grades.csv"
    assert _run("--course", str(e2e_chapter.root), "export", str(csv_path), "--db", db_url)[0] == 0
    exported = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    assert len(exported) == 2 * len(e2e_chapter.test_points)
    assert {r["student"] for r in exported} == {"alice", "bob"}


def test_crash_mid_batch_keeps_recorded_grades(e2e_chapter, class_submissions, tmp_path):
    subs, _ = class_submissions
    db = f"sqlite:///{tmp_path / 'gb.db'}"
    done = []

    def crash(student, rows):
        done.append(student)
        raise RuntimeError("grader killed")

    with pytest.raises(RuntimeError):
        autograde(
            e2e_chapter,
            subs,
            db_url=db,
            jobs=1,
            limits=Limits(**TEST_LIMITS),
            on_done=crash,
            out_root=tmp_path,
        )
    gb = open_gradebook(db)
    try:
        kept = recorded_scores(gb, e2e_chapter, done[0])
    finally:
        gb.close()
    assert all(v is not None for v in kept.values())


def test_learner_grade_never_touches_the_notebook(e2e_chapter, tmp_path):
    ws = tmp_path / "workspace"
    path = ws / e2e_chapter.name / f"{e2e_chapter.name}.ipynb"
    path.parent.mkdir(parents=True)
    nb, wrong_id = wrong_submission(e2e_chapter)
    nbformat.write(nb, path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    base = ["--course", str(e2e_chapter.root), "grade"]
    code, out, _ = _run(*base, e2e_chapter.number, "--workspace", str(ws), "--json", *limit_args())
    assert code == 0
    rows = {r["exercise"]: r for r in json.loads(out)}
    assert set(next(iter(rows.values()))) == {"exercise", "status", "points", "max_points", "hint"}
    assert rows[wrong_id]["status"] == "fail" and rows[wrong_id]["hint"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    # the table form, by path, second attempt
    nbformat.write(correct_submission(e2e_chapter), path)
    code, out, _ = _run(*base, str(path), *limit_args())
    assert code == 0 and "attempt 2" in out
    total = sum(e2e_chapter.test_points.values())
    assert f"{total:g} / {total:g} points" in out
    for status in ("pass",):
        assert status in out


def test_usage_errors(e2e_chapter, tmp_path):
    base = ["--course", str(e2e_chapter.root)]
    code, _, err = _run(*base, "grade", "77")
    assert code == 2 and "no chapter '77'" in err
    bad = tmp_path / f"{e2e_chapter.name}.ipynb"
    bad.write_text("{not json")
    code, _, err = _run(*base, "grade", str(bad))
    assert code == 2 and "cannot read notebook" in err
    code, _, err = _run(*base, "grade", e2e_chapter.number, "--workspace", str(tmp_path / "none"))
    assert code == 2 and "no notebook at" in err
    code, _, err = _run(
        *base, "autograde", e2e_chapter.number, "--submissions", str(tmp_path), "--jobs", "0"
    )
    assert code == 2 and "--jobs" in err
    code, _, err = _run(*base, "export", str(tmp_path / "x.txt"))
    assert code == 2 and ".csv" in err


def test_feedback_has_no_hidden_tests(ch99, tmp_path):
    subs = tmp_path / "submitted"
    write_submission(subs, "carol", ch99, correct_submission(ch99))
    out_root = tmp_path / "out"
    autograde(
        ch99,
        subs,
        db_url=f"sqlite:///{tmp_path / 'gb.db'}",
        limits=Limits(**TEST_LIMITS),
        out_root=out_root,
    )
    pages = write_feedback(ch99, out_root)
    assert len(pages) == 1
    page = pages[0].read_text()
    assert "carol" in page and "6 / 6" in page and "99.l2_penalty" in page
    assert "HIDDEN" not in page and "hidden=True" not in page
