"""``make bench``: every performance figure of the course in one run, side by side, ratios first.

What is measured (each with repeats, reported as medians):

1. each chapter's ``benchmarks/chNN.py`` ``bench()``: the chapter's training demo with lessonlib vs
   a Dive-into-Deep-Learning-style eager PyTorch loop and a Python-loop JAX loop, and vmapped
   sweeps vs the same runs one by one (a chapter without such a module is noted in the table);
2. each notebook top to bottom (nbclient, the source notebook with solutions, in a fresh kernel),
   and then, in the same kernel, every slider of every ``panel_*`` panel moved over its range
   with ``Panel.update`` (the kernel side of a slider move: retrain or look up, then redraw);
3. the browser side: the time from a slider change to the new image in a real JupyterLab, from the
   Playwright harness ``tests/browser`` (run now, or read from ``artifacts/browser/`` with
   ``--skip-browser``);
4. ``import lessonlib`` in a fresh interpreter, and autograde throughput (``benchmarks/grading.py``);
5. the test budget: ``make test`` and ``make check`` as last run in this checkout, phase by phase
   (``tools/make_times.py`` records them; ``make bench`` does not run them itself).

The table goes to ``docs/benchmarks.md`` with the machine (CPU, cores, jax/torch versions and
devices); the figures of the previous run are read back from the JSON block at the end of that
file and shown beside the new ones, so regressions show. On an NVIDIA GPU (``pip install -e
".[cuda]"``) the same script runs and labels the figures with the device.

    python benchmarks/run.py [--repeats 5] [--skip-browser] [--only ch01,notebooks] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from common import figure, machine, median  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BROWSER_JSON = ROOT / "artifacts" / "browser" / "slider_latency.json"
JSON_START, JSON_END = "<!-- benchmark-figures", "-->"
SLIDER_TARGET_MS, NOTEBOOK_TARGET_S = 80.0, 45.0
BROWSER_FIRST_MS, BROWSER_WORST_MS = 150.0, 300.0  # first visit: median, worst (issue targets)
SECTIONS = [
    ("ratio", "Ratios (higher is better)"),
    ("slider", "Slider updates, kernel side: retrain + redraw (`Panel.update`), per slider"),
    ("browser", "Slider change to new image in JupyterLab (headless Chromium), per slider"),
    ("notebook", "Notebooks top to bottom (nbclient, fresh kernel, solutions in)"),
    ("budget", "The test budget: `make test` and `make check` as last run in this checkout"),
    ("import", "Import time (fresh interpreter)"),
    ("throughput", "Autograde throughput"),
    ("time", "Timings behind the ratios"),
]


# --------------------------------------------------------------------------- chapters


def chapter_dirs() -> list[Path]:
    return sorted(
        p.parent for p in (ROOT / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name
    )


def chapter_modules() -> list[str]:
    names = {p.stem for p in HERE.glob("ch[0-9][0-9].py")}
    names |= {f"ch{d.name[:2]}" for d in chapter_dirs() if d.name[:2].isdigit()}
    return sorted(names)


def as_figures(prefix: str, result: dict) -> tuple[list[dict], list[str]]:
    """A module's ``bench()`` result as figures: its ``figures`` list, or its numeric leaves."""
    notes = [str(n) for n in result.get("notes", [])] if isinstance(result, dict) else []
    if isinstance(result, dict) and isinstance(result.get("figures"), list):
        return list(result["figures"]), notes
    figs = []

    def walk(path: list[str], value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k != "notes":
                    walk([*path, str(k)], v)
        elif isinstance(value, bool):
            return
        elif isinstance(value, int | float):
            key = ".".join(path)
            low = key.lower()
            if "ratio" in low or "speedup" in low or low.endswith("_x"):
                unit, kind = "x", "ratio"
            elif low.endswith("_ms"):
                unit, kind = "ms", "time"
            elif low.endswith("_s") or low.endswith("seconds"):
                unit, kind = "s", "time"
            elif "per_s" in low or "per_second" in low or "throughput" in low:
                unit, kind = "/s", "throughput"
            elif low.endswith("per_min"):
                unit, kind = "/min", "throughput"
            else:
                unit, kind = "", "time"
            figs.append(
                figure(f"{prefix}.{key}", f"{prefix}: {key}", float(value), unit, kind=kind)
            )

    walk([], result)
    return figs, notes


def run_module(name: str, label: str, *, repeats: int) -> tuple[list[dict], list[str]]:
    """``benchmarks/<name>.py``'s ``bench()``; a missing or failing module becomes a note."""
    if not (HERE / f"{name}.py").exists():
        return [], [f"{label}: no training comparison (the chapter has no benchmark module)."]
    start = time.perf_counter()
    try:
        module = importlib.import_module(name)
        takes_repeats = "repeats" in inspect.signature(module.bench).parameters
        result = module.bench(repeats=repeats) if takes_repeats else module.bench()
    except Exception as e:  # a broken chapter benchmark must not hide the others
        traceback.print_exc()
        return [], [f"{label}: `benchmarks/{name}.py` failed: {type(e).__name__}: {e}"]
    print(f"  {name}.bench() took {time.perf_counter() - start:.1f} s", flush=True)
    figs, notes = as_figures(name, result)
    return figs, [n if n.startswith(f"{name}:") else f"{name}: {n}" for n in notes]


# --------------------------------------------------------------------------- notebooks + sliders

# Runs in the notebook's kernel after its last cell: moves every slider of every panel_* over its
# range (forward, then back through the same values) with Panel.update and prints the timings.
SLIDER_PROBE = textwrap.dedent(
    """
    import json as _bj, numpy as _bnp
    def _bvalues(w, n=6):
        cls = type(w).__name__
        if hasattr(w, "_options_values"):
            opts = list(w._options_values)
            idx = sorted(set(_bnp.linspace(0, len(opts) - 1, min(n, len(opts))).round().astype(int)))
            return [opts[i] for i in idx]
        if "Slider" not in cls or not hasattr(w, "min"):
            return []
        if cls == "FloatLogSlider":
            return [float(w.base ** e) for e in _bnp.linspace(w.min, w.max, n)]
        vals = [w.min + round((v - w.min) / w.step) * w.step for v in _bnp.linspace(w.min, w.max, n)]
        return sorted(set(int(v) if cls.startswith("Int") else float(v) for v in vals))
    def _bcompiles():
        try:
            from lessonlib import train as _bt
            return _bt.compile_count()
        except Exception:
            return None
    _bout = {}
    for _bname, _bp in list(globals().items()):
        if not (_bname.startswith("panel_") and hasattr(_bp, "controls") and hasattr(_bp, "update")):
            continue
        for _bc, _bw in _bp.controls.items():
            _bvals = _bvalues(_bw)
            if not _bvals:
                continue
            _borig, _bc0, _bms, _berr = _bw.value, _bcompiles(), [], None
            try:
                from lessonlib.viz import neighbour as _bnb
                _bseen = {_borig, _bnb(_bw)}  # shown, or drawn when the panel warmed itself
            except Exception:
                _bseen = {_borig}
            _bfirst, _brev = [], []
            try:
                for _bv in _bvals + _bvals[::-1]:
                    _bt = _bp.update(**{_bc: _bv})
                    _bms.append(_bt)
                    (_brev if _bv in _bseen else _bfirst).append(_bt)
                    _bseen.add(_bv)
            except Exception as _be:
                _berr = f"{type(_be).__name__}: {_be}"
            finally:
                try:
                    _bp.update(**{_bc: _borig})
                except Exception:
                    pass
            _bc1 = _bcompiles()
            _bout[f"{_bname}.{_bc}"] = {
                "label": getattr(_bw, "description", _bc), "ms": _bms, "error": _berr,
                "first_ms": _bfirst, "revisit_ms": _brev,
                "compiles": None if _bc0 is None or _bc1 is None else _bc1 - _bc0,
            }
    print("SLIDER-PROBE " + _bj.dumps(_bout))
    """
)


def run_notebook(nb_path: Path, *, timeout: int = 300) -> dict:
    """Execute a notebook top to bottom in a fresh kernel, then probe its sliders there."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(nb_path.parent)}},
        allow_errors=False,
    )
    result = {"seconds": None, "kernel_start_s": None, "sliders": {}, "error": None}
    start = time.perf_counter()
    with client.setup_kernel():
        result["kernel_start_s"] = time.perf_counter() - start
        start = time.perf_counter()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except Exception as e:
            result["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"
            return result
        result["seconds"] = time.perf_counter() - start
        probe = nbformat.v4.new_code_cell(SLIDER_PROBE)
        nb.cells.append(probe)
        try:
            client.execute_cell(probe, len(nb.cells) - 1)
        except Exception as e:
            result["error"] = f"slider probe failed: {type(e).__name__}: {e}"
            return result
        text = "".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")
        match = re.search(r"^SLIDER-PROBE (.*)$", text, re.M)
        if match:
            result["sliders"] = json.loads(match.group(1))
    return result


def notebook_figures(chapters: list[Path]) -> tuple[list[dict], list[str]]:
    figs, notes = [], []
    for d in chapters:
        print(f"  notebook {d.name} ...", flush=True)
        r = run_notebook(d / f"{d.name}.ipynb")
        if r["error"]:
            notes.append(f"{d.name}: the notebook did not run: {r['error']}")
            continue
        figs.append(
            figure(
                f"{d.name}.notebook_s",
                d.name,
                r["seconds"],
                "s",
                target=f"< {NOTEBOOK_TARGET_S:g} s",
                ok=r["seconds"] < NOTEBOOK_TARGET_S,
                kind="notebook",
                note=f"kernel start {r['kernel_start_s']:.1f} s",
            )
        )
        if not r["sliders"]:
            notes.append(f"{d.name}: no `panel_*` slider panel found in the notebook.")
        for name, s in r["sliders"].items():
            if s["error"]:
                notes.append(f"{d.name} {name}: update failed: {s['error']}")
            if not s["ms"]:
                continue
            first, revisit = s.get("first_ms") or s["ms"], s.get("revisit_ms") or []
            extra = f"{len(first)} first visits, max {max(first):.0f} ms"
            if revisit:
                extra += f"; {len(revisit)} revisits, median {median(revisit):.0f} ms"
            if s["compiles"]:
                extra += f", {s['compiles']} compilations"
            figs.append(
                figure(
                    f"{d.name}.slider.{name}.first_median_ms",
                    f"{d.name} `{name}` ({s['label']}), first visits",
                    median(first),
                    "ms",
                    target=f"<= {SLIDER_TARGET_MS:g} ms",
                    ok=median(first) <= SLIDER_TARGET_MS,
                    kind="slider",
                    note=extra,
                )
            )
    return figs, notes


# --------------------------------------------------------------------------- browser


def browser_figures(run_harness: bool) -> tuple[list[dict], list[str]]:
    notes = []
    if run_harness:
        print("  browser harness (pytest tests/browser) ...", flush=True)
        env = dict(
            os.environ,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env.pop("LESSONLIB_BROWSER_CROWDED", None)  # alone: the latencies a learner sees
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "tests/browser"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - start
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
        if proc.returncode != 0:
            notes.append(
                f"the browser harness failed ({tail[0]}); browser figures may be incomplete."
            )
        suite = figure(
            "browser.suite_s",
            "browser test suite, whole (pytest tests/browser)",
            took,
            "s",
            kind="browser",
            note=tail[0],
        )
    else:
        suite = None
    if not BROWSER_JSON.exists():
        notes.append(
            "no browser measurements (artifacts/browser/slider_latency.json is missing: "
            "run `make test` or `benchmarks/run.py` without --skip-browser)."
        )
        return ([suite] if suite else []), notes
    data = json.loads(BROWSER_JSON.read_text())
    age = dt.datetime.fromtimestamp(BROWSER_JSON.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    if not run_harness:
        notes.append(f"browser figures read from artifacts/browser/slider_latency.json ({age}).")
    if data.get("crowded"):
        notes.append(
            "the browser figures were measured beside the unit tests (`make test` runs both at "
            "once): run `benchmarks/run.py` without --skip-browser for a learner's latencies."
        )
    per = {}
    for move in data.get("moves", []):
        per.setdefault((move["chapter"], move["panel"], move["control"], move["label"]), []).append(
            move
        )
    figs = []
    firsts, revisits, kernel_firsts = [], [], []
    for (chapter, panel, control, label), moves in per.items():
        first = [m for m in moves if m.get("visit", "first") == "first" and m["browser_ms"]]
        again = [m["browser_ms"] for m in moves if m.get("visit") == "revisit" and m["browser_ms"]]
        if not first:
            continue
        ms = [m["browser_ms"] for m in first]
        firsts += ms
        revisits += again
        kernel_firsts += [m["kernel_ms"] for m in first]
        note = f"first visit{'s' if len(ms) > 1 else ''}: kernel side {median([m['kernel_ms'] for m in first]):.0f} ms"
        if again:
            note += f"; revisit {median(again):.0f} ms"
        figs.append(
            figure(
                f"{chapter}.browser.{panel}.{control}.first_ms",
                f"{chapter} `{panel}.{control}` ({label}), first visit",
                median(ms),
                "ms",
                target=f"<= {BROWSER_WORST_MS:g} ms",
                ok=max(ms) <= BROWSER_WORST_MS,
                kind="browser",
                note=note,
            )
        )
    if firsts:
        summary = [
            ("browser.first.median_ms", "first visits, median", median(firsts), BROWSER_FIRST_MS),
            ("browser.first.max_ms", "first visits, worst", max(firsts), BROWSER_WORST_MS),
            (
                "browser.first.kernel_median_ms",
                "first visits, kernel side, median",
                median(kernel_firsts),
                SLIDER_TARGET_MS,
            ),
        ]
        if revisits:
            summary.append(
                ("browser.revisit.median_ms", "revisits, median", median(revisits), None)
            )
        for i, (key, label, value, target) in enumerate(summary):
            figs.insert(
                i,
                figure(
                    key,
                    f"all sliders ({len(per)} sliders, {len(firsts)} first visits, "
                    f"{len(revisits)} revisits): {label}",
                    value,
                    "ms",
                    target=None if target is None else f"<= {target:g} ms",
                    ok=None if target is None else value <= target,
                    kind="browser",
                ),
            )
    for chapter, seconds in data.get("run_all_s", {}).items():
        figs.append(
            figure(
                f"{chapter}.browser.run_all_s",
                f"{chapter}: Run All Cells in the browser",
                seconds,
                "s",
                target=f"< {NOTEBOOK_TARGET_S:g} s",
                ok=seconds < NOTEBOOK_TARGET_S,
                kind="browser",
            )
        )
    if suite:
        figs.append(suite)
    return figs, notes


# --------------------------------------------------------------------------- the test budget

MAKE_TIMES = ROOT / "artifacts" / "make-times.json"
BUDGETS = {"test": 20 * 60.0, "check": 3 * 60.0}  # issue 19: seconds on 2 cores


def budget_figures() -> tuple[list[dict], list[str]]:
    """``make test`` and ``make check`` as last run in this checkout (``tools/make_times.py``
    records them, install included): running them here would take half an hour."""
    try:
        runs = json.loads(MAKE_TIMES.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], ["no `make test` / `make check` times yet (artifacts/make-times.json)."]
    figs, notes = [], []
    for target, budget in BUDGETS.items():
        run = runs.get(target)
        if not isinstance(run, dict):
            notes.append(f"`make {target}` has not run in this checkout.")
            continue
        phases = ", ".join(f"{k} {v:g} s" for k, v in run.get("phases", {}).items())
        side = ", ".join(f"{k} {v:g} s" for k, v in run.get("side_by_side", {}).items())
        phases += f" (side by side: {side})" if side else ""
        if not run.get("complete"):
            notes.append(f"the last `make {target}` did not finish ({phases}): no time reported.")
            continue
        figs.append(
            figure(
                f"budget.make_{target}_s",
                f"make {target}, whole (install included), {run['cores']} cores",
                run["seconds"],
                "s",
                target=f"<= {budget / 60:g} min",
                ok=run["seconds"] <= budget,
                kind="budget",
                note=f"{run['finished']}, commit {run['commit']}, load {run['load_average']}; "
                f"{phases}",
            )
        )
    return figs, notes


# --------------------------------------------------------------------------- import time


def import_figures(repeats: int) -> list[dict]:
    """Import times measured inside fresh interpreters (interpreter start excluded)."""

    def fresh(code: str) -> float:
        timer = (
            f"import time; t = time.perf_counter(); {code}; print((time.perf_counter() - t) * 1000)"
        )
        times = []
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, "-c", timer], check=True, cwd=ROOT, capture_output=True, text=True
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
        return median(times)

    return [
        figure(key, label, fresh(code), "ms", kind="import")
        for key, code, label in (
            ("import.lessonlib_ms", "import lessonlib", "`import lessonlib`"),
            (
                "import.notebook_ms",
                "from lessonlib import data, models, train, viz",
                "`from lessonlib import data, models, train, viz` (a chapter's first cell)",
            ),
        )
    ]


# --------------------------------------------------------------------------- the document


def previous_run(path: Path) -> dict:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    start = text.rfind(JSON_START)
    if start < 0:
        return {}
    end = text.find(JSON_END, start)
    try:
        return json.loads(text[start + len(JSON_START) : end])
    except json.JSONDecodeError:
        return {}


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "x":
        return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x"
    if unit == "ms":
        return (
            f"{value:,.0f} ms"
            if value >= 100
            else f"{value:.2g} ms"
            if value < 1
            else f"{value:.1f} ms"
        )
    if unit == "s":
        return f"{value:.1f} s"
    if unit in ("/s", "/min"):
        return f"{value:,.1f}{unit}"
    return f"{value:.4g}{unit}"


def _change(new, old, unit: str) -> str:
    if new is None or old is None or old == 0:
        return ""
    ratio = new / old
    better = ratio > 1 if unit in ("x", "/s", "/min") else ratio < 1
    if 0.9 <= ratio <= 1.1:
        return "≈"
    return f"{'better' if better else 'worse'} ({ratio:.2f}x)"


def render(info: dict, figs: list[dict], notes: list[str], previous: dict, elapsed_s: float) -> str:
    prev = {f["key"]: f for f in previous.get("figures", [])}
    pinfo = previous.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run.py`); do not edit by hand. Every figure is a median",
        "over repeats, and all of them are measured side by side in one run. The machine is shared,",
        "so absolute times are noisy; the ratios are measured back to back and are the figures to",
        "compare. The previous run's figures are kept beside the new ones so regressions show.",
        "",
        f"- **This run:** {info['date']} on {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"jax {info['jax']} ({info['jax_device']}), torch {info.get('torch') or 'not installed'}"
        + (
            f" ({info.get('torch_device')}, {info.get('torch_threads')} threads)"
            if info.get("torch")
            else ""
        )
        + f"; load average at start {info.get('load_average', '?')}; the whole run took {elapsed_s:.0f} s.",
    ]
    if pinfo:
        lines.append(
            f"- **Previous run:** {pinfo.get('date', '?')} on {pinfo.get('cpu', '?')}, {pinfo.get('cores', '?')} cores, "
            f"jax {pinfo.get('jax', '?')} ({pinfo.get('jax_device', '?')}), torch {pinfo.get('torch') or 'not installed'}."
        )
    else:
        lines.append("- **Previous run:** none recorded.")
    for kind, title in SECTIONS:
        rows = [f for f in figs if f["kind"] == kind]
        if not rows:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            "| figure | this run | previous | change | target | notes |",
            "|---|---:|---:|---|---|---|",
        ]
        for f in rows:
            old = prev.get(f["key"], {}).get("value")
            target = f["target"] or ""
            if f["ok"] is not None:
                target = f"{'✔' if f['ok'] else '✘'} {target}"
            lines.append(
                f"| {f['label']} | {_fmt(f['value'], f['unit'])} | {_fmt(old, f['unit'])} "
                f"| {_change(f['value'], old, f['unit'])} | {target} | {f.get('note', '')} |"
            )
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += [
        "",
        "## How to read and extend this",
        "",
        "- `python benchmarks/run.py --skip-browser` reuses the browser figures of the last",
        "  `make test` (`artifacts/browser/slider_latency.json`, measured beside the unit tests);",
        "  without it the browser tests run alone; `--only ch01` runs one part.",
        "- A chapter adds `benchmarks/chNN.py` with `bench() -> dict`; a dict with a `figures` list",
        "  built by `benchmarks.common.figure` renders best, any other dict is shown by its numeric",
        "  leaves. Slider timings need nothing: every `panel_*` of every notebook is measured.",
        '- On a GPU machine (`pip install -e ".[cuda]"`) the same command labels the figures with the device.',
        "",
        JSON_START,
        json.dumps({"machine": info, "figures": figs, "notes": notes}, indent=1),
        JSON_END,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per figure (default 5)"
    )
    parser.add_argument(
        "--skip-browser",
        action="store_true",
        help="read the browser figures of the last run instead of running tests/browser",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated parts: chNN, notebooks, browser, import, grading, budget",
    )
    parser.add_argument(
        "--output", type=Path, default=DOC, help=f"markdown file (default {DOC.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    only = {p.strip() for p in args.only.split(",") if p.strip()}
    want = lambda part: not only or part in only  # noqa: E731

    started = time.perf_counter()
    info = machine() | {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    print("machine:", json.dumps(info), flush=True)
    figs, notes = [], []
    chapters = {f"ch{d.name[:2]}": d.name for d in chapter_dirs()}
    for name in chapter_modules():
        if want(name):
            print(f"{name}: training comparisons", flush=True)
            f, n = run_module(name, chapters.get(name, name), repeats=args.repeats)
            figs += f
            notes += n
    if want("grading"):
        print("grading: autograde throughput", flush=True)
        f, n = run_module("grading", "autograding", repeats=args.repeats)
        figs += [
            x | {"kind": "throughput"} if x["kind"] == "time" and x["unit"] == "/s" else x
            for x in f
        ]
        notes += n
    if want("import"):
        print("import time", flush=True)
        figs += import_figures(args.repeats)
    if want("notebooks"):
        print("notebooks top to bottom, then their sliders", flush=True)
        f, n = notebook_figures(chapter_dirs())
        figs += f
        notes += n
    if want("budget"):
        f, n = budget_figures()
        figs += f
        notes += n
    if want("browser"):
        print("browser", flush=True)
        f, n = browser_figures(run_harness=not args.skip_browser)
        figs += f
        notes += n

    if only:
        # A partial run keeps the other figures of the previous run, so the file stays complete.
        # A module part that ran replaces all of its old figures (a renamed one must not linger).
        old = previous_run(args.output)
        parts = ("grading", "import", "budget")
        rerun = tuple(f"{p}." for p in only if p.startswith("ch") or p in parts)
        new_keys = {g["key"] for g in figs}
        kept = [
            f
            for f in old.get("figures", [])
            if f["key"] not in new_keys and not f["key"].startswith(rerun)
        ]
        figs = kept + figs
    text = render(info, figs, notes, previous_run(args.output), time.perf_counter() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"\nwrote {args.output}")
    for f in figs:
        if f["kind"] == "ratio" or f["ok"] is False:
            flag = "" if f["ok"] is None else (" ok" if f["ok"] else f" MISSES {f['target']}")
            print(f"  {f['label']}: {_fmt(f['value'], f['unit'])}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
