"""Class autograding: every submission of a chapter, in parallel sandboxes, into the gradebook.

Submissions follow nbgrader's layout ``<submissions>/<student>/<NN_topic>/<NN_topic>.ipynb``.
Each finished submission is recorded (one gradebook commit) and its results written to
``course/autograded/<student>/<NN_topic>/results.json`` before the next is recorded, so an
interrupted batch keeps everything already graded, and a re-run replaces the same rows.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from lessonlib.cache import atomic_write

from .course import AUTOGRADED_DIR, FEEDBACK_DIR, Chapter, UsageError, is_test_cell, nbgrader_meta
from .gradebook import open_for_grading, record
from .grader import (
    ExerciseResult,
    error_rows,
    grade_notebook,
    prepare_references,
    read_submission,
    warm_compile_cache,
)
from .references import ReferenceStore
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


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)``, 0-based like ``SLURM_ARRAY_TASK_ID`` and ``JOB_COMPLETION_INDEX``.

    >>> parse_shard("0/4"), parse_shard("3/4")
    ((0, 4), (3, 4))
    >>> parse_shard("4/4")
    Traceback (most recent call last):
    ...
    lessonlib.grading.course.UsageError: --shard must be i/N with 0 <= i < N (0-based, like SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX), got '4/4'
    """
    i, sep, n = text.strip().partition("/")
    ok = sep and i.isdigit() and n.isdigit() and 1 <= int(n) <= MAX_SHARDS and int(i) < int(n)
    if not ok:
        raise UsageError(
            "--shard must be i/N with 0 <= i < N (0-based, like SLURM_ARRAY_TASK_ID and "
            f"JOB_COMPLETION_INDEX), got {text!r}"
            + (f"; N is at most {MAX_SHARDS}" if n.isdigit() and int(n) > MAX_SHARDS else "")
        )
    return int(i), int(n)


MAX_SHARDS = 100_000


def shard_of(student: str, shards: int) -> int:
    """The shard (0-based) that grades ``student``: a stable hash of the student id, so every
    machine agrees without talking to the others, and adding a student moves no one else.

    >>> shard_of("alice", 4), shard_of("alice", 1)
    (3, 0)
    """
    digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _write_json(path: Path, data: object) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1))


def grade_one(chapter: Chapter, path: Path, sandbox: Sandbox, *, mode: str) -> list[ExerciseResult]:
    """One submission's rows; SandboxError when the sandbox itself failed (nothing to record)."""
    try:
        nb = read_submission(path)
    except UsageError as e:
        return error_rows(chapter, str(e))
    return grade_notebook(chapter, nb, sandbox, mode=mode)


@dataclass
class BatchResult:
    """What one ``autograde`` run did: ``graded`` (recorded), ``ungraded`` (the sandbox or the
    grader failed for them: nothing recorded, run again), ``others`` (other shards' students)."""

    graded: dict[str, list[ExerciseResult]] = field(default_factory=dict)
    ungraded: dict[str, str] = field(default_factory=dict)
    others: int = 0


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
    on_error: Callable[[str, str], None] | None = None,
    compile_cache: Path | None = None,
    references: ReferenceStore | None = None,
    shard: tuple[int, int] = (0, 1),
    isolation: str | None = None,
) -> BatchResult:
    """Grade every student's submission (of ``shard`` ``(i, N)``: those with ``shard_of == i``).

    Before the first submission the sandbox is started once, by the compile-cache warm-up (the
    chapter's own solutions) or else with nothing to grade (``Sandbox.check``): when it cannot
    start, SandboxError is raised before the gradebook is even opened. A submission whose sandbox fails later for reasons of its own (not the learner's
    code) is reported to ``on_error`` and left ungraded: it is never recorded as a 0.

    With ``compile_cache`` (the command line passes ``default_compile_cache()``), the chapter's
    solutions are graded once first to fill it (``warm_compile_cache``), then every submission
    starts from a private copy. ``references`` keeps the judges' references between runs."""
    if jobs < 1 or jobs > 64:
        raise UsageError(f"--jobs must be in [1, 64], got {jobs}")
    index, shards = shard
    everyone = students_in(submissions, chapter)
    students = [s for s in everyone if shard_of(s, shards) == index]
    result = BatchResult(others=len(everyone) - len(students))
    _ = chapter.student, chapter.exercises, chapter.test_cells  # load once, before the threads
    out_root = out_root or chapter.root
    hide = [chapter.root, submissions, out_root]
    if db_url.startswith("sqlite:///"):
        hide.append(Path(db_url[len("sqlite:///") :]).parent)
    with (
        Sandbox(limits=limits, hide=hide, compile_cache=compile_cache, mode=isolation) as sandbox,
        ThreadPoolExecutor(jobs) as pool,
    ):
        if not students:
            return result
        references_ready = threading.Thread(
            target=prepare_references, args=(chapter, references), daemon=True
        )
        # The references compute on one core while the other warms the compile cache; they hold
        # the parser lock (grader._AST_LOCK), so they start once the warm-up's job is built.
        # The preflight (SandboxError: nothing graded, nothing written): the warm-up's first start
        # when it runs (trusted solutions, JAX imported), else a start with nothing to grade.
        if not warm_compile_cache(chapter, sandbox, on_start=references_ready.start):
            references_ready.start()
            sandbox.check(imports=True)
        gb = open_for_grading(db_url, chapter)
        try:
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
                try:
                    rows = fut.result()
                except Exception as e:  # the sandbox or the grader failed, not the learner
                    result.ungraded[student] = f"{type(e).__name__}: {e}"
                    if on_error:
                        on_error(student, result.ungraded[student])
                    continue
                record(gb, chapter, student, rows)
                folder = out_root / AUTOGRADED_DIR / student / chapter.name
                _write_json(folder / "results.json", [r.as_dict() for r in rows])
                src = submitted_notebook(submissions, student, chapter)
                if src.is_file():
                    shutil.copyfile(src, folder / src.name)
                result.graded[student] = rows
                if on_done:
                    on_done(student, rows)
        finally:
            gb.close()
    return result


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
