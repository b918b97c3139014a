"""The library's layout: core modules hold no chapter code and load no display libraries.

- Importing every core module (all of ``lessonlib/*.py`` but ``viz``) loads neither matplotlib nor
  ipywidgets, checked in a fresh interpreter; nor does it load ``lessonlib.demos``.
- No module outside ``viz.py``, ``demos/`` imports matplotlib or ipywidgets, and no core module
  imports ``lessonlib.demos`` (read from the source, so a lazy import inside a function counts).
- Every ``lessonlib/demos/chNN_topic.py`` belongs to the chapter ``notebooks/NN_topic/``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lessonlib

PACKAGE = Path(lessonlib.__file__).resolve().parent
ROOT = PACKAGE.parent
DISPLAY = ("matplotlib", "ipywidgets")
CORE = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "viz"))


def _imports(path: Path) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` in ``path`` names, at any depth
    (relative imports resolved against lessonlib)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = [node.module] if node.module else []
            if node.level:  # from . import x / from .mod import x, inside lessonlib
                package = ["lessonlib", *path.relative_to(PACKAGE).parent.parts]
                parts = package[: len(package) - node.level + 1] + parts
            base = ".".join(parts)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def test_core_modules_are_listed():
    assert {"data", "models", "layers", "optim", "train", "cache", "_checks"} <= set(CORE)
    assert not {"playground", "bn_demo", "surfaces", "uncertainty"} & set(CORE)


def test_importing_the_core_loads_no_display_library_and_no_demo():
    code = (
        "import importlib, json, sys\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module('lessonlib.' + name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{DISPLAY!r} or m.startswith('lessonlib.demos'))))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


def test_the_layout_check_can_fail():
    """The subprocess check above sees a display library when one is imported."""
    code = (
        "import sys, lessonlib.viz; print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["True", "True"], r.stderr


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts),
    ids=lambda p: p.relative_to(PACKAGE).as_posix(),
)
def test_only_viz_and_demos_import_display_libraries(path):
    rel = path.relative_to(PACKAGE)
    display = {n for n in _imports(path) if n.split(".")[0] in DISPLAY}
    if rel.as_posix() == "viz.py" or rel.parts[0] == "demos":
        return
    assert not display, f"{rel} imports {sorted(display)}: only viz.py and demos/ may"
    if len(rel.parts) == 1:  # a core module
        demos = {n for n in _imports(path) if n.startswith("lessonlib.demos")}
        assert not demos, f"core module {rel} imports {sorted(demos)}"


def test_every_demo_module_belongs_to_a_chapter():
    chapters = {p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir()}
    demos = sorted(p.stem for p in (PACKAGE / "demos").glob("*.py") if p.stem != "__init__")
    assert demos, "no chapter demos found"
    for name in demos:
        assert name.startswith("ch") and name[2:4].isdigit() and name[4] == "_", name
        assert name[2:] in chapters, f"demos/{name}.py has no chapter notebooks/{name[2:]}/"
