"""Drive a real JupyterLab in headless Chromium, the way a learner uses it.

``LabServer`` starts ``jupyter lab`` on loopback (its own free port, a fixed token, fresh settings,
workspaces and runtime directories, the learner's workspace as root) and stops exactly that
process. By default it is the learner's lab of ``make lab``: the course's extra Jupyter
configuration (``assets/jupyter``, on ``JUPYTER_CONFIG_PATH``) switches nbgrader's tools and
JupyterLab's news off, and nothing here switches them off a second time; ``instructor=True``
starts the lab of ``make instructor-lab`` instead (the environment's configuration, with nbgrader). ``LabPage`` wraps a Playwright page with the few learner actions the tests need: open a
notebook, Run All from the menu, wait for an idle kernel, move a slider by typing into its readout,
type into a cell, save and reload.

Selectors are those of JupyterLab 4.6 with ipywidgets 8: the visible notebook is
``.jp-NotebookPanel:not(.lm-mod-hidden)``, a slider is ``.widget-slider`` with a contenteditable
``.widget-readout``, a panel's plot is the ``img`` inside its ``.widget-output``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from lessonlib.workspace import LEARNER_JUPYTER_CONFIG

TOKEN = "lessonlib-browser-tests"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Settings a learner could set in Settings > Settings Editor; "none" keeps every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
# The instructor's lab has JupyterLab's defaults: keep its news pop-up out of the screenshots.
INSTRUCTOR_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}
INSTRUCTOR_FLAGS = [
    "--LabApp.news_url=",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# How JupyterLab marks an output written to stderr, a traceback included.
STDERR = "application/vnd.jupyter.stderr"


def chromium_path() -> str:
    """The system Chromium (Debian's ``chromium`` package); Playwright's download needs internet."""
    for candidate in (os.environ.get("LESSONLIB_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    raise FileNotFoundError(
        "Chromium is missing, so the browser tests cannot run. Install it with "
        "`sudo apt-get install -y chromium` (or run `make system-deps` as root), "
        "or point LESSONLIB_CHROMIUM at a Chromium binary."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """One ``jupyter lab`` process serving ``root_dir``; ``stop()`` ends only that process."""

    def __init__(self, root_dir: Path, scratch: Path, *, instructor: bool = False):
        self.root_dir = Path(root_dir)
        self.instructor = instructor
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "jupyter-lab.log"
        self.runtime_dir = scratch / "runtime"
        settings = scratch / "settings"
        for name, values in (LAB_SETTINGS | (INSTRUCTOR_SETTINGS if instructor else {})).items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        for sub in ("workspaces", "runtime", "config", "data", "ipython"):
            (scratch / sub).mkdir(exist_ok=True)
        bindir = str(Path(sys.executable).parent)
        env = dict(
            os.environ,
            PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
            JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
            JUPYTER_CONFIG_DIR=str(scratch / "config"),
            JUPYTER_DATA_DIR=str(scratch / "data"),
            IPYTHONDIR=str(scratch / "ipython"),
            PYTHONUNBUFFERED="1",
        )
        if instructor:
            env.pop("JUPYTER_CONFIG_PATH", None)
        else:  # exactly as `make lab` does
            extra = os.environ.get("JUPYTER_CONFIG_PATH")
            env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
                [str(LEARNER_JUPYTER_CONFIG), *([extra] if extra else [])]
            )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.workspaces_dir={scratch / 'workspaces'}",
            f"--LabApp.user_settings_dir={settings}",
            *(INSTRUCTOR_FLAGS if instructor else []),
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            cmd, cwd=self.root_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready(timeout=90)
        except BaseException:
            self.stop()
            raise

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def get(self, path: str, timeout: float = 30) -> tuple[int, str]:
        """``(status, body)`` of a page of the server, errors included (a 404 is an answer)."""
        req = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def page_config(self) -> dict:
        """The page configuration JupyterLab embeds in ``/lab`` (``jupyter-config-data``)."""
        status, html = self.get("/lab")
        found = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
        )
        if status != 200 or not found:
            raise RuntimeError(f"/lab answered {status} without a page config:\n{html[:2000]}")
        return json.loads(found.group(1))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("/api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {timeout} s:\n{self.log()}")

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """Stop every kernel of this server (frees the CPU between chapters)."""
        for kernel in self.api("/api/kernels"):
            try:
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=30)
            except urllib.error.HTTPError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.shutdown_kernels()
            except Exception:  # the server may already be going down
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


# --------------------------------------------------------------------------- in the page

# Records, with performance.now(), every key press and every new plot image under a panel, so the
# time from a slider change to the new image is measured inside the page.
_RECORDER = """
() => {
  if (window.__lessonlib) return;
  const rec = { keys: [], images: [] };
  window.__lessonlib = rec;
  document.addEventListener('keydown', (e) => {
    rec.keys.push({ key: e.key, t: performance.now() });
  }, true);
  const seen = new WeakSet();
  const scan = () => {
    document.querySelectorAll('.widget-output img').forEach((img) => {
      if (seen.has(img)) return;
      seen.add(img);
      rec.images.push({ t: performance.now(), src: img.currentSrc || img.src, el: img });
      new MutationObserver(() => {
        rec.images.push({ t: performance.now(), src: img.src, el: img });
      }).observe(img, { attributes: true, attributeFilter: ['src'] });
    });
  };
  new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  scan();
}
"""


class LabPage:
    """A Playwright page on the lab server with the learner's actions."""

    def __init__(self, page, server: LabServer, artifacts: Path):
        self.page, self.server, self.artifacts = page, server, artifacts

    # ---- navigation
    def open(self, relpath: str, *, reset: bool = True) -> None:
        self.relpath = relpath
        query = f"?reset&token={TOKEN}" if reset else f"?token={TOKEN}"
        self.page.goto(f"{self.server.url}/lab/tree/{relpath}{query}")
        self.notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
        self.wait_session(relpath, timeout=90)
        self.page.evaluate(_RECORDER)

    def wait_session(self, relpath: str, *, timeout: float) -> None:
        """Wait until the server has a kernel for ``relpath`` and both it and the page say idle.

        The page's indicator alone is not enough: it reads "idle" for a moment before the kernel
        session even exists, and a Run All sent then runs nothing.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                s["kernel"]["execution_state"]
                for s in self.server.api("/api/sessions")
                if s["path"] == relpath and s.get("kernel")
            ]
            if states == ["idle"] and self.kernel_status() == "idle":
                self.wait_kernel_idle(timeout=max(1.0, deadline - time.monotonic()))
                return
            time.sleep(0.2)
        raise TimeoutError(f"no idle kernel for {relpath} after {timeout} s")

    def reload(self) -> None:
        self.page.reload()
        self.notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
        self.wait_session(self.relpath, timeout=60)
        self.page.evaluate(_RECORDER)

    @property
    def notebook(self):
        return self.page.locator(NOTEBOOK)

    def screenshot(self, name: str, element=None) -> Path:
        """The window, or one element (scrolled into view), as ``artifacts/browser/<name>.png``."""
        path = self.artifacts / f"{name}.png"
        if element is None:
            self.page.screenshot(path=str(path))
        else:
            element.screenshot(path=str(path))
        return path

    # ---- kernel and running cells
    def kernel_status(self) -> str:
        indicator = self.notebook.locator(".jp-Notebook-ExecutionIndicator")
        if not indicator.count():
            return ""
        return indicator.first.get_attribute("data-status") or ""

    def wait_kernel_idle(self, *, timeout: float, settle: float = 0.3) -> None:
        """Wait until the kernel reports idle for ``settle`` seconds in a row."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            status = self.kernel_status()
            if status == "idle":
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= settle:
                    return
            else:
                idle_since = None
            time.sleep(0.05)
        raise TimeoutError(f"kernel not idle after {timeout} s (status {self.kernel_status()!r})")

    def menu(self, *path: str) -> None:
        """Click through the menu bar, e.g. ``menu("Run", "Run All Cells")``."""
        self.page.locator(".lm-MenuBar-itemLabel").get_by_text(path[0], exact=True).click()
        for label in path[1:]:
            menu = self.page.locator(".lm-Menu:not(.lm-mod-hidden) .lm-Menu-itemLabel")
            menu.get_by_text(label, exact=True).click()

    def prompts(self) -> list[str]:
        """The execution prompt of every code cell: "[3]:", "[*]:" (queued/running) or "[ ]:"."""
        return self.page.evaluate(
            """(selector) => [...document.querySelector(selector).querySelectorAll(
                '.jp-CodeCell .jp-InputArea-prompt')].map((p) => p.textContent.trim())""",
            NOTEBOOK,
        )

    def run_all(self, *, timeout: float = 60) -> float:
        """Run > Run All Cells, then wait until every code cell has run; return the seconds.

        Fails soon (10 s) if the run stopped early after a cell's error output: JupyterLab aborts the
        queued cells after an error in a cell not tagged ``raises-exception``, leaving their
        prompts empty.
        """
        start = time.monotonic()
        self.menu("Run", "Run All Cells")
        stopped_since = None
        while True:
            prompts = self.prompts()
            if prompts and all(re.fullmatch(r"\[\d+\]:?", p) for p in prompts):
                break
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                done = sum(bool(re.fullmatch(r"\[\d+\]:?", p)) for p in prompts)
                raise TimeoutError(
                    f"Run All did not finish in {timeout:g} s ({done} of {len(prompts)} code "
                    "cells ran)"
                )
            if elapsed > 2 and not any("*" in p for p in prompts):
                # Nothing queued or running. JupyterLab starts Run All's cells one at a time, so
                # this is also the moment between two cells, which lasted over 20 s on a busy
                # machine: only a pause after a cell's error output, with the kernel idle, is a
                # stop (a silent one runs into the timeout).
                stopped_since = stopped_since or time.monotonic()
                first = next(i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:?", p))
                culprit = self.notebook.locator(".jp-CodeCell").nth(max(first - 1, 0))
                failed = culprit.locator(f".jp-OutputArea-output[data-mime-type='{STDERR}']")
                grace = 10 if failed.count() else float("inf")
                if time.monotonic() - stopped_since > grace and self.kernel_status() == "idle":
                    raise AssertionError(
                        f"Run All stopped early: code cell {first} (counting code cells from 0) "
                        "and those after it did not run. The cell before it says:\n"
                        + culprit.locator(".jp-Cell-outputArea").inner_text()[-2000:]
                    )
            else:
                stopped_since = None
            time.sleep(0.1)
        self.wait_kernel_idle(timeout=max(1.0, timeout - (time.monotonic() - start)))
        return time.monotonic() - start

    def cells(self):
        return self.notebook.locator(".jp-Notebook .jp-Cell")

    def cell_output_text(self, index: int) -> str:
        return self.cells().nth(index).locator(".jp-Cell-outputArea").inner_text()

    def set_cell_source(self, index: int, text: str) -> None:
        """Replace a code cell's text as a learner would (click, select all, type)."""
        editor = self.cells().nth(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        # insert_text types the text as one input event: no auto-indent on the pasted lines.
        self.page.keyboard.insert_text(text)

    def cell_source(self, index: int) -> str:
        return self.cells().nth(index).locator(".cm-content").inner_text()

    def run_cell(self, index: int, *, timeout: float = 30) -> None:
        """Select a cell and press Shift+Enter; wait for its new execution count."""
        cell = self.cells().nth(index)
        prompt = cell.locator(".jp-InputArea-prompt")
        before = prompt.inner_text()
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = prompt.inner_text()
            if text != before and "*" not in text and text.strip("[]: \xa0"):
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"cell {index} did not finish within {timeout} s")
        self.wait_kernel_idle(timeout=timeout)

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "(nb) => !document.querySelector(nb + ' .jp-mod-dirty, .lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
            arg=NOTEBOOK,
            timeout=15_000,
        )

    # ---- slider panels
    def panels(self):
        """The slider panels: widget boxes holding sliders and a plot image."""
        return self.notebook.locator(
            ".jp-OutputArea-output .widget-vbox:has(.widget-slider):has(.widget-output img)"
        )

    def sliders(self):
        return self.panels().locator(".widget-slider")

    def slider_info(self, slider) -> dict:
        return {
            "label": slider.locator(".widget-label").first.inner_text().strip(),
            "readout": slider.locator(".widget-readout").inner_text().strip(),
        }

    def panel_image(self, panel) -> str:
        return panel.locator(".widget-output img").first.get_attribute("src") or ""

    def move_slider(self, panel, slider, *, value: str | None, key: str | None = None) -> None:
        """Type ``value`` into the slider's readout and press Enter, or press ``key`` on its handle."""
        if value is not None:
            readout = slider.locator(".widget-readout")
            readout.click()
            self.page.keyboard.press("Control+a")
            self.page.keyboard.insert_text(value)
            self.page.keyboard.press("Enter")
        else:
            slider.locator(".noUi-handle").first.focus()
            self.page.keyboard.press(key)

    def wait_new_image(self, panel, before: str, *, timeout: float = 20, settle: float = 0.4):
        """Wait until the panel's image differs from ``before`` and stays the same for ``settle``."""
        deadline = time.monotonic() + timeout
        last, since = before, None
        while time.monotonic() < deadline:
            src = self.panel_image(panel)
            if src != last:
                last, since = src, time.monotonic()
            elif src != before and since is not None and time.monotonic() - since >= settle:
                if self.kernel_status() == "idle":
                    return src
            time.sleep(0.03)
        raise TimeoutError(f"the plot did not change within {timeout} s")

    def latency_ms(self, key: str, new_src: str) -> float:
        """Page time from the last ``key`` press to the first image showing ``new_src``."""
        return self.page.evaluate(
            """([key, src]) => {
                const rec = window.__lessonlib;
                const presses = rec.keys.filter((k) => k.key === key);
                const t0 = presses[presses.length - 1].t;
                const hit = rec.images.find((i) => i.t >= t0 && i.src === src);
                return hit ? hit.t - t0 : null;
            }""",
            [key, new_src],
        )


# --------------------------------------------------------------------------- the kernel's view

PANELS_EXPR = (
    "__import__('json').dumps({name: {'controls': {c: [getattr(w, 'description', ''), w.value, type(w).__name__,"
    " bool(getattr(w, 'disabled', False))]"
    " for c, w in p.controls.items()}, 'updates': len(p.times_ms), 'last_ms': p.last_ms}"
    " for name, p in list(globals().items())"
    " if name.startswith('panel_') and hasattr(p, 'controls') and hasattr(p, 'times_ms')},"
    " default=str)"
)


class KernelProbe:
    """A second client on the notebook's kernel: reads the panels' state without printing.

    ``silent=True`` executions do not show in the notebook and do not advance its execution count.
    """

    def __init__(self, server: LabServer, notebook_path: str):
        from jupyter_client import BlockingKernelClient

        sessions = [s for s in server.api("/api/sessions") if s["path"] == notebook_path]
        if len(sessions) != 1:
            raise RuntimeError(f"expected one kernel session for {notebook_path}, got {sessions}")
        kernel_id = sessions[0]["kernel"]["id"]
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(server.runtime_dir / f"kernel-{kernel_id}.json"))
        self.client.start_channels()
        self.client.wait_for_ready(timeout=30)

    def panels(self) -> dict:
        msg_id = self.client.execute("", silent=True, user_expressions={"r": PANELS_EXPR})
        reply = self.client.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=30)
        result = reply["content"]["user_expressions"]["r"]
        if result.get("status") != "ok":
            raise RuntimeError(f"reading the panels failed: {result}")
        return json.loads(ast.literal_eval(result["data"]["text/plain"]))

    def close(self) -> None:
        self.client.stop_channels()
