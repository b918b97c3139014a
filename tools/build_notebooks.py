"""Build the source notebooks ``notebooks/NN_topic/NN_topic.ipynb`` from their ``.py`` sources.

Each chapter is written as a plain Python file in "percent" format, which keeps diffs reviewable and
lets ruff lint the code. A cell starts with a header line:

    # %% [markdown]                      a markdown cell; its lines lose their leading "# "
    # %%                                 a code cell
    # %% [solution] id=ex-l2             an exercise cell (nbgrader: solution, autograded answer)
    # %% [tests] id=test-l2 points=2     an autograder test cell (nbgrader: grade, locked)
    # %% [readonly] id=setup             a locked code cell the learner must not edit
    ... tags=a,b                         extra cell tags on any header

Solution and test cells get the ``raises-exception`` tag, so "Run All" in a learner's copy keeps
going past an unsolved exercise. Outputs are never written into the committed notebooks. Lines
``# OUTPUT: text`` at the end of a ``# NBVAL_CHECK_OUTPUT`` cell are the output nbval expects:
they are dropped from the committed notebook and written only into the copies made with
``--nbval-dir`` (which ``make test`` runs through ``pytest --nbval-lax``). Usage:

    python tools/build_notebooks.py                  # rebuild every chapter
    python tools/build_notebooks.py --check          # exit 1 if any .ipynb is out of date
    python tools/build_notebooks.py --nbval-dir D    # write copies with expected outputs to D/
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = re.compile(r"^# %%(?:\s+\[(\w+)\])?(.*)$")

KERNEL = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _options(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split())


def _markdown(lines: list[str]) -> str:
    out = []
    for line in lines:
        if line.startswith("# "):
            out.append(line[2:])
        elif line.rstrip() == "#":
            out.append("")
        else:
            raise ValueError(f"markdown line must start with '# ': {line!r}")
    return "\n".join(out).strip("\n")


def parse(source: str) -> list[dict]:
    """Split a percent-format source into notebook cells (nbformat 4.5 dicts)."""
    cells, current = [], None
    for line in source.splitlines():
        m = HEADER.match(line)
        if m:
            current = {"kind": m.group(1) or "code", "opts": _options(m.group(2)), "lines": []}
            cells.append(current)
        elif current is not None:
            current["lines"].append(line)
        elif line.strip():
            raise ValueError(f"text before the first cell header: {line!r}")
    return [_cell(i, c) for i, c in enumerate(cells)]


def _cell(index: int, spec: dict) -> dict:
    kind, opts = spec["kind"], spec["opts"]
    lines = spec["lines"]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    expected = []
    while kind != "markdown" and lines and lines[-1].startswith("# OUTPUT:"):
        expected.insert(0, lines.pop()[len("# OUTPUT:") :].removeprefix(" "))
    while lines and not lines[-1].strip():
        lines.pop()
    tags = [t for t in opts.get("tags", "").split(",") if t]
    cell_id = opts.get("id", f"cell-{index:03d}")
    if kind == "markdown":
        cell = {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _markdown(lines)}
    elif kind in ("code", "solution", "tests", "readonly"):
        cell = {
            "cell_type": "code",
            "execution_count": None,
            "id": cell_id,
            "metadata": {},
            "outputs": [],
            "source": "\n".join(lines),
        }
    else:
        raise ValueError(f"unknown cell kind [{kind}]")
    if kind in ("solution", "tests", "readonly"):
        if "id" not in opts:
            raise ValueError(f"a [{kind}] cell needs id=...")
        nbg = {
            "grade": kind == "tests",
            "grade_id": opts["id"],
            "locked": kind != "solution",
            "schema_version": 3,
            "solution": kind == "solution",
            "task": False,
        }
        if kind == "tests":
            nbg["points"] = float(opts["points"]) if "." in opts["points"] else int(opts["points"])
        cell["metadata"]["nbgrader"] = nbg
        if kind in ("solution", "tests"):
            tags.append("raises-exception")
    if tags:
        cell["metadata"]["tags"] = sorted(set(tags))
    if expected:
        if not cell["source"].startswith("# NBVAL_CHECK_OUTPUT"):
            raise ValueError(
                f"# OUTPUT: lines need '# NBVAL_CHECK_OUTPUT' first in the cell: {cell['source'][:60]!r}"
            )
        cell["expected_output"] = "\n".join(expected) + "\n"
    return cell


def build(source_path: Path, *, with_outputs: bool = False) -> str:
    """The notebook JSON for one source; ``with_outputs`` fills the cells nbval checks."""
    cells = parse(source_path.read_text(encoding="utf-8"))
    for i, cell in enumerate(cells):
        expected = cell.pop("expected_output", None)
        if expected and with_outputs:
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": expected}]
            cell["execution_count"] = i + 1
    ids = [c["id"] for c in cells]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"{source_path}: duplicate cell ids {sorted(dupes)}")
    nb = {"cells": cells, "metadata": KERNEL, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def chapter_sources(root: Path = ROOT) -> list[Path]:
    """``notebooks/NN_topic/NN_topic.py`` for every chapter."""
    return sorted(p for p in (root / "notebooks").glob("*/*.py") if p.stem == p.parent.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date notebooks")
    parser.add_argument(
        "--nbval-dir", type=Path, help="write nbval copies with expected outputs here"
    )
    args = parser.parse_args(argv)
    if args.nbval_dir:
        for src in chapter_sources():
            target = args.nbval_dir / src.parent.name / f"{src.stem}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(build(src, with_outputs=True), encoding="utf-8")
        return 0
    stale = []
    for src in chapter_sources():
        target = src.with_suffix(".ipynb")
        text = build(src)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print(f"built {target.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date (run `make notebooks`):", *map(str, stale), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
