"""Grade one submitted notebook: tamper check, sandboxed run, trusted verdicts.

1. The submission is read as data (never executed here). Its locked cells (tests, read-only setup)
   are compared with the student version of the source notebook by ``grade_id``: an edited,
   deleted, duplicated, re-typed or metadata-stripped cell makes the exercises it belongs to
   ``tampered`` (the cell is named in the hint). The original cells are used regardless.
2. The cells that run are the learner's answer cells, the source's read-only cells, and from every
   other code cell only its imports and definitions (``def``/``class``), so demos are not re-run.
   Submitted test cells are never executed: the tests come from the exercise specs.
3. :class:`~lessonlib.grading.sandbox.Sandbox` runs them and calls the learner's functions on the
   visible and hidden cases; only plain data comes back.
4. ``judge_case`` (trusted code, this process) gives each case's verdict; an exercise scores its
   points when every case passes, else 0 (clamped to [0, points]).
"""

from __future__ import annotations

import ast
import inspect
import shutil
import textwrap
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from lessonlib import exercises as lx

from . import worker
from .course import (
    Chapter,
    UsageError,
    is_readonly_cell,
    is_solution_cell,
    is_test_cell,
    nbgrader_meta,
    parse,
)
from .references import ReferenceStore, enable_trusted_compile_cache
from .sandbox import MAX_CACHE_BYTES, JobResult, Sandbox, UnitResult, library_digest

# CPython 3.11's parser is not safe in several threads at once ("AST constructor recursion depth
# mismatch"): ast.parse, and compile() of any source, imports and namedtuples included. Jobs are built
# under this lock, and ``prepare_references`` and ``prepare_judges`` (imports) run under it.
_AST_LOCK = threading.RLock()


@dataclass(frozen=True)
class ExerciseResult:
    exercise: str
    status: str  # pass | fail | error | timeout | tampered
    points: float
    max_points: float
    hint: str
    grade_id: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- reading


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a notebook as data; UsageError with a clear message when it cannot be read."""
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise UsageError(f"no notebook at {path}") from None
    except Exception as e:  # invalid JSON, not a notebook, unreadable file
        raise UsageError(f"cannot read notebook {path}: {type(e).__name__}: {e}") from None
    if not isinstance(nb.get("cells"), list):
        raise UsageError(f"cannot read notebook {path}: it has no cells")
    return nb


def _norm(source: Any) -> str:
    if isinstance(source, list):
        source = "".join(source)
    return "\n".join(line.rstrip() for line in str(source).strip().splitlines())


def find_tampering(chapter: Chapter, nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id of each locked cell that was changed -> what was done to it."""
    by_id: dict[str, list[dict]] = {}
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str):
            by_id.setdefault(gid, []).append(cell)
    sources = {_norm(c.get("source", "")) for c in nb.cells if not nbgrader_meta(c)}
    problems: dict[str, str] = {}
    for orig in chapter.student.cells:
        meta = nbgrader_meta(orig)
        if not meta.get("locked"):
            continue
        gid = meta["grade_id"]
        found = by_id.get(gid, [])
        if not found:
            if _norm(orig.source) in sources:
                problems[gid] = f"cell {gid!r} lost its nbgrader metadata"
            else:
                problems[gid] = f"cell {gid!r} was deleted"
            continue
        if len(found) > 1:
            problems[gid] = f"cell {gid!r} appears {len(found)} times"
            continue
        cell = found[0]
        got = nbgrader_meta(cell)
        if cell.get("cell_type") != orig.cell_type:
            problems[gid] = f"cell {gid!r} was changed to a {cell.get('cell_type')} cell"
        elif _norm(cell.get("source", "")) != _norm(orig.source):
            problems[gid] = f"cell {gid!r} was edited"
        elif any(got.get(k) != meta.get(k) for k in ("grade", "solution", "locked", "points")):
            problems[gid] = f"cell {gid!r} had its nbgrader metadata changed"
    return problems


def _definitions_only(source: str) -> str:
    """The imports and ``def``/``class`` statements of a cell (its demo code is not re-run)."""
    try:
        tree = parse(source)
    except SyntaxError:
        return ""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    parts = [ast.get_source_segment(source, n) for n in tree.body if isinstance(n, keep)]
    return "\n".join(p for p in parts if p)


def cells_to_run(
    chapter: Chapter, nb: nbformat.NotebookNode, *, mode: str = "answers"
) -> list[dict]:
    """The code the sandbox executes, in notebook order (see the module docstring).

    ``mode="all"`` runs every non-test code cell in full (for chapters whose answers need the
    demo cells' variables)."""
    if mode not in ("answers", "all"):
        raise ValueError(f"mode must be 'answers' or 'all', got {mode!r}")
    originals = {
        nbgrader_meta(c)["grade_id"]: c
        for c in chapter.source.cells
        if nbgrader_meta(c).get("grade_id")
    }
    out, seen = [], set()
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        orig = originals.get(gid) if isinstance(gid, str) else None
        label = gid if isinstance(gid, str) else f"{i}"
        if is_test_cell(cell) or (orig is not None and is_test_cell(orig)):
            continue  # never execute submitted tests
        if orig is not None and is_readonly_cell(orig):
            if gid in seen:
                continue
            seen.add(gid)
            out.append({"label": label, "source": _norm(orig.source)})
            continue
        source = _norm(cell.get("source", ""))
        if mode == "answers" and not is_solution_cell(cell):
            source = _definitions_only(source)
        if source.strip():
            out.append({"label": label, "source": source})
    # read-only cells the learner deleted still run: they are setup the answers may rely on
    for gid, orig in originals.items():
        if is_readonly_cell(orig) and gid not in seen and orig.cell_type == "code":
            out.insert(0, {"label": gid, "source": _norm(orig.source)})
    return out


# --------------------------------------------------------------------------- probes


def probe_source(exercises: list[lx.Exercise]) -> str:
    """Source of the probe functions the exercises use, with the module-level imports and helpers
    they need, and nothing else of the spec module (no references, no hidden cases)."""
    chunks, done, imports_seen = [], set(), []
    for ex in exercises:
        for name, fn in ex.probes.items():
            module = inspect.getmodule(fn)
            if module is None:
                raise ValueError(f"probe {name!r} of {ex.id} has no module")
            tree = parse(inspect.getsource(module))
            src = inspect.getsource(module)
            top = {}
            imports = []
            for node in tree.body:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    imports.append(ast.get_source_segment(src, node))
                elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                    top[node.name] = node
                elif isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            top[t.id] = node
            needed, todo = [], [fn.__name__]
            while todo:
                n = todo.pop()
                if n in needed or n not in top:
                    continue
                needed.append(n)
                for sub in ast.walk(top[n]):
                    if isinstance(sub, ast.Name) and sub.id in top:
                        todo.append(sub.id)
            for n in reversed(needed):
                node = top[n]
                key = (module.__name__, node.lineno)
                if key not in done:
                    done.add(key)
                    chunks.append(ast.get_source_segment(src, node))
            imports_seen += [i for i in imports if i and i not in imports_seen]
            if fn.__name__ != name:
                chunks.append(f"{name} = {fn.__name__}")
    # Each import once; ``from __future__`` must come first (several probes, or several
    # exercises with probes, would otherwise repeat it below other imports: a SyntaxError).
    imports_seen.sort(key=lambda line: not line.startswith("from __future__"))
    chunks.insert(0, "\n".join(imports_seen))
    return textwrap.dedent("\n\n".join(c for c in chunks if c))


# --------------------------------------------------------------------------- grading


def build_job(
    chapter: Chapter, nb: nbformat.NotebookNode, *, mode: str = "answers"
) -> tuple[dict, dict[str, np.ndarray], dict[str, lx.Exercise]]:
    with _AST_LOCK:
        return _build_job(chapter, nb, mode=mode)


def _build_job(chapter, nb, *, mode):
    arrays: dict[str, np.ndarray] = {}
    exercises, keys = {}, {}
    for k, ex in enumerate(chapter.exercises):
        key = f"e{k}"
        keys[key] = ex
        cases = []
        for case in ex.cases + ex.hidden:
            cases.append(
                {
                    "args": worker.encode(tuple(case.args), arrays, key_type=lx.Key),
                    "kwargs": worker.encode(dict(case.kwargs), arrays, key_type=lx.Key),
                    "probe": case.probe,
                }
            )
        exercises[key] = {
            "id": ex.id,
            "name": ex.name,
            "kind": ex.kind,
            "probes": sorted(ex.probes),
            "cases": cases,
        }
    job = {
        "cells": cells_to_run(chapter, nb, mode=mode),
        "exercises": exercises,
        "probe_source": probe_source(chapter.exercises),
    }
    return job, arrays, keys


def _outcome(raw: Any, arrays: dict) -> lx.Outcome:
    if not isinstance(raw, dict):
        return lx.Outcome(error="GraderError: malformed result")
    if isinstance(raw.get("error"), str):
        return lx.Outcome(error=raw["error"][:500])
    try:
        return lx.Outcome(value=worker.decode(raw.get("value"), arrays))
    except (ValueError, TypeError) as e:
        return lx.Outcome(error=f"TypeError: result is not plain data ({e})")


def judge_unit(
    ex: lx.Exercise, unit: UnitResult | None, *, defined_in: str | None
) -> tuple[str, str]:
    """(status, hint) for one exercise from what the sandbox returned."""
    if unit is None:
        return "error", "the grader got no result for this exercise"
    if unit.status != "ok":
        return unit.status, f"{ex.name}: {unit.message}"
    cases = ex.cases + ex.hidden
    outcomes = unit.outcomes or []
    if len(outcomes) != len(cases):
        return "error", "the sandbox returned the wrong number of results"
    for i, (case, raw) in enumerate(zip(cases, outcomes, strict=True)):
        outcome = _outcome(raw, unit.arrays)
        try:
            why = lx.judge_case(ex, case, outcome)
        except Exception as e:  # a judge must not crash the batch on strange data
            why = f"could not judge the result ({type(e).__name__}: {e})"
        if why is None:
            continue
        where = (
            f"visible case{f' ({case.note})' if case.note else ''}"
            if i < len(ex.cases)
            else "hidden case"
        )
        status = "error" if outcome.error is not None else "fail"
        msg = f"{where}: {why}"
        if outcome.error and outcome.error.startswith("NameError") and defined_in:
            msg += f" (its cell raised {defined_in})"
        elif outcome.error and outcome.error.startswith("NameError"):
            msg += f" (define {ex.name} in its answer cell)"
        if ex.hint and not outcome.error:
            msg += f". Hint: {ex.hint}"
        return status, msg
    return "pass", ""


def grade_notebook(
    chapter: Chapter,
    nb: nbformat.NotebookNode,
    sandbox: Sandbox,
    *,
    mode: str = "answers",
    job: tuple | None = None,
) -> list[ExerciseResult]:
    """Grade a submission already read with :func:`read_submission` (``job``: its
    :func:`build_job`, when the caller built it already)."""
    job, arrays, keys = job or build_job(chapter, nb, mode=mode)
    result: JobResult = sandbox.run_job(job, arrays)
    tampering = find_tampering(chapter, nb)  # after the run: prepare_judges may have done the work
    prepare_references(chapter)
    cell_errs = {job["cells"][i]["label"]: e for i, e in result.cell_errors.items()}
    first_err = next(iter(cell_errs.items()), None)
    rows = []
    for key, ex in keys.items():
        gid = chapter.cell_of(ex.id)
        defined_in = f"{first_err[1]} in cell {first_err[0]}" if first_err else None
        status, hint = judge_unit(ex, result.exercises.get(key), defined_in=defined_in)
        points = clamp(ex.points if status == "pass" else 0.0, ex.points)
        if gid in tampering:
            hint = f"{tampering[gid]}; graded with the original tests ({status}: {hint or 'all cases passed'})"
            status = "tampered"
        rows.append(
            ExerciseResult(ex.id, status, points, float(ex.points), hint.replace("\n", " "), gid)
        )
    for gid, what in tampering.items():
        if gid not in chapter.test_cells:
            rows.append(
                ExerciseResult(gid, "tampered", 0.0, 0.0, f"{what}; the original was used", gid)
            )
    return rows


def warm_compile_cache(
    chapter: Chapter, sandbox: Sandbox, *, on_start: Callable[[], None] | None = None
) -> bool:
    """Fill the sandbox's compile cache by grading the chapter's own solutions once (trusted).

    A correct answer calls the same library code on the same shapes as the solution, so its
    sandbox loads those compiled XLA programs instead of compiling them again: a chapter-01
    submission takes about 4.5 s instead of 11 s on one core. Only the instructor's source notebook
    runs with write access. A marker named after the chapter and ``Sandbox.runtime_digest`` skips
    the run until the notebook, the library, JAX or the environment change. Returns whether it ran.
    ``on_start`` is called once the job is built, before the run (e.g. to start ``prepare_judges``
    in a thread only then: see ``_AST_LOCK``).
    """
    cache = sandbox.compile_cache
    marker = sandbox.warm_marker(chapter.name, chapter.source_path.read_bytes())
    if cache is None or marker is None or marker.exists():
        return False
    try:
        if cache.is_dir() and sum(p.stat().st_size for p in cache.iterdir()) > MAX_CACHE_BYTES:
            shutil.rmtree(cache)  # old versions' programs pile up; start again
        cache.mkdir(parents=True, exist_ok=True)
        (cache / ".writable").touch()
    except OSError:  # no writable cache folder: grade without one, compiling as before
        sandbox.compile_cache = None
        return False
    job, arrays, _ = build_job(chapter, chapter.source)
    if on_start is not None:
        on_start()
    sandbox.run_job(job, arrays, save_cache=True)  # callers compute the references meanwhile
    marker.touch()
    return True


_PREPARE_LOCK = threading.Lock()


def prepare_references(chapter: Chapter, store: ReferenceStore | None = None) -> None:
    """Compute what the judges compare with (``Exercise.prepare``, e.g. chapter 01's lambda sweep),
    or load it from ``store`` (see references.py), where a computed result is then kept.

    ``grade_notebook`` calls it before judging; calling it earlier, in a background thread while a
    sandbox runs, takes it off the critical path. Concurrent calls wait for the first one. It
    holds ``_AST_LOCK`` (computing a reference imports and compiles): build jobs first."""
    with _AST_LOCK, _PREPARE_LOCK:
        library = None
        for ex in chapter.exercises:
            prep = ex.prepare
            if prep is None:
                continue
            try:
                if isinstance(prep, lx.Precomputed) and store is not None:
                    library = library or library_digest()
                    key = store.key(chapter, ex, library)
                    stored = store.load(ex, key)
                    if stored is None:  # also a result already in memory: keep it for next time
                        store.save(ex, key, prep())
                    elif not prep.ready:
                        prep.load(stored)
                elif not (isinstance(prep, lx.Precomputed) and prep.ready):
                    prep()
            except Exception:  # the judge meets the same error and reports it per exercise
                pass


def prepare_judges(
    chapter: Chapter, store: ReferenceStore | None = None, *, compile_cache: bool = False
) -> None:
    """Everything judging needs, ahead of time (run it in a thread while the sandbox works): with
    ``compile_cache``, the trusted compile cache (``references.enable_trusted_compile_cache``);
    the references (``prepare_references``), the released notebook and ``rehearse_judges``.

    It holds ``_AST_LOCK`` (its imports compile Python): build the submission's job first."""
    with _AST_LOCK:
        if compile_cache:
            enable_trusted_compile_cache()
        prepare_references(chapter, store)
        _ = chapter.student  # the released version, for the tamper check (stored: references.py)
        rehearse_judges(chapter)


def rehearse_judges(chapter: Chapter) -> None:
    """Judge each case once with the reference's own outcome (trusted code only, results unused).

    The judges' first calls import what they use (scipy.stats for chapter 05's distribution test)
    and build the JAX programs of the reference and of the plausible wrong answers they compare
    with; done here, in the background while the sandbox runs, the judging that follows the
    sandbox only pays for the calls themselves (warm ``lessonlib grade 02``: 1.6 s less)."""
    for ex in chapter.exercises:
        if ex.reference is None:
            continue
        for case in ex.cases + ex.hidden:
            try:
                lx.judge_case(ex, case, lx.expected_outcome(ex, case))
            except Exception:  # the real judging meets the same error and reports it
                pass


def clamp(points: float, max_points: float) -> float:
    """A score within [0, max_points], whatever was computed."""
    if not np.isfinite(points):
        return 0.0
    return float(min(max(points, 0.0), max_points))


def error_rows(chapter: Chapter, message: str) -> list[ExerciseResult]:
    """Rows for a submission that could not be graded at all (unreadable notebook)."""
    return [
        ExerciseResult(ex.id, "error", 0.0, float(ex.points), message, chapter.cell_of(ex.id))
        for ex in chapter.exercises
    ]
