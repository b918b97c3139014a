"""The learner's workspace: student copies of the chapters, created once and never overwritten.

``student_version`` turns a source notebook (solutions + hidden tests) into what a learner gets,
using nbgrader's own preprocessors, so the copy is exactly what ``nbgrader generate_assignment``
would release: every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes
``# YOUR CODE HERE`` / ``raise NotImplementedError()``, hidden tests disappear, outputs are cleared.

Next to the chapters the workspace gets the *course files* the notebooks link to, at the same
relative paths as in the source tree (``notebooks/sources.md`` and ``notebooks/assets`` are links
to ``docs/sources.md`` and ``assets/``)::

    workspace/NN_topic/NN_topic.ipynb      the learner's copy: never touched once it exists
    workspace/sources.md                   docs/sources.md (the chapters link ``../sources.md``)
    workspace/assets/figures/*.svg         assets/figures/ (``../assets/figures/NAME.svg``)

A course file is created when missing and *refreshed* when the course has a newer version, but
only if the learner's file is still byte for byte what the course last wrote there (its SHA-256
is recorded in ``workspace/.lessonlib/course-files.json``). A file the learner changed, or one
the record does not vouch for, is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import nbformat

from lessonlib.cache import atomic_write

ROOT = Path(__file__).resolve().parent.parent
#: Extra Jupyter configuration of the learner's lab (``make lab`` puts it on
#: ``JUPYTER_CONFIG_PATH``): nbgrader's instructor tools and JupyterLab's news are switched off.
LEARNER_JUPYTER_CONFIG = ROOT / "assets" / "jupyter"
#: Where ``place_course_files`` records what it wrote, relative to the workspace.
COURSE_FILES_RECORD = Path(".lessonlib") / "course-files.json"


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


def course_files(root: Path = ROOT) -> dict[str, Path]:
    """The files the notebooks link to, by their path relative to the workspace (``sources.md``,
    ``assets/figures/NAME``); only those that exist in ``root``."""
    files = {"sources.md": root / "docs" / "sources.md"}
    figures = root / "assets" / "figures"
    if figures.is_dir():
        files |= {f"assets/figures/{p.name}": p for p in sorted(figures.iterdir()) if p.is_file()}
    return {rel: src for rel, src in files.items() if src.is_file()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _through_a_link(workspace: Path, rel: str) -> bool:
    """True if a folder on the way from ``workspace`` to ``rel`` is a symbolic link (or not a
    folder): writing there would write somewhere the learner pointed it, not into the workspace."""
    folder = workspace
    for part in Path(rel).parts[:-1]:
        folder = folder / part
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            return True
    return False


def _write_new(dest: Path, data: bytes) -> bool:
    """Write ``dest`` only if it does not exist (temporary file + hard link); True if written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, dest)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def place_course_files(workspace: Path, root: Path = ROOT) -> dict[str, list[Path]]:
    """Create or refresh the course files in ``workspace``; never overwrite a learner's change.

    Returns the paths ``created``, ``updated`` (an older course version the learner never
    edited, replaced) and ``kept`` (different from the course's version and not vouched for by
    the record: the learner's, left as it is).
    """
    record_path = workspace / COURSE_FILES_RECORD
    try:
        record = json.loads(record_path.read_text())
        record = record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        record = {}
    done: dict[str, list[Path]] = {"created": [], "updated": [], "kept": []}
    for rel, src in course_files(root).items():
        data, dest = src.read_bytes(), workspace / rel
        new = _sha256(data)
        if _through_a_link(workspace, rel):
            done["kept"].append(dest)
            continue
        if not os.path.lexists(dest):
            if _write_new(dest, data):
                done["created"].append(dest)
                record[rel] = new
            continue
        if dest.is_symlink() or not dest.is_file():
            done["kept"].append(dest)  # something the learner put there: not ours to touch
            continue
        current = _sha256(dest.read_bytes())
        if current == new:
            record[rel] = new
        elif record.get(rel) == current:  # still exactly what the course wrote: refresh it
            with atomic_write(dest) as f:
                f.write(data)
            record[rel] = new
            done["updated"].append(dest)
        else:
            done["kept"].append(dest)
    with atomic_write(record_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(record, indent=1, sort_keys=True))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the learner's workspace copies.")
    parser.add_argument("workspace", nargs="?", default=str(ROOT / "workspace"))
    args = parser.parse_args(argv)
    workspace = Path(args.workspace)
    created = ensure_workspace(workspace)
    for path in created:
        print(f"created {path}")
    if not created:
        print(
            f"workspace {args.workspace} is up to date (existing notebooks are never overwritten)"
        )
    files = place_course_files(workspace)
    for path in files["created"]:
        print(f"added course file {path}")
    for path in files["updated"]:
        print(f"updated course file {path} (you had not changed it)")
    for path in files["kept"]:
        print(f"kept your version of {path} (the course's version differs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
