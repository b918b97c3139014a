"""The course layout, shared with nbgrader (``nbgrader_config.py`` at the repository root says the
same): chapters are nbgrader assignments.

    notebooks/NN_topic/NN_topic.ipynb           source (solutions + hidden tests)
    release/NN_topic/NN_topic.ipynb             student version (``lessonlib release``)
    course/submitted/<student>/NN_topic/...     collected submissions (nbgrader's layout)
    course/autograded/<student>/NN_topic/...    autograder output (results.json + the notebook)
    course/feedback/<student>/NN_topic/...      HTML feedback
    course/gradebook.db                         nbgrader gradebook (SQLite by default)
    workspace/NN_topic/NN_topic.ipynb           a learner's own copy (``make lab``)
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lessonlib import exercises as lx

if TYPE_CHECKING:
    import nbformat

ROOT = Path(__file__).resolve().parent.parent.parent

SOURCE_DIR = "notebooks"
RELEASE_DIR = "release"
SUBMITTED_DIR = "course/submitted"
AUTOGRADED_DIR = "course/autograded"
FEEDBACK_DIR = "course/feedback"
GRADEBOOK = "course/gradebook.db"


class UsageError(Exception):
    """A wrong command-line argument or a missing/unreadable notebook (exit status 2)."""


def default_db_url(root: Path) -> str:
    return f"sqlite:///{(root / GRADEBOOK).resolve()}"


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_test_cell(cell: dict) -> bool:
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and not m.get("solution")


def is_solution_cell(cell: dict) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_readonly_cell(cell: dict) -> bool:
    m = nbgrader_meta(cell)
    return bool(m.get("locked")) and not m.get("grade") and not m.get("solution")


_PARSE_LOCK = threading.RLock()


def parse(source: str) -> ast.Module:
    """``ast.parse``, safe beside other threads that parse.

    CPython 3.11 keeps the AST constructor's recursion depth in one counter per interpreter, so a
    parse that meets another thread's (Python 3.11 formats every traceback's carets with
    ``ast.parse``) can fail with "SystemError: AST constructor recursion depth mismatch"
    (python/cpython#106905) although its tree is fine. Our parses take turns, and one that meets
    a library's is parsed again."""
    for attempt in range(5):
        try:
            with _PARSE_LOCK:
                return ast.parse(source)
        except SystemError as e:
            if "recursion depth mismatch" not in str(e) or attempt == 4:
                raise
    raise AssertionError("unreachable")


def check_ids(source: str) -> list[str]:
    """The exercise ids named by ``check("NN.id", ...)`` calls in a test cell's source."""
    try:
        tree = parse(source)
    except SyntaxError:
        return []
    ids = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "check"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and node.args[0].value not in ids
        ):
            ids.append(node.args[0].value)
    return ids


@dataclass(frozen=True)
class Chapter:
    """One chapter = one nbgrader assignment with one notebook."""

    root: Path
    name: str  # "01_weight_decay"

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def source_path(self) -> Path:
        return self.root / SOURCE_DIR / self.name / f"{self.name}.ipynb"

    @property
    def notebook_name(self) -> str:
        return self.name

    @cached_property
    def source(self) -> nbformat.NotebookNode:
        import nbformat  # not at import time: ``lessonlib progress`` reads no notebook with it

        return nbformat.read(self.source_path, as_version=4)

    @cached_property
    def student(self) -> nbformat.NotebookNode:
        """The notebook as released to learners (stored by the grader: making it imports nbgrader)."""
        from .references import ReferenceStore

        return ReferenceStore().released(self)

    @cached_property
    def exercises(self) -> list[lx.Exercise]:
        return lx.chapter_exercises(self.number)

    @cached_property
    def test_cells(self) -> dict[str, list[str]]:
        """grade_id of each source test cell -> the exercise ids it checks."""
        return {
            nbgrader_meta(c)["grade_id"]: check_ids(c.source)
            for c in self.source.cells
            if is_test_cell(c)
        }

    @cached_property
    def test_points(self) -> dict[str, float]:
        return {
            nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
            for c in self.source.cells
            if is_test_cell(c)
        }

    def cell_of(self, exercise_id: str) -> str | None:
        """The grade_id of the test cell that checks ``exercise_id``."""
        for grade_id, ids in self.test_cells.items():
            if exercise_id in ids:
                return grade_id
        return None


def chapters(root: Path = ROOT) -> list[str]:
    """Every chapter with a source notebook, in order."""
    return sorted(
        p.parent.name for p in (root / SOURCE_DIR).glob("*/*.ipynb") if p.stem == p.parent.name
    )


def resolve_chapter(arg: str, root: Path = ROOT) -> Chapter:
    """``"01"``, ``"1"`` or ``"01_weight_decay"`` -> the chapter; UsageError if there is none."""
    names = chapters(root)
    want = arg.strip().rstrip("/").split("/")[-1]
    if want.isdigit():
        want = f"{int(want):02d}"
    for name in names:
        if name == want or name.split("_", 1)[0] == want:
            return Chapter(root, name)
    raise UsageError(
        f"no chapter {arg!r} under {root / SOURCE_DIR}; chapters: {', '.join(names) or 'none'}"
    )


def chapter_of_notebook(path: Path, root: Path = ROOT) -> Chapter:
    """The chapter a notebook ``NN_topic.ipynb`` belongs to, from its file name."""
    return resolve_chapter(path.stem, root)
