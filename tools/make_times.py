"""Record how long ``make test`` and ``make check`` take, phase by phase, for ``make bench``.

    python tools/make_times.py TARGET PHASE --since EPOCH_SECONDS

The Makefile calls it after each phase of a target; ``--since`` is when ``make`` started (so the
first phase includes installing the virtual environment). Each call records PHASE as the seconds
since the previous call of the same run; ``PHASE = done`` also records the total and marks the run
complete. A run that fails part-way stays incomplete, and ``make bench`` says so instead of
reporting a time. Two phases that run side by side (``make test`` runs the unit tests and the browser
tests at once) each also pass ``--started`` (when the pair started): their own times go under
``side_by_side`` and leave the sequence of phases alone. The figures go to
``artifacts/make-times.json`` (not committed):

    {"test": {"since": ..., "phases": {"install": 95.1, "lint": 20.3, ...}, "seconds": 1190.0,
              "side_by_side": {"browser": 560.2, "unit_and_grader": 801.7},
              "complete": true, "finished": "2026-11-30 21:40", "commit": "abc1234",
              "cores": 2, "load_average": 0.4}}

It runs with the virtual environment's Python (lessonlib's ``cache.atomic_write`` writes the file).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

from lessonlib.cache import atomic_write

ROOT = Path(__file__).resolve().parent.parent
TIMES = ROOT / "artifacts" / "make-times.json"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def _locked(path: Path):
    """Hold a lock next to ``path``: two side-by-side phases may finish at the same moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record(
    target: str,
    phase: str,
    since: float,
    *,
    started: float | None = None,
    path: Path = TIMES,
    now: float | None = None,
) -> dict:
    """Add ``phase`` to ``target``'s run that started at ``since``; returns the run's record.

    With ``started``, ``phase`` ran beside another one since then: its time goes under
    ``side_by_side`` and the sequence of phases is left as it is.
    """
    now = time.time() if now is None else now
    with _locked(path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        run = data.get(target)
        if not isinstance(run, dict) or run.get("since") != since:
            run = {"since": since, "phases": {}, "last": since, "complete": False}
        if started is not None:
            run.setdefault("side_by_side", {})[phase] = round(now - started, 1)
        else:
            run["phases"][phase] = round(now - run["last"], 1)
            run["last"] = now
        if phase == "done":
            del run["phases"]["done"]
            run.update(
                seconds=round(now - since, 1),
                complete=True,
                finished=dt.datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M"),
                commit=_commit(),
                cores=os.cpu_count(),
                load_average=round(os.getloadavg()[0], 2),
            )
        data[target] = run
        with atomic_write(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=["test", "check"])
    parser.add_argument("phase")
    parser.add_argument("--since", type=float, required=True, help="when make started (epoch s)")
    parser.add_argument(
        "--started", type=float, help="when this phase and the one beside it started (epoch s)"
    )
    args = parser.parse_args(argv)
    run = record(args.target, args.phase, args.since, started=args.started)
    if args.phase == "done":
        phases = ", ".join(f"{k} {v:g} s" for k, v in run["phases"].items())
        side = ", ".join(f"{k} {v:g} s" for k, v in run.get("side_by_side", {}).items())
        print(
            f"make {args.target}: {run['seconds'] / 60:.1f} min ({phases})"
            + (f"; side by side: {side}" if side else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
