"""Chapter 03 benchmark: the kernel-side update time of the chapter's two slider panels.

The panels are built exactly as the notebook builds them (``lessonlib.demos.ch03_batch_norm``,
same settings):

- ``panel_batch_size``: the slider indexes a precomputed ghost-batch sweep (8 statistics batch
  sizes trained in one vmapped ``train.sweep`` call), so a move only redraws;
- ``panel_lr``: every move retrains the network without BN and the network with BN live
  (``train.fit`` with a traced learning rate, no recompilation) and redraws.

``bench()`` moves each slider over its range ``repeats`` times with ``Panel.update`` and reports
the median time per slider (target <= 80 ms), plus the one-off cost of building the panels and
whether any slider move compiled something new.
"""

from __future__ import annotations

import time

import numpy as np
from common import figure, median

from lessonlib import data, train
from lessonlib.demos import ch03_batch_norm as bn_demo

TARGET_MS = 80.0
LR_VALUES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def build_panels() -> dict:
    """The notebook's two panels, built from the same pieces (no notebook execution)."""
    ds = data.digits()
    sweep_run = bn_demo.batch_size_sweep(ds, list(bn_demo.BATCH_SIZES), **bn_demo.SWEEP)
    samples = bn_demo.batch_mean_samples(ds, sweep_run, list(bn_demo.BATCH_SIZES))
    nets = bn_demo.lr_models(bn_demo.LR_SIZES)
    return {
        "batch_size": bn_demo.batch_size_panel(ds, sweep_run, list(bn_demo.BATCH_SIZES), samples),
        "lr": bn_demo.lr_panel(
            ds, nets, epochs=bn_demo.LR_EPOCHS, batch_size=bn_demo.LR_BATCH, lr=1.0
        ),
    }


def bench(*, repeats: int = 3) -> dict:
    start = time.perf_counter()
    panels = build_panels()
    build_s = time.perf_counter() - start
    moves = {"batch_size": list(bn_demo.BATCH_SIZES), "lr": list(LR_VALUES)}
    compiles = train.compile_count()
    times = {}
    for name, values in moves.items():
        panel = panels[name]
        panel.update(**{name: values[0]})  # warm: first blit builds the background
        times[name] = [panel.update(**{name: v}) for _ in range(repeats) for v in values]
    recompiled = train.compile_count() - compiles
    figs = [
        figure(
            f"ch03.slider.{name}_ms",
            f"03 batch norm: {name} slider (median of {len(t)} moves)",
            median(t),
            "ms",
            target=f"<= {TARGET_MS:g} ms",
            ok=median(t) <= TARGET_MS,
            kind="slider",
            note=f"max {max(t):.0f} ms",
        )
        for name, t in times.items()
    ]
    figs.append(
        figure("ch03.panels.build_s", "03: build both panels (sweep + compiles)", build_s, "s")
    )
    notes = [
        f"Slider moves compiled {recompiled} new program(s) (expected 0).",
        "batch_size indexes a precomputed 8-run ghost-batch sweep; lr retrains two 64-64-10 "
        f"MLPs on digits ({bn_demo.LR_EPOCHS} epochs, batch {bn_demo.LR_BATCH}) per move.",
        "per-move ms: " + ", ".join(f"{k}: {np.round(v, 1).tolist()}" for k, v in times.items()),
    ]
    return {"figures": figs, "notes": notes}


if __name__ == "__main__":
    import json

    print(json.dumps(bench(), indent=1))
