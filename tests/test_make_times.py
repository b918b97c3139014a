"""tools/make_times.py: the phases of `make test` / `make check` that `make bench` reports."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from make_times import record  # noqa: E402


def test_phases_add_up_and_only_a_finished_run_has_a_time(tmp_path):
    path = tmp_path / "times.json"
    record("test", "install", 100.0, path=path, now=160.0)
    run = record("test", "unit", 100.0, path=path, now=700.0)
    assert run["phases"] == {"install": 60.0, "unit": 540.0}
    assert not run["complete"] and "seconds" not in run  # failed here: no time to report
    done = record("test", "done", 100.0, path=path, now=701.5)
    assert done["complete"] and done["seconds"] == 601.5 and "done" not in done["phases"]
    record("check", "install", 900.0, path=path, now=901.0)  # another target keeps its own run
    again = record("test", "install", 2000.0, path=path, now=2010.0)  # a new make starts afresh
    assert again == {
        "since": 2000.0,
        "phases": {"install": 10.0},
        "last": 2010.0,
        "complete": False,
    }
    data = json.loads(path.read_text())
    assert set(data) == {"test", "check"} and data["check"]["phases"] == {"install": 1.0}


def test_side_by_side_phases_keep_their_own_times_and_the_sequence(tmp_path):
    path = tmp_path / "times.json"
    record("test", "nbval", 100.0, path=path, now=400.0)
    # the unit tests and the browser tests both started at 400 and ran at once
    record("test", "browser", 100.0, started=400.0, path=path, now=950.0)
    record("test", "unit_and_grader", 100.0, started=400.0, path=path, now=1200.0)
    run = record("test", "unit_grader_and_browser", 100.0, path=path, now=1201.0)
    assert run["side_by_side"] == {"browser": 550.0, "unit_and_grader": 800.0}
    assert run["phases"] == {"nbval": 300.0, "unit_grader_and_browser": 801.0}
    done = record("test", "done", 100.0, path=path, now=1201.0)
    assert done["seconds"] == 1101.0 and sum(done["phases"].values()) == 1101.0
