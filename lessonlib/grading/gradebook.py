"""Where grades are kept: nbgrader's gradebook for the class, a small attempt log for a learner.

The class gradebook is ``nbgrader.api.Gradebook`` (SQLite in the course folder by default, any
SQLAlchemy URL such as ``postgresql://user@host/db`` for several graders), so nbgrader's formgrader
and exports read what we write. Each test cell is a grade cell (``grade_id``, ``max_score``); a
submission's auto scores are written and committed in one transaction per submission, so a crash
mid-batch loses nothing already recorded and a re-run overwrites the same rows (idempotent).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from lessonlib.cache import atomic_write

from .course import Chapter
from .grader import ExerciseResult


def open_gradebook(db_url: str):
    """An nbgrader Gradebook; a SQLite file gets its folder created, readable by its owner only."""
    from nbgrader.api import Gradebook

    _alembic_on_path()
    db_url = _driver(db_url)
    if db_url.startswith("sqlite:///"):
        path = Path(db_url[len("sqlite:///") :])
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            os.chmod(path.parent, 0o700)
        existed = path.exists()
        gb = Gradebook(db_url)
        if not existed:
            os.chmod(path, 0o600)
        return gb
    return Gradebook(db_url)


def _driver(db_url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 when only it is installed."""
    import importlib.util

    if db_url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        return "postgresql+psycopg2://" + db_url[len("postgresql://") :]
    return db_url


def _alembic_on_path() -> None:
    """nbgrader runs the ``alembic`` command when it creates a gradebook: make the virtual
    environment's bin/ (where it is installed) reachable even when the venv is not activated."""
    import shutil
    import sys

    if shutil.which("alembic") is None:
        bindir = str(Path(sys.executable).parent)
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@contextlib.contextmanager
def setup_lock(db_url: str) -> Iterator[None]:
    """Hold the gradebook's set-up lock: concurrent graders (shards of one class, on one machine or
    many) create the tables, the course and the assignment one at a time, instead of racing to
    insert the same rows. PostgreSQL: an advisory lock; SQLite: a lock file next to the database."""
    url = _driver(db_url)
    if url.startswith("sqlite:///"):
        import fcntl

        path = Path(url[len("sqlite:///") :])
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            os.chmod(path.parent, 0o700)
        fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
    elif url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as con:
                con.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
                try:
                    yield
                finally:
                    con.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
        finally:
            engine.dispose()
    else:
        yield


_ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"lessonlib gradebook set-up").digest()[:7], "big")


def open_for_grading(db_url: str, chapter: Chapter):
    """The gradebook, created if needed, with ``chapter`` as an assignment (under ``setup_lock``)."""
    with setup_lock(db_url):
        gb = open_gradebook(db_url)
        try:
            ensure_assignment(gb, chapter)
        except BaseException:
            gb.close()
            raise
    return gb


def ensure_assignment(gb, chapter: Chapter) -> None:
    """The chapter as an nbgrader assignment with one notebook and one grade cell per test cell."""
    gb.update_or_create_assignment(chapter.name)
    gb.update_or_create_notebook(chapter.notebook_name, chapter.name)
    for gid, points in chapter.test_points.items():
        gb.update_or_create_grade_cell(
            gid, chapter.notebook_name, chapter.name, max_score=points, cell_type="code"
        )


def record(gb, chapter: Chapter, student: str, rows: list[ExerciseResult], tries: int = 4) -> None:
    """Write one student's auto scores (one commit). Tampered cells flag the notebook for review.

    A conflict with a concurrent writer (the same student graded twice at once, a locked SQLite
    file) is rolled back and tried again: the second try finds the rows the other one made."""
    from nbgrader.api import InvalidEntry
    from sqlalchemy.exc import DBAPIError

    for attempt in range(tries):
        try:
            return _record(gb, chapter, student, rows)
        except (InvalidEntry, DBAPIError):
            gb.db.rollback()
            if attempt == tries - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def _record(gb, chapter: Chapter, student: str, rows: list[ExerciseResult]) -> None:
    import warnings

    from nbgrader.api import MissingEntry

    gb.update_or_create_student(student)
    with warnings.catch_warnings():  # nbgrader's autoflush warns about its own relationship set-up
        warnings.simplefilter("ignore")
        gb.update_or_create_submission(chapter.name, student)
    scores: dict[str, float] = {}
    for row in rows:
        if row.grade_id in chapter.test_points:
            scores[row.grade_id] = scores.get(row.grade_id, 0.0) + row.points
    for gid, score in scores.items():
        try:
            grade = gb.find_grade(gid, chapter.notebook_name, chapter.name, student)
        except MissingEntry:
            continue
        grade.auto_score = min(max(score, 0.0), chapter.test_points[gid])
        grade.manual_score = None
    nb = gb.find_submission_notebook(chapter.notebook_name, chapter.name, student)
    nb.flagged = any(r.status == "tampered" for r in rows)
    gb.db.commit()


def recorded_scores(gb, chapter: Chapter, student: str) -> dict[str, float | None]:
    """grade_id -> auto score stored for ``student`` (for tests and exports)."""
    out = {}
    for gid in chapter.test_points:
        out[gid] = gb.find_grade(gid, chapter.notebook_name, chapter.name, student).auto_score
    return out


def export_csv(gb, path: Path) -> int:
    """Every grade in the gradebook as CSV rows: student, assignment, notebook, grade cell, score,
    max score, flagged. Returns the number of rows written (the file is replaced atomically)."""
    rows = []
    for assignment in gb.assignments:
        for submission in assignment.submissions:
            for nb in submission.notebooks:
                for grade in nb.grades:
                    rows.append(
                        [
                            submission.student.id,
                            assignment.name,
                            nb.name,
                            grade.name,
                            "" if grade.score is None else f"{grade.score:g}",
                            f"{grade.max_score:g}",
                            int(bool(nb.flagged)),
                        ]
                    )
    rows.sort()
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["student", "assignment", "notebook", "grade_cell", "score", "max_score", "flagged"]
        )
        w.writerows(rows)
    return len(rows)


# --------------------------------------------------------------------------- learner's log


def attempts_path(notebook: Path) -> Path:
    """The learner's attempt log, next to their workspace chapters: ``workspace/.grades.sqlite``."""
    return notebook.resolve().parent.parent / ".grades.sqlite"


def log_attempt(db: Path, chapter: str, rows: Iterable[ExerciseResult]) -> int:
    """Append one attempt; returns its number (1 for the first attempt at this chapter)."""
    con = sqlite3.connect(db)
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS attempts (attempt INTEGER, time REAL, chapter TEXT, "
            "exercise TEXT, status TEXT, points REAL, max_points REAL, hint TEXT)"
        )
        (n,) = con.execute(
            "SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE chapter = ?", (chapter,)
        ).fetchone()
        now = time.time()
        con.executemany(
            "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(n, now, chapter, r.exercise, r.status, r.points, r.max_points, r.hint) for r in rows],
        )
        con.commit()
        return n
    finally:
        con.close()


def best_scores(db: Path, chapter: str) -> dict[str, float]:
    """exercise -> best points over all attempts at ``chapter``."""
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    try:
        return dict(
            con.execute(
                "SELECT exercise, MAX(points) FROM attempts WHERE chapter = ? GROUP BY exercise",
                (chapter,),
            ).fetchall()
        )
    finally:
        con.close()
