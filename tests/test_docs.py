"""The docs point at files that exist: every repository path named in ``README.md``, ``docs/`` and
``assets/README.md``, and every relative markdown link there, resolves. Placeholders
(``notebooks/NN_topic/NN_topic.py``, ``lessonlib/exercises/chNN.py``, ``<student>``) are skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lessonlib.grading.course import ROOT

DOCS = [ROOT / "README.md", ROOT / "assets" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("tests", "lessonlib", "tools", "docs", "notebooks", "assets", "benchmarks", ".ci")
# a path starting at a top-level folder, not inside another path (~/.cache/lessonlib/...)
TOP_ALT = "|".join(re.escape(t) for t in TOP)
PATH = re.compile(rf"(?<![\w/.~$-])((?:{TOP_ALT})/[\w./-]*\w)")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _is_placeholder(path: str) -> bool:
    return bool(re.search(r"NN|<|\*|\{", path))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(doc):
    text = doc.read_text(encoding="utf-8")
    missing = sorted(
        {p for p in PATH.findall(text) if not _is_placeholder(p) and not (ROOT / p).exists()}
    )
    assert not missing, f"{doc.relative_to(ROOT)} names files that do not exist: {missing}"


def _without_code(text: str) -> str:
    """Markdown without fenced blocks and inline code (examples, not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(doc):
    text = _without_code(doc.read_text(encoding="utf-8"))
    links = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    missing = [t for t in links if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


def test_the_check_catches_a_stale_path(tmp_path):
    assert PATH.findall("rules in `tests/test_notebooks.py` and ~/.cache/lessonlib/grader-xla") == [
        "tests/test_notebooks.py"
    ]
    assert not (ROOT / "tests/test_notebooks.py").exists()
    assert _is_placeholder("notebooks/NN_topic/NN_topic.py")
    assert not _is_placeholder(str(Path("docs/sources.md")))
