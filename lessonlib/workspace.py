"""The learner's workspace: student copies of the chapters, created once and never overwritten.

``student_version`` turns a source notebook (solutions + hidden tests) into what a learner gets,
using nbgrader's own preprocessors, so the copy is exactly what ``nbgrader generate_assignment``
would release: every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes
``# YOUR CODE HERE`` / ``raise NotImplementedError()``, hidden tests disappear, outputs are cleared.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solutions, hidden tests or outputs (nbgrader's ClearSolutions,
    ClearHiddenTests and ClearOutput, as in its release step)."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    nb = nbformat.from_dict(nb)
    resources = {}
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def source_notebooks(root: Path = ROOT) -> list[Path]:
    """``notebooks/NN_topic/NN_topic.ipynb`` for every chapter, in order."""
    return sorted(p for p in (root / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name)


def ensure_workspace(workspace: Path, root: Path = ROOT) -> list[Path]:
    """Create missing student copies under ``workspace/NN_topic/``; return the ones created.

    An existing file is never touched, whatever it contains: it is the learner's work. The copy is
    written to a temporary name and renamed, so an interrupted run never leaves half a notebook.
    """
    created = []
    for src in source_notebooks(root):
        dest = workspace / src.parent.name / src.name
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        nb = student_version(nbformat.read(src, as_version=4))
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        nbformat.write(nb, tmp)
        try:
            os.link(tmp, dest)  # fails if dest appeared meanwhile: never overwrite
        except FileExistsError:
            pass
        else:
            created.append(dest)
        finally:
            tmp.unlink()
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the learner's workspace copies.")
    parser.add_argument("workspace", nargs="?", default=str(ROOT / "workspace"))
    args = parser.parse_args(argv)
    created = ensure_workspace(Path(args.workspace))
    for path in created:
        print(f"created {path}")
    if not created:
        print(
            f"workspace {args.workspace} is up to date (existing notebooks are never overwritten)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
