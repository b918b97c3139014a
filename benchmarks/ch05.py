"""Chapter 05 benchmark: the chapter's slider panels and its one-call training runs.

- The three panels, built as the notebook builds them (``lessonlib.demos.ch05_initialization``):
  ``panel_vanishing`` recomputes a 50-layer forward and backward pass per move with one compiled
  program (depth, activation, initializer and weight scale are traced); ``panel_dead`` and
  ``panel_clipping`` index precomputed sweeps. Median per slider over ``repeats`` passes, first
  visit and revisit, target <= 80 ms; and whether any move compiled something.
- The initializer race: 12 runs (4 initializers x 3 seeds) as one ``train.sweep(stacked=
  True)`` against the same 12 runs as ``train.fit`` one by one (both compiled before timing).
- What a traced panel saves: one slider move of ``panel_vanishing`` against compiling the
  same statistics for a new (depth, activation) with both static, as a naive panel would.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from common import figure, median, panel_slider_figures, run_parts, timings_ms

from lessonlib import models, train
from lessonlib.demos import ch05_initialization as demo

TARGET_MS = 80.0


def _slider_figures(repeats: int) -> tuple[list[dict], list[str]]:
    ds = demo.standardized_digits()
    start = time.perf_counter()
    jobs = demo.start_experiments(ds)
    panels = {
        "vanishing": demo.vanishing_panel(depth=30, activation="relu", init="Glorot"),
        "dead": demo.dead_units_panel(jobs["dead"].result(), lr=0.1),
        "clipping": demo.clipping_panel(jobs["clipping"].result()[0], threshold=3.981),
    }
    build_s = time.perf_counter() - start
    compiles, panel_cache = train.compile_count(), demo._panel_setup()._cache_size()
    figs, notes = [], []
    figs += panel_slider_figures("05", panels, repeats=repeats, target_ms=TARGET_MS, n=6)
    recompiled = (train.compile_count() - compiles) + (
        demo._panel_setup()._cache_size() - panel_cache
    )
    figs.append(
        figure("ch05.panels.build_s", "05: the three trainings + three panels", build_s, "s")
    )
    notes.append(f"Slider moves compiled {recompiled} new program(s) (expected 0).")
    return figs, notes


def _race_figures(repeats: int) -> tuple[list[dict], list[str]]:
    ds = demo.standardized_digits()
    draws = [
        models.mlp([64] + [32] * demo.DEEP["depth"] + [10], init=draw).init(k)[0]
        for draw in demo.RACE_INITIALIZERS.values()
        for k in jax.random.split(jax.random.key(0), demo.RACE_SEEDS)
    ]
    params, key = demo.stack_params(draws), jax.random.key(1)
    net = demo.deep_mlp()
    kw = dict(epochs=demo.DEEP["epochs"], batch_size=demo.DEEP["batch_size"])

    def swept():
        demo.train_deep(ds, params, lr=demo.RACE_LR, clip=np.inf, key=key)

    def one_by_one():
        for p in draws:
            hp = {"lr": demo.RACE_LR, "clip": np.inf}
            jax.block_until_ready(
                train.fit(net, p, ds, key=key, hp=hp, optimizer=demo.sgd_clipped, **kw).params
            )

    t_sweep = median(timings_ms(swept, repeats=repeats))
    t_loop = median(timings_ms(one_by_one, repeats=max(1, repeats // 2)))
    figs = [
        figure(
            "ch05.race.sweep_vs_fit_ratio",
            "05: 12-run initializer race, one vmapped sweep vs 12 train.fit calls",
            t_loop / t_sweep,
            "x",
            kind="ratio",
            note=f"{t_sweep:.0f} ms vs {t_loop:.0f} ms, both compiled before timing",
        )
    ]
    return figs, []


def _traced_vs_static() -> tuple[list[dict], list[str]]:
    ds = demo.standardized_digits()
    net = demo.deep_net(64, 10)
    params, _ = net.init(jax.random.key(0))
    x, y = ds.x_train[: demo.PANEL_BATCH], ds.y_train[: demo.PANEL_BATCH]

    def static_stats(depth: int, activation: int):
        hp = {"depth": depth, "activation": activation, "init": jnp.int32(3), "gain": 1.0}
        fn = jax.jit(lambda p: models.layer_stats(net, p, x, y, hp=hp))  # constants baked in
        return jax.block_until_ready(fn(params))

    start = time.perf_counter()
    static_stats(17, 2)  # a setting no earlier call used: a compile, as a naive slider would
    static_ms = (time.perf_counter() - start) * 1000
    demo.deep_net_stats(30, "relu", "He", 1.0)
    traced = timings_ms(lambda: demo.deep_net_stats(17, "elu", "He", 1.0), repeats=5)
    return [
        figure(
            "ch05.panel.traced_vs_recompile_ratio",
            "05: vanishing panel, traced move vs a move that recompiles (static depth/activation)",
            static_ms / median(traced),
            "x",
            kind="ratio",
            note=f"{median(traced):.1f} ms vs {static_ms:.0f} ms",
        )
    ], []


def bench(*, repeats: int = 3) -> dict:
    return run_parts((_slider_figures, _race_figures, lambda _: _traced_vs_static()), repeats)


if __name__ == "__main__":
    import json

    print(json.dumps(bench(repeats=1), indent=1, default=str))
