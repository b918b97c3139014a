"""Chapter 04 benchmark: the chapter's slider panels and early stopping inside the compiled run.

- The three panels, built as the notebook builds them (``lessonlib.demos.ch04_early_stopping``):
  ``panel_stopping`` applies the early-stopping rule to a stored history (here the live problem's
  unregularized run: the cost is a lookup whatever the history); ``panel_retrain`` retrains the
  live MNIST-1D problem (hidden noise, shift, scaling: traced ``hp``) at every move;
  ``panel_max_norm`` projects a trained layer onto radius r and retrains with that constraint.
  Per slider: first visits (each value once) and revisits, medians, target <= 80 ms; and whether
  any move compiled something.
- Early stopping inside the one compiled run (``fit(..., early_stopping=...)``) against the loop a
  Keras user writes by hand: ``fit`` one epoch at a time (resumed with ``opt_state`` and
  ``first_epoch``), the monitored value read back and the rule checked in Python after every epoch.
  Both stop at the same epoch with the same parameters (checked); both compiled before timing.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from common import figure, median, panel_slider_figures, run_parts, timings_ms

from lessonlib import data, stopping, train
from lessonlib.demos import ch04_early_stopping as demo

TARGET_MS = 80.0
RACE = {"epochs": 60, "patience": 20}


def _slider_figures(repeats: int) -> tuple[list[dict], list[str]]:
    start = time.perf_counter()
    h = demo.live_fit().history
    history = {"val_loss": h["test_loss"], "test_loss": h["test_loss"], "test_acc": h["test_acc"]}
    panels = {
        "stopping": demo.stopping_panel(history, patience=10, min_delta=0.0),
        "retrain": demo.retrain_panel(),
        "max_norm": demo.max_norm_panel(r=1.0),
    }
    build_s = time.perf_counter() - start
    compiles, rule_cache = train.compile_count(), stopping._scan_jit._cache_size()
    figs = []
    figs += panel_slider_figures("04", panels, repeats=repeats, target_ms=TARGET_MS, n=5)
    recompiled = train.compile_count() - compiles + stopping._scan_jit._cache_size() - rule_cache
    figs.append(
        figure("ch04.panels.build_s", "04: the three panels, built and warmed", build_s, "s")
    )
    return figs, [f"Slider moves compiled {recompiled} new program(s) (expected 0)."]


def _race_data() -> data.Dataset:
    live, full = demo.live_data(), data.mnist1d()
    return data.Dataset(live.x_train, live.y_train, full.x_test[:200], full.y_test[:200],
                        live.x_test, live.y_test)  # fmt: skip


def _race_figures(repeats: int) -> tuple[list[dict], list[str]]:
    ds = _race_data()
    model, params = demo.live_model()
    hp = {"lr": demo.LIVE["lr"], "noise": 0.0, "shift": 0.0, "scale": 0.0, "r": demo.NO_CAP}
    kw = dict(key=jax.random.key(1), hp=hp, batch_size=demo.LIVE["batch_size"],
              optimizer=demo.adam, augment=demo.shift_and_scale, project=demo.project_max_norm)  # fmt: skip
    es = train.EarlyStopping(monitor="val_loss", patience=RACE["patience"])

    def inside():
        run = train.fit(model, params, ds, epochs=RACE["epochs"], early_stopping=es, **kw)
        return int(run.stop_epoch), jax.block_until_ready(run.params)

    def python_loop():  # Keras's rule by hand: wait counted before the strict improvement test
        p, opt_state, best, wait = params, None, np.inf, 0
        for e in range(RACE["epochs"]):
            run = train.fit(model, p, ds, epochs=1, opt_state=opt_state, first_epoch=e, **kw)
            p, opt_state = run.params, run.opt_state
            value, wait = float(run.history["val_loss"][0]), wait + 1
            if value < best:
                best, wait = value, 0
            elif wait >= RACE["patience"] and e > 0:
                return e, jax.block_until_ready(p)
        return -1, jax.block_until_ready(p)

    (stop_a, p_a), (stop_b, p_b) = inside(), python_loop()
    if stop_a != stop_b or stop_a < 0:
        raise AssertionError(f"the two loops should stop at the same epoch, got {stop_a}, {stop_b}")
    for a, b in zip(jax.tree.leaves(p_a), jax.tree.leaves(p_b), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    t_in = median(timings_ms(inside, repeats=repeats))
    t_loop = median(timings_ms(python_loop, repeats=repeats))
    return [
        figure(
            "ch04.early_stopping.python_loop_vs_compiled_ratio",
            f"04: early stopping in the compiled run vs a Python loop of 1-epoch fits "
            f"(stops after epoch {stop_a} of {RACE['epochs']})",
            t_loop / t_in,
            "x",
            kind="ratio",
            note=f"{t_in:.0f} ms vs {t_loop:.0f} ms, both compiled before timing",
        )
    ], []


def bench(*, repeats: int = 3) -> dict:
    return run_parts((_slider_figures, _race_figures), repeats)


if __name__ == "__main__":
    import json

    print(json.dumps(bench(repeats=1), indent=1, default=str))
