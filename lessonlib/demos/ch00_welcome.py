"""Chapter 00's demo: your progress through the course, as a table that refreshes.

``progress_panel()`` shows, for every chapter of the course (attempted or not), your best score,
the number of times you graded it, the exercises still open and the date of your last attempt:
the same table as ``lessonlib progress`` in a terminal. The numbers come from the attempt log that
``lessonlib grade`` writes next to your chapters, ``workspace/.grades.sqlite``
(``lessonlib.grading.progress``); the table is read only, and *Refresh* reads the log again after
you grade a chapter.

>>> import tempfile
>>> rows = progress_rows(Path(tempfile.mkdtemp()) / ".grades.sqlite")  # nothing graded yet
>>> all(r["attempts"] == 0 and r["best"] is None for r in rows)
True
>>> "<table" in progress_html(rows) and rows[0]["chapter"] in progress_html(rows)
True
"""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets


def default_log() -> Path:
    """The attempt log of the workspace this notebook runs in: a chapter's kernel runs in
    ``workspace/NN_topic/``, and ``lessonlib grade`` logs to ``workspace/.grades.sqlite``."""
    return Path.cwd().resolve().parent / ".grades.sqlite"


def progress_rows(log: Path | None = None, root: Path | None = None) -> list[dict]:
    """The table's data: one row per chapter of the course ``root`` (the course this lessonlib
    belongs to by default) from the attempt log ``log`` (``default_log()``). See
    ``lessonlib.grading.progress.progress`` for the fields."""
    from lessonlib.grading.course import ROOT  # the grader's modules, loaded only when asked
    from lessonlib.grading.progress import progress

    return progress(ROOT if root is None else root, default_log() if log is None else log)


def _date(iso: str | None) -> str:
    return "–" if iso is None else iso[:16].replace("T", " ")


def progress_html(rows: list[dict]) -> str:
    """The rows as an HTML table; chapters never graded show "–" and all their exercises open."""
    esc = html.escape
    head = "".join(
        f"<th style='text-align:left;padding:2px 10px'>{h}</th>"
        for h in ("chapter", "best / max", "attempts", "still open", "last attempt")
    )
    body = []
    for r in rows:
        best = "–" if r["best"] is None else f"{r['best']:g}"
        done = r["exercises"] > 0 and not r["open"]
        still = ", ".join(r["open"]) if r["open"] else ("all passed ✔" if done else "–")
        cells = (r["chapter"], f"{best} / {r['max_points']:g}", r["attempts"], still)
        cells += (_date(r["last_attempt"]),)
        style = "color:#186a1d" if done else ""
        body.append(
            f"<tr style='{style}'>"
            + "".join(f"<td style='padding:2px 10px'>{esc(str(c))}</td>" for c in cells)
            + "</tr>"
        )
    graded = sum(1 for r in rows if r["attempts"])
    total = sum(r["best"] or 0.0 for r in rows)
    possible = sum(r["max_points"] for r in rows)
    foot = (
        f"<p>{graded} of {len(rows)} chapters graded; {total:g} / {possible:g} points "
        "(best per exercise).</p>"
    )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{foot}"


def progress_panel(log: Path | None = None, root: Path | None = None) -> widgets.VBox:
    """A *Refresh* button over the progress table; a log that cannot be read shows why."""
    table = widgets.HTML()
    button = widgets.Button(description="Refresh", icon="refresh", tooltip="read the log again")

    def refresh(_=None) -> None:
        try:
            table.value = progress_html(progress_rows(log, root))
        except Exception as e:  # an unreadable log or notebook: say so, keep the button
            table.value = f"<p>Cannot show your progress: {html.escape(str(e))}</p>"

    button.on_click(refresh)
    refresh()
    return widgets.VBox([button, table])
