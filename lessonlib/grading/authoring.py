"""The rules every source notebook's graded cells follow (checked by tests/test_authoring_rules.py).

They close the holes nbgrader leaves to authors: a test cell ending in a bare value gets full
credit in nbgrader, stderr output in a test cell scores 0, widgets in test cells break headless
grading, and a graded cell without a unique id or points silently becomes "manual grading".
"""

from __future__ import annotations

import ast

import nbformat

from lessonlib import exercises as lx

from .course import check_ids, is_test_cell, nbgrader_meta, parse

WIDGET_NAMES = {"ipywidgets", "widgets", "interact", "interactive", "display", "viz", "Panel"}


def _bare_expression(source: str) -> str | None:
    """The problem with the cell's last statement, if it is a bare expression other than a
    ``check(...)`` call."""
    try:
        tree = parse(source)
    except SyntaxError as e:
        return f"does not parse: {e}"
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return None
    node = tree.body[-1].value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check":
        return None
    return f"ends in a bare expression ({ast.unparse(node)[:40]}); nbgrader would score its value"


def _widget_use(source: str) -> str | None:
    try:
        tree = parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any("widget" in m for m in mods):
                return "imports widgets"
        if name in WIDGET_NAMES:
            return f"uses {name} (no widgets in test cells)"
    return None


def _stderr_writes(source: str) -> str | None:
    if "sys.stderr" in source or "warnings.warn" in source or "file=sys.stderr" in source:
        return "writes to stderr (nbgrader scores a test cell with stderr output 0)"
    return None


def lint_notebook(nb: nbformat.NotebookNode, *, name: str = "notebook") -> list[str]:
    """Every rule violation in one source notebook, as readable messages."""
    problems = []
    cell_ids = [c.get("id") for c in nb.cells]
    for cid in {c for c in cell_ids if cell_ids.count(c) > 1}:
        problems.append(f"{name}: cell id {cid!r} is not unique")
    grade_ids: dict[str, int] = {}
    checked: dict[str, list[str]] = {}
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        where = f"{name} cell {i}"
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not gid:
            problems.append(f"{where}: graded cell without a grade_id")
            continue
        where = f"{name} cell {gid!r}"
        grade_ids[gid] = grade_ids.get(gid, 0) + 1
        if not is_test_cell(cell):
            continue
        if "points" not in meta:
            problems.append(f"{where}: test cell without points")
        for check in (_bare_expression, _widget_use, _stderr_writes):
            msg = check(cell.source)
            if msg:
                problems.append(f"{where}: {msg}")
        ids = check_ids(cell.source)
        if not ids:
            problems.append(f'{where}: test cell calls no check("NN.id", ...)')
        exercises = []
        for eid in ids:
            checked.setdefault(eid, []).append(gid)
            try:
                exercises.append(lx.get(eid))
            except KeyError as e:
                problems.append(f"{where}: {e.args[0]}")
        if exercises and "points" in meta:
            want = sum(float(e.points) for e in exercises)
            if abs(float(meta["points"]) - want) > 1e-9:
                problems.append(f"{where}: points {meta['points']} but the spec says {want:g}")
    for gid, n in grade_ids.items():
        if n > 1:
            problems.append(f"{name}: grade_id {gid!r} is used by {n} cells")
    for eid, cells in checked.items():
        if len(set(cells)) > 1:
            problems.append(f"{name}: exercise {eid} is checked by several test cells {cells}")
    return problems


def unchecked_exercises(nb: nbformat.NotebookNode, chapter: str) -> list[str]:
    """Exercise ids of the chapter's spec that no test cell checks."""
    ids = {eid for c in nb.cells if is_test_cell(c) for eid in check_ids(c.source)}
    return [e.id for e in lx.chapter_exercises(chapter) if e.id not in ids]
