"""The ``lessonlib`` command line: release, grade, autograde, feedback, export.

    lessonlib release [CHAPTER]                      student versions into release/NN_topic/
    lessonlib grade CHAPTER|PATH.ipynb [--json]      grade your workspace notebook
    lessonlib autograde CHAPTER --submissions DIR [--jobs N] [--db URL] [--json]
    lessonlib feedback CHAPTER                       HTML feedback per student
    lessonlib export FILE.csv [--db URL]             every grade as CSV

Exit status: 0 whenever the command ran (whatever the grades), 2 for usage errors and unreadable
notebooks, with a message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from lessonlib.cache import atomic_write

from .course import (
    RELEASE_DIR,
    ROOT,
    SUBMITTED_DIR,
    UsageError,
    chapter_of_notebook,
    chapters,
    default_db_url,
    resolve_chapter,
)
from .sandbox import Limits


def _limits(args: argparse.Namespace) -> Limits:
    try:
        return Limits(
            cell_timeout=args.cell_timeout,
            exercise_timeout=args.exercise_timeout,
            notebook_timeout=args.notebook_timeout,
            memory_mb=args.memory_mb,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


def _add_limits(p: argparse.ArgumentParser) -> None:
    d = Limits()
    p.add_argument("--cell-timeout", type=float, default=d.cell_timeout, help="seconds per cell")
    p.add_argument(
        "--exercise-timeout", type=float, default=d.exercise_timeout, help="seconds per exercise"
    )
    p.add_argument(
        "--notebook-timeout", type=float, default=d.notebook_timeout, help="seconds per notebook"
    )
    p.add_argument("--memory-mb", type=int, default=d.memory_mb, help="address-space limit")
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="compile every submission's programs from scratch (default: reuse the programs "
        "compiled for the chapter's solutions, kept in $LESSONLIB_CACHE/grader-xla)",
    )
    p.add_argument(
        "--cells",
        choices=("answers", "all"),
        default="answers",
        help="run only answer cells + definitions (default) or every non-test cell",
    )


def _compile_cache(args: argparse.Namespace) -> Path | None:
    from .sandbox import default_compile_cache

    return None if args.no_compile_cache else default_compile_cache()


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append(
            "  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands


def cmd_release(args: argparse.Namespace) -> int:
    import nbformat
    from nbgrader.preprocessors import ComputeChecksums

    from lessonlib.workspace import course_files, student_version

    root = Path(args.course)
    names = [resolve_chapter(args.chapter, root).name] if args.chapter else chapters(root)
    out = Path(args.out) if args.out else root / RELEASE_DIR
    workspace = (root / "workspace").resolve()
    if out.resolve() == workspace or out.resolve().is_relative_to(workspace):
        raise UsageError(f"--out {out} is inside the learners' workspace; choose another folder")
    for name in names:
        ch = resolve_chapter(name, root)
        nb, _ = ComputeChecksums().preprocess(student_version(ch.source), {})
        dest = out / name / f"{name}.ipynb"
        with atomic_write(dest, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        print(f"released {dest}")
    # what the chapters link to (../sources.md, ../assets/figures/...), next to them as in make lab
    for rel, src in course_files(root).items():
        with atomic_write(out / rel) as f:
            f.write(src.read_bytes())
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from .gradebook import attempts_path, best_scores, log_attempt
    from .grader import grade_notebook, prepare_references, read_submission, warm_compile_cache
    from .sandbox import Sandbox

    root = Path(args.course)
    target = args.target
    if target.endswith(".ipynb"):
        path = Path(target)
        chapter = chapter_of_notebook(path, root)
    else:
        chapter = resolve_chapter(target, root)
        path = Path(args.workspace or root / "workspace") / chapter.name / f"{chapter.name}.ipynb"
    nb = read_submission(path)  # UsageError (exit 2) if missing or unreadable
    cache = _compile_cache(args)
    with Sandbox(limits=_limits(args), hide=[root, path.parent], compile_cache=cache) as sandbox:
        references = threading.Thread(target=prepare_references, args=(chapter,), daemon=True)
        references.start()  # the trusted answers, computed while the sandbox runs
        warm_compile_cache(chapter, sandbox)  # once per chapter and version; then grades are faster
        rows = grade_notebook(chapter, nb, sandbox, mode=args.cells)
    log = attempts_path(path)
    best_before = best_scores(log, chapter.name)
    try:
        attempt = log_attempt(log, chapter.name, rows)
    except OSError as e:  # a read-only workspace must not stop the learner from seeing grades
        attempt = None
        print(f"note: attempt not logged ({e})", file=sys.stderr)
    data = [
        {
            "exercise": r.exercise,
            "status": r.status,
            "points": r.points,
            "max_points": r.max_points,
            "hint": r.hint,
        }
        for r in rows
    ]
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    table = [
        {
            "exercise": d["exercise"],
            "points": f"{d['points']:g}/{d['max_points']:g}",
            "status": d["status"],
            "best": f"{max(d['points'], best_before.get(d['exercise'], 0.0)):g}",
            "hint": d["hint"][:160],
        }
        for d in data
    ]
    print(_table(table, ["exercise", "points", "status", "best", "hint"]))
    total = sum(d["points"] for d in data)
    possible = sum(d["max_points"] for d in data)
    print(
        f"\n{chapter.name}: {total:g} / {possible:g} points"
        + (f" (attempt {attempt})" if attempt else "")
    )
    return 0


def cmd_autograde(args: argparse.Namespace) -> int:
    from .batch import autograde

    root = Path(args.course)
    chapter = resolve_chapter(args.chapter, root)
    submissions = Path(args.submissions or root / SUBMITTED_DIR)
    db = args.db or default_db_url(root)
    limits = _limits(args)

    def progress(student: str, rows: list) -> None:
        if not args.json:
            total = sum(r.points for r in rows)
            possible = sum(r.max_points for r in rows)
            print(f"{student}: {total:g} / {possible:g}", flush=True)

    results = autograde(
        chapter,
        submissions,
        db_url=db,
        jobs=args.jobs,
        limits=limits,
        mode=args.cells,
        on_done=progress,
        compile_cache=_compile_cache(args),
    )
    if args.json:
        out = [
            {
                "student": s,
                "exercise": r.exercise,
                "status": r.status,
                "points": r.points,
                "max_points": r.max_points,
            }
            for s in sorted(results)
            for r in results[s]
        ]
        print(json.dumps(out, indent=1))
    else:
        print(f"graded {len(results)} submission(s) of {chapter.name} into {db.split('@')[-1]}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from .batch import write_feedback

    root = Path(args.course)
    chapter = resolve_chapter(args.chapter, root)
    written = write_feedback(chapter)
    if args.json:
        print(json.dumps([str(p) for p in written]))
    else:
        for p in written:
            print(f"wrote {p}")
        if not written:
            print(f"no autograded submissions of {chapter.name} yet (run `lessonlib autograde`)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .gradebook import export_csv, open_gradebook

    root = Path(args.course)
    path = Path(args.file)
    if path.suffix.lower() != ".csv":
        raise UsageError(f"export FILE must end in .csv, got {args.file!r}")
    gb = open_gradebook(args.db or default_db_url(root))
    try:
        n = export_csv(gb, path)
    finally:
        gb.close()
    if args.json:
        print(json.dumps({"file": str(path), "rows": n}))
    else:
        print(f"wrote {n} grade(s) to {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lessonlib", description=__doc__.split("\n")[0])
    p.add_argument("--course", default=str(ROOT), help="course folder (holds notebooks/)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("release", help="write student versions into release/")
    r.add_argument("chapter", nargs="?", help="chapter number or name (default: all)")
    r.add_argument("--out", help="release folder (default: release/)")
    r.set_defaults(func=cmd_release)

    g = sub.add_parser("grade", help="grade your workspace notebook")
    g.add_argument("target", metavar="CHAPTER|PATH.ipynb")
    g.add_argument("--workspace", help="workspace folder (default: workspace/)")
    g.add_argument("--json", action="store_true", help="print a JSON list")
    _add_limits(g)
    g.set_defaults(func=cmd_grade)

    a = sub.add_parser("autograde", help="grade every submission of a chapter")
    a.add_argument("chapter")
    a.add_argument(
        "--submissions", help=f"submitted/<student>/<chapter>/ (default: {SUBMITTED_DIR})"
    )
    a.add_argument("--jobs", type=int, default=1, help="parallel sandboxes (default 1)")
    a.add_argument("--db", help="gradebook URL (default: sqlite in course/)")
    a.add_argument("--json", action="store_true")
    _add_limits(a)
    a.set_defaults(func=cmd_autograde)

    f = sub.add_parser("feedback", help="HTML feedback for every autograded student")
    f.add_argument("chapter")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_feedback)

    e = sub.add_parser("export", help="export the gradebook as CSV")
    e.add_argument("file", metavar="FILE.csv")
    e.add_argument("--db", help="gradebook URL (default: sqlite in course/)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"lessonlib {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
