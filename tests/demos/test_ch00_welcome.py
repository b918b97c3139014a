"""Chapter 00's progress table: its data is ``lessonlib progress``'s, it works before anything
was graded, and *Refresh* reads the log again."""

from __future__ import annotations

import ipywidgets as widgets

from lessonlib.demos import ch00_welcome
from lessonlib.grading.course import ROOT, chapters
from lessonlib.grading.gradebook import log_attempt
from lessonlib.grading.grader import ExerciseResult
from lessonlib.grading.progress import chapter_exercises, progress


def test_data_is_the_commands(tmp_path):
    log = tmp_path / ".grades.sqlite"
    name = chapters(ROOT)[0]
    ids, _ = chapter_exercises(ROOT, name)
    log_attempt(log, name, [ExerciseResult(i, "pass", 1.0, 1.0, "") for i in ids])
    assert ch00_welcome.progress_rows(log) == progress(ROOT, log)


def test_default_log_is_the_workspaces(tmp_path, monkeypatch):
    chapter = tmp_path / "workspace" / "00_welcome"
    chapter.mkdir(parents=True)
    monkeypatch.chdir(chapter)  # where a chapter's kernel runs
    assert ch00_welcome.default_log() == (tmp_path / "workspace" / ".grades.sqlite").resolve()


def test_html_table():
    rows = [
        {"chapter": "01_a<b>", "best": 3.0, "max_points": 3.0, "attempts": 2, "exercises": 1,
         "open": [], "last_attempt": "2026-11-30T10:20:30+00:00"},
        {"chapter": "02_c", "best": None, "max_points": 4.0, "attempts": 0, "exercises": 2,
         "open": ["02.x", "02.y"], "last_attempt": None},
    ]  # fmt: skip
    page = ch00_welcome.progress_html(rows)
    assert "01_a&lt;b&gt;" in page and "<b>" not in page  # names are escaped
    assert "3 / 3" in page and "all passed ✔" in page and "2026-11-30 10:20" in page
    assert "– / 4" in page and "02.x, 02.y" in page
    assert "1 of 2 chapters graded; 3 / 7 points" in page


def test_panel_refreshes_and_survives_a_broken_log(tmp_path):
    log = tmp_path / ".grades.sqlite"
    panel = ch00_welcome.progress_panel(log)  # nothing graded yet: still a table
    button, table = panel.children
    assert isinstance(button, widgets.Button) and isinstance(table, widgets.HTML)
    assert "<table" in table.value and f"0 of {len(chapters(ROOT))} chapters graded" in table.value
    name = chapters(ROOT)[0]
    ids, _ = chapter_exercises(ROOT, name)
    log_attempt(log, name, [ExerciseResult(ids[0], "pass", 1.0, 1.0, "")])
    button.click()
    assert f"1 of {len(chapters(ROOT))} chapters graded" in table.value
    log.write_bytes(b"garbage" * 100)
    button.click()
    assert "Cannot show your progress" in table.value and "attempt log" in table.value
