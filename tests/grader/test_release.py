"""Releases contain no solution code and no hidden test: `lessonlib release` and nbgrader's own
`generate_assignment` (through nbgrader_config.py), for every chapter and the test chapter."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest

from lessonlib.grading.cli import main
from lessonlib.grading.course import ROOT, Chapter, chapters, is_solution_cell

BIN = Path(sys.executable).parent


def _course_copy(tmp: Path, fixture_course: Path) -> Path:
    """A course folder with every real chapter and the test chapter, the repo's nbgrader config,
    and the course files the chapters link to, laid out as in the repository (``notebooks/assets``
    and ``notebooks/sources.md`` are symbolic links to ``assets/`` and ``docs/sources.md``)."""
    root = tmp / "course_root"
    shutil.copytree(fixture_course / "notebooks", root / "notebooks")
    for name in chapters(ROOT):
        shutil.copytree(ROOT / "notebooks" / name, root / "notebooks" / name)
    shutil.copyfile(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "assets", root / "assets")
    (root / "docs").mkdir()
    shutil.copyfile(ROOT / "docs" / "sources.md", root / "docs" / "sources.md")
    for link in ("assets", "sources.md"):
        (root / "notebooks" / link).symlink_to(os.readlink(ROOT / "notebooks" / link))
    return root


def _assignments(root: Path) -> list[str]:
    """The chapter folders under notebooks/ (not the links to the course files)."""
    return sorted(
        p.name for p in (root / "notebooks").iterdir() if p.is_dir() and not p.is_symlink()
    )


def _solution_lines(chapter: Chapter) -> list[str]:
    """Code lines inside the source's BEGIN/END SOLUTION regions (long enough to be distinctive)."""
    lines = []
    for cell in chapter.source.cells:
        if not is_solution_cell(cell):
            continue
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) >= 12:
                lines.append(line.strip())
    return lines


def _hidden_lines(chapter: Chapter) -> list[str]:
    lines = []
    for cell in chapter.source.cells:
        m = re.search(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", cell.source, re.S)
        if m:
            lines += [line.strip() for line in m.group(1).splitlines() if line.strip()]
    return lines


def _visible_text(chapter: Chapter) -> str:
    """The source with every solution and hidden-test region cut out: what a learner may see.

    A line that is also given to the learner (a source's buggy code shown for a spot-the-bug
    exercise, a call spelled out in the instructions) is not a leak when it appears in a release.
    """
    text = "\n".join(c.source for c in chapter.source.cells)
    text = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", text, flags=re.S)
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", text, flags=re.S)


def _scan(release: Path, root: Path) -> list[str]:
    problems = []
    for name in _assignments(root):
        folder = release / name
        files = [p for p in folder.rglob("*") if p.is_file()]
        if not any(p.suffix == ".ipynb" for p in files):
            problems.append(f"{name}: nothing released")
        chapter = Chapter(root, name)
        visible = _visible_text(chapter)
        secrets = [s for s in _solution_lines(chapter) + _hidden_lines(chapter) if s not in visible]
        for path in files:
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".py":
                problems.append(f"{path}: chapter source released")
            for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
                if marker in text:
                    problems.append(f"{path}: contains {marker!r}")
            if path.suffix == ".ipynb":
                code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
                problems += [
                    f"{path}: contains solution/hidden line {s!r}" for s in secrets if s in code
                ]
    return problems


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory, fixture_course):
    return _course_copy(tmp_path_factory.mktemp("release"), fixture_course)


def test_lessonlib_release(course_copy):
    with redirect_stdout(io.StringIO()):
        assert main(["--course", str(course_copy), "release"]) == 0
    release = course_copy / "release"
    assert _scan(release, course_copy) == []
    nb = nbformat.read(release / "99_fixture/99_fixture.ipynb", as_version=4)
    assert any("raise NotImplementedError" in c.source for c in nb.cells)
    # the course files the chapters link to are released next to them, as in a workspace
    assert (release / "sources.md").read_bytes() == (ROOT / "docs/sources.md").read_bytes()
    for svg in (ROOT / "assets" / "figures").iterdir():
        assert (release / "assets" / "figures" / svg.name).read_bytes() == svg.read_bytes()
    assert all(
        c.metadata.get("nbgrader", {}).get("checksum") for c in nb.cells if "nbgrader" in c.metadata
    )


def test_release_refuses_the_workspace(course_copy):
    with redirect_stdout(io.StringIO()):
        assert (
            main(["--course", str(course_copy), "release", "--out", str(course_copy / "workspace")])
            == 2
        )


def test_nbgrader_generate_assignment_every_chapter(course_copy):
    """nbgrader's own command, given every chapter at once: its assignment id is a glob, so one
    process (nbgrader's start-up is most of the cost: ~6 s of CPU) releases them all, through
    the same converter as ``nbgrader generate_assignment 01_weight_decay``."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    names = _assignments(course_copy)
    shutil.rmtree(course_copy / "release", ignore_errors=True)  # what test_lessonlib_release wrote
    assert all(re.fullmatch(r"\d\d_\w+", n) for n in names), names
    r = subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", "[0-9][0-9]_*", "--force"],
        cwd=course_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in (course_copy / "release").iterdir() if p.is_dir()) == names
    assert _scan(course_copy / "release", course_copy) == []
    # each chapter is an assignment of nbgrader's gradebook, with its notebook and its points
    from nbgrader.api import Gradebook

    gb_path = course_copy / "course" / "gradebook.db"
    assert gb_path.exists()
    with Gradebook(f"sqlite:///{gb_path}") as gb:
        for name in names:
            assignment = gb.find_assignment(name)
            assert [nb.name for nb in assignment.notebooks] == [name]
            assert assignment.max_score == sum(Chapter(course_copy, name).test_points.values())
