"""``assets/``: the committed diagrams are exactly what ``tools/make_assets.py`` draws, each is
shown by a chapter, and the learner's lab configuration switches off every nbgrader tool the
installed nbgrader provides (the lab itself is tried in ``tests/browser/test_learner_lab.py``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_core.paths import ENV_CONFIG_PATH, jupyter_path

from lessonlib.grading.course import ROOT, chapters
from lessonlib.workspace import LEARNER_JUPYTER_CONFIG

sys.path.insert(0, str(ROOT / "tools"))
import make_assets  # noqa: E402

FIGURES = ROOT / "assets" / "figures"


@pytest.mark.parametrize("name", sorted(make_assets.FIGURES_BY_NAME))
def test_committed_figure_is_what_the_script_draws(name):
    drawn = make_assets.render(make_assets.FIGURES_BY_NAME[name])
    assert drawn == make_assets.render(make_assets.FIGURES_BY_NAME[name]), "not deterministic"
    path = FIGURES / name
    assert path.is_file(), f"{path} is missing: run `make assets` and commit it"
    assert path.read_bytes() == drawn, (
        f"{path} differs from tools/make_assets.py: run `make assets`"
    )


def test_every_figure_comes_from_the_script_and_is_shown():
    on_disk = {p.name for p in FIGURES.iterdir()}
    assert on_disk == set(make_assets.FIGURES_BY_NAME), "figures not made by tools/make_assets.py"
    shown = set()
    for name in chapters(ROOT):
        nb = nbformat.read(ROOT / "notebooks" / name / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                shown |= set(re.findall(r"\]\(\.\./assets/figures/([^)\s]+)\)", cell.source))
    assert on_disk <= shown, f"figures no chapter shows: {sorted(on_disk - shown)}"


def test_check_mode_reports_a_stale_figure(tmp_path, capsys):
    assert make_assets.main(["--out", str(tmp_path)]) == 0
    assert make_assets.main(["--out", str(tmp_path), "--check"]) == 0
    stale = tmp_path / "ch02_inverted_dropout.svg"
    stale.write_bytes(stale.read_bytes() + b"\n")
    assert make_assets.main(["--out", str(tmp_path), "--check"]) == 1
    assert "ch02_inverted_dropout.svg" in capsys.readouterr().out


def _installed_nbgrader_plugins() -> set[str]:
    """Plugin ids in the installed nbgrader JupyterLab extension's code."""
    ids = set()
    for base in jupyter_path("labextensions"):
        static = Path(base) / "@jupyter" / "nbgrader" / "static"
        for js in static.glob("*.js"):
            ids |= set(re.findall(r'"(@jupyter/nbgrader:[\w-]+)"', js.read_text(errors="replace")))
    return ids


def _installed_nbgrader_server_extensions() -> set[str]:
    names = set()
    for base in ENV_CONFIG_PATH:
        for path in (Path(base) / "jupyter_server_config.d").glob("*.json"):
            exts = json.loads(path.read_text()).get("ServerApp", {}).get("jpserver_extensions", {})
            names |= {name for name, on in exts.items() if on and name.startswith("nbgrader")}
    return names


def test_learner_config_disables_every_nbgrader_tool():
    plugins = _installed_nbgrader_plugins()
    assert {"@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader"} <= plugins
    page = json.loads((LEARNER_JUPYTER_CONFIG / "labconfig" / "page_config.json").read_text())
    disabled = {k for k, v in page["disabledExtensions"].items() if v}
    assert plugins <= disabled, f"nbgrader plugins the learner would see: {plugins - disabled}"
    assert "@jupyterlab/apputils-extension:announcements" in disabled
    stale = {d for d in disabled if d.startswith("@jupyter/nbgrader:")} - plugins
    assert not stale, f"no such nbgrader plugin (renamed?): {stale}"

    server = json.loads((LEARNER_JUPYTER_CONFIG / "jupyter_server_config.json").read_text())
    exts = server["ServerApp"]["jpserver_extensions"]
    installed = _installed_nbgrader_server_extensions()
    assert "nbgrader.server_extensions.formgrader" in installed
    assert {name: False for name in installed} == {name: exts.get(name) for name in installed}
    assert server["LabApp"]["news_url"] is None
    assert server["LabApp"]["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"
