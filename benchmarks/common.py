"""Shared helpers for the benchmarks: timing with repeats and medians, the machine, figures.

A chapter's ``benchmarks/chNN.py`` exposes ``bench() -> dict``. ``run.py`` renders any dict (it
flattens numeric leaves, guessing the unit from the key: ``*_ms``, ``*_s``, ``*ratio``/``speedup``),
and renders best a dict ``{"figures": [figure(...), ...], "notes": [...]}`` built with ``figure``.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def timings_ms(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall times of ``repeats`` calls of ``fn`` (after ``warmup`` untimed calls), in ms.

    ``fn`` must block until its result is ready (e.g. return numpy arrays, or call
    ``jax.block_until_ready``), or the time of asynchronous dispatch is measured instead.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def figure(
    key: str,
    label: str,
    value: float | None,
    unit: str,
    *,
    target: str | None = None,
    ok: bool | None = None,
    kind: str = "time",
    note: str = "",
) -> dict:
    """One reported number. ``kind`` is "ratio" (shown first), "time", "slider", "browser",
    "notebook", "import", "throughput" or "budget"; ``ok`` says whether ``target`` is met (None: no target).
    ``key`` is the stable name under which the next run finds this figure to compare with."""
    return {
        "key": key,
        "label": label,
        "value": None if value is None else float(value),
        "unit": unit,
        "target": target,
        "ok": ok,
        "kind": kind,
        "note": note,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU model and cores, accelerator, library versions: the context of every figure."""
    import jax

    dev = jax.devices()[0]
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_device": dev.platform
        if getattr(dev, "device_kind", dev.platform) == dev.platform
        else f"{dev.platform}: {dev.device_kind}",
        "platform": dev.platform,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_device"] = (
            f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
        )
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def slider_values(widget, n: int = 6) -> list:
    """Up to ``n`` values spread over a slider's range (its options, its log range, its steps)."""
    import numpy as np

    if hasattr(widget, "options"):
        opts = list(widget.options)
        return [opts[i] for i in sorted(set(np.linspace(0, len(opts) - 1, n).round().astype(int)))]
    if type(widget).__name__ == "FloatLogSlider":
        return [float(widget.base**e) for e in np.linspace(widget.min, widget.max, n)]
    grid = np.linspace(widget.min, widget.max, n)
    if type(widget).__name__ == "IntSlider":
        return sorted({int(v) for v in grid.round()})
    return sorted({float(np.round(v / widget.step) * widget.step) for v in grid})


def panel_slider_figures(
    chapter: str, panels: dict, *, repeats: int, target_ms: float, n: int = 6
) -> list[dict]:
    """Every slider of every panel moved with ``Panel.update``: first visits of ``n`` values,
    then ``repeats`` revisits in reverse order; one figure per slider, the median of all moves,
    with first visits and revisits apart in its note. The slider is put back afterwards."""
    figs = []
    for pname, panel in panels.items():
        for cname, control in panel.controls.items():
            values, original = slider_values(control, n), control.value
            first = [panel.update(**{cname: v}) for v in values]
            again = [panel.update(**{cname: v}) for _ in range(repeats) for v in values[::-1]]
            panel.update(**{cname: original})
            med = median(first + again)
            figs.append(
                figure(
                    f"ch{chapter}.slider.{pname}.{cname}_ms",
                    f"{chapter}: panel_{pname} {cname} slider (median of {len(first + again)} moves)",
                    med,
                    "ms",
                    target=f"<= {target_ms:g} ms",
                    ok=med <= target_ms,
                    kind="slider",
                    note=f"first visits: median {median(first):.0f}, max {max(first):.0f} ms; "
                    f"revisits: median {median(again):.0f} ms",
                )
            )
    return figs


def run_parts(parts, repeats: int) -> dict:
    """A chapter module's ``bench()`` result: each ``part(repeats) -> (figures, notes)`` in turn."""
    figs, notes = [], []
    for part in parts:
        f, n = part(repeats)
        figs += f
        notes += n
    return {"figures": figs, "notes": notes}
