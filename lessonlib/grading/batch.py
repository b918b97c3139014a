"""Class autograding: every submission of a chapter, in parallel sandboxes, into the gradebook.

Submissions follow nbgrader's layout ``<submissions>/<student>/<NN_topic>/<NN_topic>.ipynb``.
Each finished submission is recorded (one gradebook commit) and its results written to
``course/autograded/<student>/<NN_topic>/results.json`` before the next is recorded, so an
interrupted batch keeps everything already graded, and a re-run replaces the same rows.
"""

from __future__ import annotations

import html
import json
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from lessonlib.cache import atomic_write

from .course import AUTOGRADED_DIR, FEEDBACK_DIR, Chapter, UsageError, is_test_cell, nbgrader_meta
from .gradebook import ensure_assignment, open_gradebook, record
from .grader import (
    ExerciseResult,
    error_rows,
    grade_notebook,
    prepare_references,
    read_submission,
    warm_compile_cache,
)
from .sandbox import Limits, Sandbox


def submitted_notebook(submissions: Path, student: str, chapter: Chapter) -> Path:
    return submissions / student / chapter.name / f"{chapter.notebook_name}.ipynb"


def students_in(submissions: Path, chapter: Chapter) -> list[str]:
    """Student folders that hold a submission of ``chapter``."""
    if not submissions.is_dir():
        raise UsageError(f"no submissions folder {submissions}")
    return sorted(
        d.name for d in submissions.iterdir() if d.is_dir() and (d / chapter.name).is_dir()
    )


def _write_json(path: Path, data: object) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1))


def grade_one(chapter: Chapter, path: Path, sandbox: Sandbox, *, mode: str) -> list[ExerciseResult]:
    try:
        nb = read_submission(path)
    except UsageError as e:
        return error_rows(chapter, str(e))
    return grade_notebook(chapter, nb, sandbox, mode=mode)


def autograde(
    chapter: Chapter,
    submissions: Path,
    *,
    db_url: str,
    jobs: int = 1,
    limits: Limits | None = None,
    mode: str = "answers",
    out_root: Path | None = None,
    on_done: Callable[[str, list[ExerciseResult]], None] | None = None,
    compile_cache: Path | None = None,
) -> dict[str, list[ExerciseResult]]:
    """Grade every student's submission; returns student -> rows (also recorded).

    With ``compile_cache`` (the command line passes ``default_compile_cache()``), the chapter's
    solutions are graded once first to fill it (``warm_compile_cache``), then every submission
    starts from a private copy."""
    if jobs < 1 or jobs > 64:
        raise UsageError(f"--jobs must be in [1, 64], got {jobs}")
    students = students_in(submissions, chapter)
    _ = chapter.student, chapter.exercises, chapter.test_cells  # load once, before the threads
    out_root = out_root or chapter.root
    gb = open_gradebook(db_url)
    hide = [chapter.root, submissions, out_root]
    if db_url.startswith("sqlite:///"):
        hide.append(Path(db_url[len("sqlite:///") :]).parent)
    results: dict[str, list[ExerciseResult]] = {}
    try:
        ensure_assignment(gb, chapter)
        with (
            Sandbox(limits=limits, hide=hide, compile_cache=compile_cache) as sandbox,
            ThreadPoolExecutor(jobs) as pool,
        ):
            if students:
                references = threading.Thread(
                    target=prepare_references, args=(chapter,), daemon=True
                )
                references.start()  # on one core, while the other warms the compile cache
                warm_compile_cache(chapter, sandbox)
            futures = {
                pool.submit(
                    grade_one,
                    chapter,
                    submitted_notebook(submissions, s, chapter),
                    sandbox,
                    mode=mode,
                ): s
                for s in students
            }
            for fut in as_completed(futures):
                student = futures[fut]
                rows = fut.result()
                record(gb, chapter, student, rows)
                folder = out_root / AUTOGRADED_DIR / student / chapter.name
                _write_json(folder / "results.json", [r.as_dict() for r in rows])
                src = submitted_notebook(submissions, student, chapter)
                if src.is_file():
                    shutil.copyfile(src, folder / src.name)
                results[student] = rows
                if on_done:
                    on_done(student, rows)
    finally:
        gb.close()
    return results


# --------------------------------------------------------------------------- feedback

_CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.pass{color:#186a1d}.fail,.error,
.timeout,.tampered{color:#a11}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"""


def feedback_html(chapter: Chapter, student: str, rows: list[dict], nb_path: Path | None) -> str:
    """A feedback page: the score table with hints, then the learner's cells. Test cells are shown
    as released (visible checks only); hidden tests never appear."""
    esc = html.escape
    total = sum(r["points"] for r in rows)
    possible = sum(r["max_points"] for r in rows)
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{esc(chapter.name)} feedback: {esc(student)}</title>",
        f"<style>{_CSS}</style><h1>{esc(chapter.name)}: {total:g} / {possible:g}</h1>",
        f"<p>Student: {esc(student)}</p><table><tr><th>exercise</th><th>points</th>"
        "<th>status</th><th>hint</th></tr>",
    ]
    for r in rows:
        parts.append(
            f"<tr><td>{esc(r['exercise'])}</td><td>{r['points']:g}/{r['max_points']:g}</td>"
            f"<td class={esc(r['status'])}>{esc(r['status'])}</td><td>{esc(r['hint'])}</td></tr>"
        )
    parts.append("</table><h2>Your notebook</h2>")
    released = {
        nbgrader_meta(c).get("grade_id"): c.source for c in chapter.student.cells if is_test_cell(c)
    }
    if nb_path is not None and nb_path.is_file():
        try:
            nb = read_submission(nb_path)
        except UsageError as e:
            parts.append(f"<p>{esc(str(e))}</p>")
        else:
            for cell in nb.cells:
                gid = nbgrader_meta(cell).get("grade_id")
                source = str(cell.get("source", ""))
                if is_test_cell(cell) or gid in released:
                    source = released.get(gid, "(test cell)")
                if "BEGIN HIDDEN TESTS" in source:
                    source = source.split("### BEGIN HIDDEN TESTS")[0]
                tag = "pre" if cell.get("cell_type") == "code" else "div"
                parts.append(f"<{tag}>{esc(source)}</{tag}>")
    return "\n".join(parts) + "\n"


def write_feedback(chapter: Chapter, out_root: Path | None = None) -> list[Path]:
    """``course/feedback/<student>/<NN_topic>/<NN_topic>.html`` for every autograded student."""
    out_root = out_root or chapter.root
    written = []
    for results in sorted((out_root / AUTOGRADED_DIR).glob(f"*/{chapter.name}/results.json")):
        student = results.parent.parent.name
        rows = json.loads(results.read_text(encoding="utf-8"))
        page = feedback_html(
            chapter, student, rows, results.parent / f"{chapter.notebook_name}.ipynb"
        )
        dest = out_root / FEEDBACK_DIR / student / chapter.name / f"{chapter.notebook_name}.html"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page, encoding="utf-8")
        written.append(dest)
    return written
