"""Fixtures for the grader tests: a course folder, submissions, and gradebook URLs (SQLite and the
throwaway PostgreSQL server of ``tests/conftest.py``).

The end-to-end tests use chapter 01 (``notebooks/01_weight_decay``) when it exists, and the
small test chapter 99 in ``fixtures/`` otherwise (registered as ``lessonlib.exercises.ch99``);
the exploit corpus always uses chapter 99, whose exercises cover every kind (function, probe,
value) in a fraction of the time.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from lessonlib.grading.course import ROOT, Chapter, is_solution_cell, nbgrader_meta
from lessonlib.grading.sandbox import Limits

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
sys.path.insert(0, str(ROOT / "tools"))

from build_notebooks import build  # noqa: E402


def _register_ch99() -> None:
    name = "lessonlib.exercises.ch99"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FIXTURES / "ch99.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


_register_ch99()

# Tight limits keep the fault cases quick; generous enough for JAX on a loaded 2-core machine.
TEST_LIMITS = dict(
    startup_timeout=120.0,
    cell_timeout=60.0,
    exercise_timeout=30.0,
    notebook_timeout=300.0,
    memory_mb=3072,
)


def chapter01_ready() -> bool:
    return (ROOT / "notebooks/01_weight_decay/01_weight_decay.ipynb").exists() and (
        ROOT / "lessonlib/exercises/ch01.py"
    ).exists()


@pytest.fixture(scope="session")
def fixture_course(tmp_path_factory) -> Path:
    """A course folder holding chapter 99, built from its percent source."""
    root = tmp_path_factory.mktemp("course")
    src = FIXTURES / "course/notebooks/99_fixture/99_fixture.py"
    dest = root / "notebooks/99_fixture"
    dest.mkdir(parents=True)
    shutil.copyfile(src, dest / src.name)
    (dest / "99_fixture.ipynb").write_text(build(src), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def ch99(fixture_course) -> Chapter:
    return Chapter(fixture_course, "99_fixture")


@pytest.fixture(scope="session")
def e2e_chapter(fixture_course) -> Chapter:
    """Chapter 01 of the real course once it exists, else the test chapter."""
    if chapter01_ready():
        return Chapter(ROOT, "01_weight_decay")
    return Chapter(fixture_course, "99_fixture")


@pytest.fixture(scope="session")
def limits() -> Limits:
    return Limits(**TEST_LIMITS)


def limit_args() -> list[str]:
    return [
        "--cell-timeout",
        str(TEST_LIMITS["cell_timeout"]),
        "--exercise-timeout",
        str(TEST_LIMITS["exercise_timeout"]),
        "--memory-mb",
        str(TEST_LIMITS["memory_mb"]),
    ]


# --------------------------------------------------------------------------- submissions


def correct_submission(chapter: Chapter) -> nbformat.NotebookNode:
    """The student version with every answer cell filled in from the source (a learner who solved
    everything, test cells untouched)."""
    solutions = {
        nbgrader_meta(c)["grade_id"]: c.source for c in chapter.source.cells if is_solution_cell(c)
    }
    nb = copy.deepcopy(chapter.student)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in solutions:
            cell.source = solutions[gid]
    return nb


def set_answer(nb: nbformat.NotebookNode, grade_id: str, source: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the answer cell ``grade_id`` replaced by ``source``."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            cell.source = source
            return nb
    raise KeyError(grade_id)


def write_submission(
    submissions: Path, student: str, chapter: Chapter, nb: nbformat.NotebookNode
) -> Path:
    path = submissions / student / chapter.name / f"{chapter.name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------- PostgreSQL
# The throwaway server (``postgres_url``) lives in ``tests/conftest.py``: chapter 08's shared optuna
# study is tested against it too.


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same grading tests against SQLite and a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}"
    return new_database(request.getfixturevalue("postgres_url"), request.node.nodeid)


def new_database(server_url: str, test_id: str) -> str:
    """A fresh, empty database on the throwaway PostgreSQL server; its URL."""
    import psycopg2

    name = f"gb_{os.getpid()}_{abs(hash(test_id)) % 10**8}"
    con = psycopg2.connect(server_url)
    con.autocommit = True
    con.cursor().execute(f"CREATE DATABASE {name}")
    con.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
