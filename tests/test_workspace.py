"""Student copies: solutions and hidden tests gone, and a learner's file is never overwritten."""

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
