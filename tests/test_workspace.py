"""Student copies: solutions and hidden tests gone, and a learner's file is never overwritten;
the course files the chapters link to (sources.md, assets/figures/) placed next to them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from lessonlib import workspace

SOURCE = """# %% [markdown]
# # 99 · Test chapter

# %% [solution] id=ex-f
def f(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% [tests] id=ch99-test-f points=1
assert f(2) == 4
### BEGIN HIDDEN TESTS
assert f(5) == 10
### END HIDDEN TESTS
"""


def _course(tmp_path: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import build_notebooks

    chapter = tmp_path / "notebooks" / "99_test"
    chapter.mkdir(parents=True)
    (chapter / "99_test.py").write_text(SOURCE)
    (chapter / "99_test.ipynb").write_text(build_notebooks.build(chapter / "99_test.py"))
    return tmp_path


def test_student_version_strips_solutions_and_hidden_tests(tmp_path):
    root = _course(tmp_path)
    created = workspace.ensure_workspace(tmp_path / "ws", root)
    assert [p.name for p in created] == ["99_test.ipynb"]
    nb = nbformat.read(created[0], as_version=4)
    text = json.dumps(nb)
    assert "return 2 * x" not in text and "f(5) == 10" not in text
    assert "raise NotImplementedError()" in nb.cells[1].source
    assert nb.cells[1].metadata["nbgrader"]["solution"] is True
    assert "raises-exception" in nb.cells[1].metadata["tags"]


def test_existing_learner_files_are_never_overwritten(tmp_path):
    root = _course(tmp_path)
    ws = tmp_path / "ws"
    mine = ws / "99_test" / "99_test.ipynb"
    mine.parent.mkdir(parents=True)
    mine.write_text("my work, not even valid JSON")
    before = mine.stat().st_mtime_ns
    assert workspace.ensure_workspace(ws, root) == []
    assert mine.read_text() == "my work, not even valid JSON"
    assert mine.stat().st_mtime_ns == before
    assert not [p for p in mine.parent.iterdir() if p.name != "99_test.ipynb"]  # no temp files left


def test_command_line_is_idempotent(tmp_path):
    ws = tmp_path / "ws"
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    first = subprocess.run(
        [sys.executable, "-m", "lessonlib.workspace", str(ws)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    second = subprocess.run(
        [sys.executable, "-m", "lessonlib.workspace", str(ws)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert "never overwritten" in second.stdout
    assert first.stdout.count("created") == len(workspace.source_notebooks())
    assert first.stdout.count("added course file") == len(workspace.course_files())
    assert "course file" not in second.stdout
    assert (ws / "sources.md").is_file()


def _course_with_files(tmp_path: Path, sources: str = "# Sources v1\n") -> Path:
    root = _course(tmp_path / "course")
    (root / "docs").mkdir()
    (root / "docs" / "sources.md").write_text(sources)
    (root / "assets" / "figures").mkdir(parents=True)
    (root / "assets" / "figures" / "fig.svg").write_text("<svg>v1</svg>")
    return root


def test_course_files_are_placed_next_to_the_chapters(tmp_path):
    root = _course_with_files(tmp_path)
    ws = tmp_path / "ws"
    workspace.ensure_workspace(ws, root)
    done = workspace.place_course_files(ws, root)
    assert sorted(p.relative_to(ws).as_posix() for p in done["created"]) == [
        "assets/figures/fig.svg",
        "sources.md",
    ]
    # the chapter's links ../sources.md and ../assets/figures/fig.svg resolve from its folder
    assert (ws / "99_test" / ".." / "sources.md").read_text() == "# Sources v1\n"
    assert (ws / "99_test" / ".." / "assets/figures/fig.svg").read_text() == "<svg>v1</svg>"
    again = workspace.place_course_files(ws, root)
    assert again == {"created": [], "updated": [], "kept": []}


def test_course_files_are_refreshed_only_while_untouched(tmp_path):
    root = _course_with_files(tmp_path)
    ws = tmp_path / "ws"
    workspace.place_course_files(ws, root)
    (ws / "assets/figures/fig.svg").write_text("<svg>my annotations</svg>")  # the learner's edit
    (root / "docs" / "sources.md").write_text("# Sources v2\n")  # a course update
    (root / "assets" / "figures" / "fig.svg").write_text("<svg>v2</svg>")
    done = workspace.place_course_files(ws, root)
    assert done["updated"] == [ws / "sources.md"]
    assert done["kept"] == [ws / "assets/figures/fig.svg"]
    assert (ws / "sources.md").read_text() == "# Sources v2\n"
    assert (ws / "assets/figures/fig.svg").read_text() == "<svg>my annotations</svg>"
    # still the learner's after another course update, and no temporary files are left
    (root / "assets" / "figures" / "fig.svg").write_text("<svg>v3</svg>")
    assert workspace.place_course_files(ws, root)["kept"] == [ws / "assets/figures/fig.svg"]
    assert (ws / "assets/figures/fig.svg").read_text() == "<svg>my annotations</svg>"
    assert not [p for p in ws.rglob("*.tmp")]


def test_course_files_without_a_record_are_never_overwritten(tmp_path):
    """A sources.md the record does not vouch for (the learner wrote one first, or the record is
    lost or damaged) is the learner's; a symlink the learner put there is left too."""
    root = _course_with_files(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "sources.md").write_text("my own notes")
    (ws / "assets").mkdir()
    (ws / "assets" / "figures").symlink_to(tmp_path)
    done = workspace.place_course_files(ws, root)
    assert done["kept"] == [ws / "sources.md", ws / "assets/figures/fig.svg"]
    assert (ws / "sources.md").read_text() == "my own notes"
    assert not (tmp_path / "fig.svg").exists()  # nothing written through the learner's link
    (ws / workspace.COURSE_FILES_RECORD).write_text("{not json")
    assert workspace.place_course_files(ws, root)["kept"] == done["kept"]
    assert (ws / "sources.md").read_text() == "my own notes"
