"""What the learner's lab shows, and what the instructor's lab shows instead.

The learner's lab (``make lab``; the session's ``lab_server``) must show none of nbgrader's tools
— no Nbgrader menu, no "Create Assignment" sidebar, no Validate button, no formgrader pages — and
no JupyterLab news pop-up; a chapter's figure and its link to the course's sources must work. The
instructor's lab (``make instructor-lab``, started here on a copy of the course) must show the
nbgrader tools. Screenshots: ``artifacts/browser/learner-lab*.png``, ``instructor-lab*.png``.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from lessonlib.grading.course import ROOT as COURSE_ROOT

from .conftest import chapters, course_root
from .lab import TOKEN, LabPage, LabServer

NBGRADER_PLUGINS = {
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:menu",
    "@jupyter/nbgrader:validate-assignment",
}
NBGRADER_PAGES = ("/formgrader", "/formgraders")


def _chapter_with_figure() -> str:
    """The first chapter whose markdown shows a figure from assets/ (else the first chapter)."""
    for name in chapters():
        text = (course_root() / "notebooks" / name / f"{name}.ipynb").read_text()
        if "../assets/figures/" in text:
            return name
    return chapters()[0]


def _ui(page) -> dict:
    """The parts of the lab's window where nbgrader's tools would appear."""
    return {
        "menus": page.locator(".lm-MenuBar-itemLabel").all_inner_texts(),
        "sidebar": page.locator(".jp-SideBar .lm-TabBar-tab").evaluate_all(
            "els => els.map(e => [e.dataset.id || '', e.getAttribute('title') || '', e.innerText])"
        ),
        "toolbar": page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar")
        .first.inner_text()
        .split("\n"),
        "toasts": page.locator(".Toastify__toast").all_inner_texts(),
    }


def test_learner_lab_has_no_nbgrader_tools_and_no_news(browser, lab_server, artifacts):
    config = lab_server.page_config()
    disabled = set(config.get("disabledExtensions", []))
    assert NBGRADER_PLUGINS <= disabled, f"enabled for the learner: {NBGRADER_PLUGINS - disabled}"
    assert config.get("news", {}).get("disabled") is True
    for path in NBGRADER_PAGES:
        assert lab_server.get(path)[0] == 404, f"{path} is served in the learner's lab"

    name = _chapter_with_figure()
    lab = LabPage(browser.new_page(), lab_server, artifacts)
    try:
        lab.open(f"{name}/{name}.ipynb")
        time.sleep(3)  # time for a late plugin or a news toast to show up
        ui = _ui(lab.page)
        assert "Nbgrader" not in ui["menus"], ui["menus"]
        sidebar = " ".join(" ".join(tab) for tab in ui["sidebar"])
        assert not re.search(r"nbgrader|Create Assignment", sidebar, re.I), ui["sidebar"]
        assert "Validate" not in ui["toolbar"], ui["toolbar"]
        assert not any(re.search(r"news|update", t, re.I) for t in ui["toasts"]), ui["toasts"]
        assert lab.page.get_by_text("Create Assignment").count() == 0

        # the chapter's figures load from the workspace's assets/ (naturalWidth 0: broken image)
        images = lab.page.evaluate(
            "() => [...document.querySelectorAll('.jp-RenderedMarkdown img')]"
            ".map((i) => [i.getAttribute('src'), i.naturalWidth])"
        )
        figures = [(src, w) for src, w in images if "/assets/figures/" in src]
        if (
            "../assets/figures/"
            in (course_root() / "notebooks" / name / f"{name}.ipynb").read_text()
        ):
            assert figures and all(w > 0 for _, w in figures), images
        lab.notebook.locator(".jp-RenderedMarkdown img").first.scroll_into_view_if_needed()
        lab.screenshot("learner-lab")

        # the link to the course's sources opens them, rendered
        lab.notebook.locator(".jp-RenderedMarkdown a[href*='sources.md']").first.click()
        viewer = lab.page.locator(".jp-MarkdownViewer:not(.lm-mod-hidden) .jp-RenderedMarkdown")
        viewer.locator("h1").first.wait_for(timeout=30_000)
        assert viewer.locator("h1").first.inner_text().strip() == "The course's sources"
        lab.screenshot("learner-lab-sources")
    finally:
        lab.page.close()
        lab_server.shutdown_kernels()


@pytest.fixture(scope="module")
def instructor_server(chromium, tmp_path_factory):
    """``make instructor-lab`` on a copy of the course (nbgrader writes its gradebook there)."""
    del chromium
    course = tmp_path_factory.mktemp("instructor") / "course"
    shutil.copytree(course_root() / "notebooks", course / "notebooks", symlinks=True)
    for rel in ("nbgrader_config.py", "docs/sources.md", "assets"):
        src = COURSE_ROOT / rel
        if src.is_dir():
            shutil.copytree(src, course / rel)
        elif src.is_file():
            (course / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, course / rel)
    scratch = tmp_path_factory.mktemp("instructor-lab")
    server = LabServer(course, scratch, instructor=True)
    yield server
    server.stop()


def test_instructor_lab_has_the_nbgrader_tools(browser, instructor_server, artifacts):
    config = instructor_server.page_config()
    assert not NBGRADER_PLUGINS & set(config.get("disabledExtensions", []))
    for path in NBGRADER_PAGES:
        assert instructor_server.get(path)[0] == 200, f"{path} is missing for the instructor"

    name = chapters()[0]
    lab = LabPage(browser.new_page(), instructor_server, artifacts)
    try:
        lab.open(f"notebooks/{name}/{name}.ipynb")
        ui = _ui(lab.page)
        assert "Nbgrader" in ui["menus"], ui["menus"]
        assert any("Create Assignment" in " ".join(tab) for tab in ui["sidebar"]), ui["sidebar"]
        assert "Validate" in ui["toolbar"], ui["toolbar"]
        lab.menu("Nbgrader")
        items = lab.page.locator(".lm-Menu:not(.lm-mod-hidden) .lm-Menu-itemLabel")
        assert {"Formgrader", "Course List"} <= set(items.all_inner_texts())
        lab.screenshot("instructor-lab")
        lab.page.keyboard.press("Escape")
    finally:
        lab.page.close()
        instructor_server.shutdown_kernels()


def test_formgrader_lists_the_chapters(instructor_server):
    """The formgrader of the instructor's lab reads the course (nbgrader_config.py). It also
    lists ``assets`` (``notebooks/assets`` is a folder to nbgrader; docs/instructors.md)."""
    status, html = instructor_server.get(f"/formgrader?token={TOKEN}")
    assert status == 200 and "formgrader" in html.lower()
    assignments = instructor_server.api("/formgrader/api/assignments", timeout=180)
    names = {a["name"] for a in assignments}
    assert set(chapters()) <= names, names
