"""Learners see the course's sources by name, and every link a chapter shows works.

- No "seed 000" .. "seed 004" (the source documents' working names), "the seed's ..." or a source
  file name in anything a learner reads: notebook markdown, comments and strings of notebook code,
  docstrings, strings and comments of ``lessonlib/``, ``docs/`` and the README.
- Every chapter links ``../sources.md``; every relative link or image of a chapter resolves in the
  source tree (``notebooks/sources.md`` and ``notebooks/assets`` are links) and in a workspace made
  by ``lessonlib.workspace``.
- Every "NN § Section" that ``docs/sources.md`` names as the place a mistake is corrected is a
  heading of chapter NN.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

from lessonlib import workspace
from lessonlib.grading.course import ROOT, chapters

CHAPTERS = chapters(ROOT)
# "seed 003", "Seed 000's", "seeds 001, 004", "seed\n004", "the seed's dropout", "seed000",
# and the documents' file names (000_34c52aa830a1f6fa.txt)
FORBIDDEN = re.compile(
    r"(?<![a-z])seeds?[\s_-]*00[0-4](?!\d)|\bseed['’]s\b|\bseeds?/"
    r"|\bseeds?\s+(?:write|say|list|give|recommend|mention|call|claim)s?\b"
    r"|\b00[0-4]_[0-9a-f]{16}\b",
    re.IGNORECASE,
)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _nb(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / name / f"{name}.ipynb", as_version=4)


def _code_text(source: str) -> list[str]:
    """The comments and string literals of Python source (what a reader sees besides code)."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.STRING) or (
                tok.type == tokenize.NAME and "seed0" in tok.string.lower()
            ):
                out.append(tok.string)
            elif tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                out.append(tok.string)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        out.append(source)  # not Python (a %magic, say): check it all
    return out


def _hits(text: str) -> list[str]:
    return [m.group(0) for m in FORBIDDEN.finditer(text)]


def test_the_pattern_catches_what_it_should():
    caught = [
        "seed 003",
        "(Seed 000's formula)",
        "seeds 001, 004",
        "recurrent networks (seed\n004 mentions this)",
        "fix the seed's dropout",
        "apply_batch_norm_seed000",
        "see 003_8f30dd632e3ee590.txt",
        "The same seed writes `beta * jnp.sum(weights2)`",
        "the seed/Géron `factor=0.5`",
    ]
    fine = [
        "seed = 3",
        "key(seed)",
        "fixed seeds, so grading is reproducible",
        "the seed value",
        "seed 0042",
        "seed_0042",
        "jitted with the seed and the floats traced",
    ]
    assert all(_hits(t) for t in caught), [t for t in caught if not _hits(t)]
    assert not any(_hits(t) for t in fine), [t for t in fine if _hits(t)]


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebooks_name_their_sources(name):
    problems = []
    for i, cell in enumerate(_nb(name).cells):
        texts = [cell.source] if cell.cell_type == "markdown" else _code_text(cell.source)
        problems += [f"cell {i} ({cell.cell_type}): {hit!r}" for t in texts for hit in _hits(t)]
    assert not problems, (
        f"{name} calls a source document by its working name; use the names in docs/sources.md "
        f"(the JAX book chapter, Xiao Han's blog post, ...): {problems}"
    )


def _library_files() -> list[Path]:
    return sorted((ROOT / "lessonlib").rglob("*.py"))


def test_library_text_names_no_seed_documents():
    problems = []
    for path in _library_files():
        for text in _code_text(path.read_text(encoding="utf-8")):
            problems += [f"{path.relative_to(ROOT)}: {hit!r}" for hit in _hits(text)]
    assert not problems, f"docstrings, messages and comments must name sources: {problems}"


def test_docs_name_no_seed_documents():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "assets/README.md"]
    problems = [
        f"{p.relative_to(ROOT)}: {hit!r}"
        for p in docs
        if p.is_file()
        for hit in _hits(p.read_text(encoding="utf-8"))
    ]
    assert not problems


def _links(name: str) -> list[str]:
    """Relative link and image targets of a chapter's markdown cells."""
    targets = []
    for cell in _nb(name).cells:
        if cell.cell_type == "markdown":
            targets += [t for t in LINK.findall(cell.source) if not re.match(r"[a-z]+:|#", t)]
    return [t.split("#")[0] for t in targets]


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_links_the_sources(name):
    assert "../sources.md" in _links(name), (
        f"{name} must link [the course's sources](../sources.md)"
    )


@pytest.mark.parametrize("name", CHAPTERS)
def test_links_resolve_in_the_source_tree(name):
    folder = ROOT / "notebooks" / name
    missing = [t for t in _links(name) if not (folder / t).exists()]
    assert not missing, f"{name} links to missing files: {missing}"


def test_links_resolve_in_a_new_workspace(tmp_path):
    ws = tmp_path / "workspace"
    workspace.ensure_workspace(ws)
    placed = workspace.place_course_files(ws)
    assert (ws / "sources.md").read_bytes() == (ROOT / "docs" / "sources.md").read_bytes()
    assert placed["updated"] == [] and placed["kept"] == []
    missing = [
        f"{name}: {t}"
        for name in CHAPTERS
        for t in _links(name)
        if not (ws / name / t).resolve().is_relative_to(ws.resolve())
        or not (ws / name / t).exists()
    ]
    # JupyterLab serves only what lies under its root, the workspace
    assert not missing, f"links that do not resolve inside the workspace: {missing}"


def _headings(name: str) -> list[str]:
    heads = []
    for cell in _nb(name).cells:
        if cell.cell_type == "markdown":
            heads += [m.group(1).strip() for m in re.finditer(r"^#{1,4} (.+)$", cell.source, re.M)]
    return heads


def test_sources_md_points_at_real_sections():
    text = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    by_number = {name.split("_")[0]: name for name in CHAPTERS}
    refs = re.findall(r"\b(\d\d) § ([^|\n]+)", text)
    assert len(refs) >= 15, "expected a section reference for every corrected mistake"
    problems = []
    for number, rest in refs:
        name = by_number.get(number)
        if name is None:
            problems.append(f"chapter {number} does not exist (write 'chapter {number}' instead)")
        elif not any(rest.startswith(h) for h in _headings(name)):
            problems.append(f"{number} § {rest.strip()!r} is not a heading of {name}")
    assert not problems, problems


def test_sources_md_covers_every_document():
    text = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    for title in (
        "第六章：使用 Jax 的高级深度学习技术",
        "终于把神经网络中的正则化技术搞懂了",
        "24.8.6学习笔记",
        "动手学深度学习",
        "Deep Neural Networks参数配置",
    ):
        assert title in text, f"docs/sources.md does not name {title}"
