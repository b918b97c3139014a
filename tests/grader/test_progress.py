"""``lessonlib progress``: every chapter of the course with the learner's best score, attempts,
open exercises and last attempt's date, from the attempt log ``lessonlib grade`` writes (text and
JSON), without ever writing to it."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest

from lessonlib import exercises as lx
from lessonlib.grading.cli import main
from lessonlib.grading.course import ROOT, chapters
from lessonlib.grading.gradebook import log_attempt
from lessonlib.grading.grader import ExerciseResult
from lessonlib.grading.progress import chapter_exercises, progress

CHAPTER = "01_weight_decay"


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--course", str(ROOT), *args])
    return code, out.getvalue(), err.getvalue()


def _rows(passed: set[str], points: dict[str, float]) -> list[ExerciseResult]:
    return [
        ExerciseResult(ex, "pass" if ex in passed else "fail", p if ex in passed else 0.0, p, "")
        for ex, p in points.items()
    ]


@pytest.fixture
def log(tmp_path):
    """A workspace log with two attempts at chapter 01: the first passes exercise 1, the second
    (worse on exercise 1) passes exercise 2; the others stay open."""
    if CHAPTER not in chapters(ROOT):
        pytest.skip("chapter 01 is not in this course")
    points = {ex.id: float(ex.points) for ex in lx.chapter_exercises("01")}
    first, second, *rest = points
    path = tmp_path / "workspace" / ".grades.sqlite"
    path.parent.mkdir()
    assert log_attempt(path, CHAPTER, _rows({first}, points)) == 1
    time.sleep(0.01)
    assert log_attempt(path, CHAPTER, _rows({second}, points)) == 2
    return path, points, first, second, rest


def test_every_chapter_with_best_attempts_open_and_date(log):
    path, points, first, second, rest = log
    rows = {r["chapter"]: r for r in progress(ROOT, path)}
    assert list(rows) == chapters(ROOT)  # every chapter, in order, attempted or not
    r = rows[CHAPTER]
    assert r["best"] == points[first] + points[second]  # each exercise's best attempt
    assert r["max_points"] == sum(points.values()) and r["exercises"] == len(points)
    assert r["attempts"] == 2 and r["open"] == rest
    last = time.time()
    assert abs(time.mktime(time.strptime(r["last_attempt"][:19], "%Y-%m-%dT%H:%M:%S")) - last) < 60
    for name, other in rows.items():
        if name != CHAPTER:
            ids, max_points = chapter_exercises(ROOT, name)
            assert other["best"] is None and other["attempts"] == 0
            assert other["open"] == ids and other["max_points"] == max_points


def test_text_and_json(log):
    path, points, first, second, rest = log
    ws = str(path.parent)
    before = path.read_bytes()
    code, out, err = _run("progress", "--workspace", ws)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["chapter", "best", "attempts", "open", "last", "attempt"]
    for name in chapters(ROOT):
        assert any(line.startswith(name) for line in lines), name
    (row,) = [line for line in lines if line.startswith(CHAPTER)]
    best = points[first] + points[second]
    assert f"{best:g}/{sum(points.values()):g}" in row and " 2 " in row
    assert rest[0] in row and first not in row and second not in row
    assert time.strftime("%Y-%m-%d") in row
    assert f"1 of {len(chapters(ROOT))} chapters attempted" in out
    code, out, _ = _run("progress", "--workspace", ws, "--json")
    assert code == 0 and json.loads(out) == progress(ROOT, path)
    assert path.read_bytes() == before  # read only


def test_nothing_graded_yet(tmp_path):
    code, out, _ = _run("progress", "--workspace", str(tmp_path / "ws"), "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == len(chapters(ROOT))
    assert all(r["attempts"] == 0 and r["best"] is None and r["last_attempt"] is None for r in rows)
    code, out, _ = _run("progress", "--workspace", str(tmp_path / "ws"))
    assert code == 0 and "0 of" in out and "lessonlib grade 01" in out
    assert not (tmp_path / "ws").exists()  # progress creates nothing


def test_an_empty_or_broken_log(tmp_path):
    empty = tmp_path / "empty" / ".grades.sqlite"
    empty.parent.mkdir()
    sqlite3.connect(empty).close()  # a database without the attempts table
    code, out, _ = _run("progress", "--workspace", str(empty.parent), "--json")
    assert code == 0 and all(r["attempts"] == 0 for r in json.loads(out))
    broken = tmp_path / "broken" / ".grades.sqlite"
    broken.parent.mkdir()
    broken.write_bytes(b"not a database at all" * 100)
    code, _, err = _run("progress", "--workspace", str(broken.parent))
    assert code == 2 and "cannot read the attempt log" in err


def test_a_renamed_chapter_keeps_its_history(tmp_path):
    if CHAPTER not in chapters(ROOT):
        pytest.skip("chapter 01 is not in this course")
    ids, _ = chapter_exercises(ROOT, CHAPTER)
    path = tmp_path / ".grades.sqlite"
    log_attempt(path, "01_old_title", [ExerciseResult(ids[0], "pass", 1.0, 1.0, "")])
    log_attempt(path, CHAPTER, [ExerciseResult("01.removed_exercise", "pass", 5.0, 5.0, "")])
    (row,) = [r for r in progress(ROOT, path) if r["chapter"] == CHAPTER]
    assert row["attempts"] == 2 and ids[0] not in row["open"]
    assert row["best"] == 1.0  # an exercise the chapter no longer has does not count
