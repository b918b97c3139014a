"""The ``lessonlib`` command line: release, grade, progress, autograde, feedback, export.

    lessonlib release [CHAPTER]                      student versions into release/NN_topic/
    lessonlib grade CHAPTER|PATH.ipynb [--json]      grade your workspace notebook
    lessonlib progress [--json]                      your best score, attempts and open exercises
    lessonlib autograde CHAPTER --submissions DIR [--jobs N] [--db URL] [--shard i/N] [--json]
    lessonlib feedback CHAPTER                       HTML feedback per student
    lessonlib export FILE.csv [--db URL]             every grade as CSV

Exit status: 0 whenever the command ran (whatever the grades), 2 for usage errors and unreadable
notebooks, 3 when the grading sandbox does not work here (nothing was graded or recorded) or some
submissions could not be graded for the sandbox's own reasons (they were left ungraded: run the
command again), with a message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
from pathlib import Path

# nbformat validates notebooks with jsonschema, which builds a grammar for RFC 3987 IRIs at import
# when the optional ``rfc3987_syntax`` is installed (a JupyterLab dependency): about 2.5 s of CPU
# on every command, for a string format no notebook schema uses. Marking it absent skips that.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from lessonlib.cache import atomic_write  # noqa: E402

from .course import (  # noqa: E402
    RELEASE_DIR,
    ROOT,
    SUBMITTED_DIR,
    UsageError,
    chapter_of_notebook,
    chapters,
    default_db_url,
    resolve_chapter,
)
from .sandbox import ISOLATION_MODES, Limits, SandboxError  # noqa: E402


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
        "--isolation",
        choices=("auto", *ISOLATION_MODES),
        default="auto",
        help="how the learner's code is isolated (default: the strongest this machine allows; "
        "see docs/instructors.md, 'Threat model')",
    )
    p.add_argument(
        "--cells",
        choices=("answers", "all"),
        default="answers",
        help="run only answer cells + definitions (default) or every non-test cell",
    )


def _isolation(args: argparse.Namespace) -> str | None:
    import os

    if args.isolation == "auto":
        return None
    if args.isolation.startswith("root") and os.geteuid() != 0:
        raise UsageError(
            f"--isolation {args.isolation} needs root; as a normal user use "
            "user-namespaces or process"
        )
    return args.isolation


def _sandbox_help(e: SandboxError) -> str:
    """What a learner or an instructor reads when the sandbox cannot start: the step, the error and
    what to do about it."""
    return "\n".join(
        [
            "the grading sandbox does not work on this machine, so nothing was graded and "
            "nothing was recorded.",
            f"  isolation:    {e.mode}",
            f"  failing step: {e.step}",
            f"  error:        {e.detail}",
            "What you can do:",
            "  - grade with a weaker isolation: --isolation process (a plain child process with "
            "your own permissions: fine for your own notebooks, not for a class; see "
            "docs/instructors.md, 'Threat model'), or as root --isolation root (runs as nobody, "
            "no namespaces);",
            "  - or let the sandbox use Linux namespaces: on a host, `sudo unshare --mount --net "
            "--pid --fork --mount-proc true` must work (as a normal user: user namespaces "
            "enabled, sysctl user.max_user_namespaces > 0); in a container, run it with "
            "--cap-add SYS_ADMIN and a seccomp/AppArmor profile that allows mount and unshare "
            "(docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined), "
            "and with setuid/setgid allowed so the code can run as nobody.",
        ]
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
    from .sandbox import Sandbox

    root = Path(args.course)
    target = args.target
    if target.endswith(".ipynb"):
        path = Path(target)
        chapter = chapter_of_notebook(path, root)
    else:
        chapter = resolve_chapter(target, root)
        path = Path(args.workspace or root / "workspace") / chapter.name / f"{chapter.name}.ipynb"
    if not path.exists():  # read_submission says so too, but before any sandbox starts
        raise UsageError(f"no notebook at {path}")
    cache, limits, isolation = _compile_cache(args), _limits(args), _isolation(args)
    hide = [root, path.parent]
    with Sandbox(limits=limits, hide=hide, compile_cache=cache, mode=isolation) as sandbox:
        marker = sandbox.warm_marker(chapter.name, chapter.source_path.read_bytes())
        if marker is None or marker.exists():  # else the solutions run first, filling the cache
            sandbox.start_early()  # Python and JAX start there while this process reads and builds
        from .gradebook import attempts_path, best_scores, log_attempt
        from .grader import (
            build_job,
            grade_notebook,
            prepare_judges,
            read_submission,
            warm_compile_cache,
        )
        from .references import ReferenceStore

        nb = read_submission(path)  # UsageError (exit 2) if unreadable
        job = build_job(chapter, nb, mode=args.cells)  # before the judges' thread (_AST_LOCK)
        judges = threading.Thread(  # the trusted answers, loaded or computed while the sandbox runs
            target=prepare_judges,
            args=(chapter, ReferenceStore()),
            kwargs={"compile_cache": cache is not None},
            daemon=True,
        )
        # once per chapter and version (then grades are faster). The preflight: its first start,
        # or else the submission's own first start (its imports come before any learner code), or
        # a start with nothing to grade, raises SandboxError (exit 3) before anything is logged
        if not warm_compile_cache(chapter, sandbox, on_start=judges.start):
            judges.start()
            if not chapter.exercises:
                sandbox.check()
        rows = grade_notebook(chapter, nb, sandbox, mode=args.cells, job=job)
        judges.join()  # usually done already; exiting under it could cut a compile-cache write short
    log = attempts_path(path)
    best_before = best_scores(log, chapter.name)
    try:
        attempt = log_attempt(log, chapter.name, rows)
    except (OSError, sqlite3.Error) as e:  # a read-only workspace must not hide the grades
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


def cmd_progress(args: argparse.Namespace) -> int:
    from .progress import progress

    root = Path(args.course)
    workspace = Path(args.workspace or root / "workspace")
    log = workspace / ".grades.sqlite"
    rows = progress(root, log)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = [
        {
            "chapter": r["chapter"],
            "best": f"{'-' if r['best'] is None else format(r['best'], 'g')}/{r['max_points']:g}",
            "attempts": r["attempts"],
            "open": _open_list(r),
            "last attempt": r["last_attempt"][:16].replace("T", " ") if r["last_attempt"] else "-",
        }
        for r in rows
    ]
    print(_table(table, ["chapter", "best", "attempts", "open", "last attempt"]))
    tried = [r for r in rows if r["attempts"]]
    best = sum(r["best"] or 0.0 for r in rows)
    possible = sum(r["max_points"] for r in rows)
    print(
        f"\n{len(tried)} of {len(rows)} chapters attempted; {best:g} / {possible:g} points "
        f"(best per exercise); attempts from {log}"
    )
    if not tried:
        print("Grade a chapter with `lessonlib grade 01` (after saving its notebook).")
    return 0


def _open_list(row: dict, width: int = 48) -> str:
    """The open exercises of a progress row, short enough for a table cell."""
    ids = row["open"]
    if not ids:
        return "none" if row["exercises"] else "-"
    if len(ids) == row["exercises"] and not row["attempts"]:
        return f"all {len(ids)}"
    text = ""
    for k, ex in enumerate(ids):
        more = f", +{len(ids) - k} more"
        item = ex if not text else f", {ex}"
        if len(text + item) > width - len(more) and k < len(ids) - 1:
            return text + more
        text += item
    return text


def cmd_autograde(args: argparse.Namespace) -> int:
    from .batch import autograde, parse_shard
    from .references import ReferenceStore, enable_trusted_compile_cache

    root = Path(args.course)
    chapter = resolve_chapter(args.chapter, root)
    submissions = Path(args.submissions or root / SUBMITTED_DIR)
    db = args.db or default_db_url(root)
    limits, isolation = _limits(args), _isolation(args)
    shard = parse_shard(args.shard) if args.shard is not None else (0, 1)
    if not args.no_compile_cache:
        enable_trusted_compile_cache()

    def progress(student: str, rows: list) -> None:
        if not args.json:
            total = sum(r.points for r in rows)
            possible = sum(r.max_points for r in rows)
            print(f"{student}: {total:g} / {possible:g}", flush=True)

    def failed(student: str, message: str) -> None:
        print(f"{student}: NOT GRADED, the grader failed: {message}", file=sys.stderr, flush=True)

    batch = autograde(
        chapter,
        submissions,
        db_url=db,
        jobs=args.jobs,
        limits=limits,
        mode=args.cells,
        on_done=progress,
        on_error=failed,
        compile_cache=_compile_cache(args),
        references=ReferenceStore(),
        shard=shard,
        isolation=isolation,
    )
    results = batch.graded
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
        out += [
            {"student": s, "exercise": None, "status": "ungraded", "error": batch.ungraded[s]}
            for s in sorted(batch.ungraded)
        ]
        print(json.dumps(out, indent=1))
    else:
        where = f" (shard {shard[0]}/{shard[1]}; {batch.others} in other shards)"
        print(
            f"graded {len(results)} submission(s) of {chapter.name} into {db.split('@')[-1]}"
            + (where if shard[1] > 1 else "")
        )
    if batch.ungraded:
        print(
            f"lessonlib autograde: {len(batch.ungraded)} submission(s) not graded because the "
            f"grader itself failed ({', '.join(sorted(batch.ungraded))}); nothing was recorded "
            "for them: run the same command again to grade them",
            file=sys.stderr,
        )
        return 3
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

    pr = sub.add_parser("progress", help="your best score, attempts and open exercises")
    pr.add_argument("--workspace", help="workspace folder (default: workspace/)")
    pr.add_argument("--json", action="store_true", help="print a JSON list")
    pr.set_defaults(func=cmd_progress)

    a = sub.add_parser("autograde", help="grade every submission of a chapter")
    a.add_argument("chapter")
    a.add_argument(
        "--submissions", help=f"submitted/<student>/<chapter>/ (default: {SUBMITTED_DIR})"
    )
    a.add_argument("--jobs", type=int, default=1, help="parallel sandboxes (default 1)")
    a.add_argument("--db", help="gradebook URL (default: sqlite in course/)")
    a.add_argument(
        "--shard",
        metavar="i/N",
        help="grade only shard i of N (0-based: 0/4 .. 3/4), chosen by a hash of the student id; "
        "for job arrays (Slurm, Kubernetes) writing one PostgreSQL gradebook",
    )
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
    except SandboxError as e:
        print(f"lessonlib {args.command}: {_sandbox_help(e)}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
