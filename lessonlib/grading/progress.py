"""A learner's progress: every chapter of the course with their best score, attempts, the
exercises still open and the date of the last attempt (``lessonlib progress``, and the table in
chapter 00).

It reads the attempt log that ``lessonlib grade`` writes next to the workspace's chapters,
``workspace/.grades.sqlite`` (``gradebook.log_attempt``: one row per exercise per attempt), and the
course's source notebooks for the chapters, their exercises and points, so chapters never
attempted are listed too. It imports neither JAX nor nbformat, and it never writes: the table in
chapter 00 refreshes in a second.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from .course import SOURCE_DIR, UsageError, chapters, check_ids, is_test_cell, nbgrader_meta


def chapter_exercises(root: Path, name: str) -> tuple[list[str], float]:
    """The exercise ids a chapter's test cells check, in notebook order, and its points: read as
    plain JSON from ``notebooks/NN_topic/NN_topic.ipynb``."""
    path = root / SOURCE_DIR / name / f"{name}.ipynb"
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read the chapter notebook {path}: {e}") from None
    ids: list[str] = []
    points = 0.0
    for cell in cells:
        if isinstance(cell, dict) and is_test_cell(cell):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            ids += [i for i in check_ids(source) if i not in ids]
            points += float(nbgrader_meta(cell).get("points", 0))
    return ids, points


def progress(root: Path, log: Path) -> list[dict]:
    """One row per chapter of the course (every chapter under ``root/notebooks``, attempted or
    not), from the attempt log ``log`` (read only; a missing log means nothing graded yet).

    Each row: ``chapter``, ``best`` (each exercise's best points over all attempts, summed; None
    when never attempted), ``max_points``, ``attempts``, ``exercises`` (how many), ``open`` (the
    ids of the exercises not passed in any attempt, in notebook order) and ``last_attempt`` (local
    time, ISO 8601, or None). Attempts are matched to chapters by number, so a renamed chapter
    keeps its history; only the chapter's current exercises count."""
    by_number: dict[str, list[tuple]] = {}
    for row in attempt_rows(log):
        by_number.setdefault(str(row[2]).split("_", 1)[0], []).append(row)
    out = []
    for name in chapters(root):
        ids, max_points = chapter_exercises(root, name)
        rows = by_number.get(name.split("_", 1)[0], [])
        best: dict[str, float] = {}
        passed = set()
        for _, _, _, exercise, status, points, possible in rows:
            if exercise in ids:
                best[exercise] = max(best.get(exercise, 0.0), min(points, possible))
                if status == "pass" or points >= possible > 0:
                    passed.add(exercise)
        last = max((r[1] for r in rows), default=None)
        out.append(
            {
                "chapter": name,
                "best": sum(best.values()) if rows else None,
                "max_points": max_points,
                "attempts": len({(r[2], r[0]) for r in rows}),  # (name, number)
                "exercises": len(ids),
                "open": [i for i in ids if i not in passed],
                "last_attempt": None
                if last is None
                else datetime.fromtimestamp(last).astimezone().isoformat(timespec="seconds"),
            }
        )
    return out


def attempt_rows(log: Path) -> list[tuple]:
    """(attempt, time, chapter, exercise, status, points, max_points) of every logged row, read
    without creating or changing the file. UsageError when it is not an attempt log."""
    if not log.is_file():
        return []
    try:
        con = sqlite3.connect(f"{log.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise UsageError(f"cannot read the attempt log {log}: {e}") from None
    try:
        return con.execute(
            "SELECT attempt, time, chapter, exercise, status, points, max_points FROM attempts"
        ).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []  # an empty log
        raise UsageError(f"cannot read the attempt log {log}: {e}") from None
    except sqlite3.DatabaseError as e:  # not a database at all
        raise UsageError(f"cannot read the attempt log {log}: {e}") from None
    finally:
        con.close()
