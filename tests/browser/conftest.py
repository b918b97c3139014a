"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium per session.

The course under test is the repository's (``notebooks/``); set ``LESSONLIB_BROWSER_COURSE`` to
another directory holding ``notebooks/NN_topic/NN_topic.ipynb`` to try the harness on other
chapters. Screenshots and the measured slider latencies go to ``artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lessonlib.workspace import ROOT, ensure_workspace, place_course_files, source_notebooks

from .lab import CHROMIUM_ARGS, LabServer, chromium_path

ARTIFACTS = ROOT / "artifacts" / "browser"


def course_root() -> Path:
    return Path(os.environ.get("LESSONLIB_BROWSER_COURSE", ROOT)).resolve()


def chapters() -> list[str]:
    return [p.parent.name for p in source_notebooks(course_root())]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``artifacts/browser/``, emptied of the previous session's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        return chromium_path()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def workspace(scratch) -> Path:
    """The learner's copies, made the way ``make lab`` makes them."""
    ws = scratch / "workspace"
    root = course_root()
    if root == ROOT:
        subprocess.run(
            [sys.executable, "-m", "lessonlib.workspace", str(ws)],
            check=True,
            capture_output=True,
            text=True,
        )
    else:
        ws.mkdir()
        ensure_workspace(ws, root)
        place_course_files(ws, root)
    return ws


@pytest.fixture(scope="session")
def lab_server(chromium, workspace, scratch):
    del chromium  # checked first: no server is started when the browser is missing
    server = LabServer(workspace, scratch)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium, lab_server):
    from playwright.sync_api import sync_playwright

    del lab_server
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(30_000)
        yield context
        context.close()


class LatencyLog:
    """Per-slider timings, rewritten to ``slider_latency.json`` after every chapter."""

    def __init__(self, path: Path):
        self.path, self.moves, self.run_all_s = path, [], {}

    def write(self) -> None:
        browser_ms = [m["browser_ms"] for m in self.moves if m["browser_ms"] is not None]
        kernel_ms = [m["kernel_ms"] for m in self.moves if m["kernel_ms"] is not None]
        sliders = {(m["chapter"], m["panel"], m["control"]) for m in self.moves}
        summary = {
            "sliders": len(sliders),
            "moves": len(self.moves),
            "browser_median_ms": statistics.median(browser_ms) if browser_ms else None,
            "kernel_median_ms": statistics.median(kernel_ms) if kernel_ms else None,
        }
        data = {
            "summary": summary,
            # `make test` runs these tests beside the unit tests: its latencies are crowded ones,
            # and `make bench` measures them again on its own
            "crowded": bool(os.environ.get("LESSONLIB_BROWSER_CROWDED")),
            "run_all_s": self.run_all_s,
            "moves": self.moves,
        }
        self.path.write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="session")
def latency_log(artifacts) -> LatencyLog:
    log = LatencyLog(artifacts / "slider_latency.json")
    yield log
    log.write()
