"""The notebook builder: cell kinds, nbgrader metadata, expected outputs, and sources in sync."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import build_notebooks  # noqa: E402


def test_cells_and_metadata():
    cells = build_notebooks.parse(
        "# %% [markdown]\n# # Title\n#\n# text\n\n"
        "# %%\nx = 1\n\n"
        "# %% [solution] id=ex-a\ny = 2\n"
        "# %% [tests] id=t-a points=3\nassert y == 2\n"
        "# %% [readonly] id=ro tags=slow\nz = 3\n"
    )
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "code", "code"]
    assert cells[0]["source"] == "# Title\n\ntext"
    sol, test, ro = cells[2]["metadata"], cells[3]["metadata"], cells[4]["metadata"]
    assert sol["nbgrader"]["solution"] and not sol["nbgrader"]["locked"]
    assert (
        test["nbgrader"]["grade"] and test["nbgrader"]["points"] == 3 and test["nbgrader"]["locked"]
    )
    assert sol["tags"] == test["tags"] == ["raises-exception"]
    assert ro["nbgrader"]["locked"] and ro["tags"] == ["slow"]


def test_expected_outputs_only_in_nbval_copies(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("# %%\n# NBVAL_CHECK_OUTPUT\nprint(1 + 1)\n# OUTPUT: 2\n")
    plain = json.loads(build_notebooks.build(src))
    assert plain["cells"][0]["outputs"] == []
    assert "# OUTPUT:" not in plain["cells"][0]["source"]
    checked = json.loads(build_notebooks.build(src, with_outputs=True))
    assert checked["cells"][0]["outputs"][0]["text"] == "2\n"


@pytest.mark.parametrize(
    "source, match",
    [
        ("# %% [solution]\nx = 1\n", "id="),
        ("# %% [weird]\n", "unknown"),
        ("x = 1\n", "before the first"),
        ("# %% [markdown]\nnot a comment\n", "markdown"),
        ("# %%\nprint(2)\n# OUTPUT: 2\n", "NBVAL_CHECK_OUTPUT"),
    ],
)
def test_malformed_sources(source, match):
    with pytest.raises(ValueError, match=match):
        build_notebooks.parse(source)


def test_duplicate_ids(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("# %% [solution] id=a\nx = 1\n# %% [solution] id=a\ny = 1\n")
    with pytest.raises(ValueError, match="duplicate"):
        build_notebooks.build(src)


def test_committed_notebooks_match_their_sources():
    sources = build_notebooks.chapter_sources()
    assert sources, "no chapter sources found"
    for src in sources:
        target = src.with_suffix(".ipynb")
        assert target.exists(), f"{target} missing: run `make notebooks`"
        assert target.read_text(encoding="utf-8") == build_notebooks.build(src), (
            f"{target} is out of date: run `make notebooks`"
        )
