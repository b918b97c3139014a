"""Chapter 09 benchmark: the panel over the stored transfer runs, and the vmapped experiment.

- ``panel_transfer``, built as the notebook builds it (``lessonlib.demos.ch09_transfer``) from the
  stored runs: every control moved over its values with ``Panel.update``; first visits (the first
  time each value is shown) and revisits reported separately, medians, target <= 80 ms; and
  whether any move compiled something (it must not: every move is a lookup).
- The seeds x pairs experiment at 20 labels: every task-B run of the 4 held-out pairs (12
  variants x 8 seeds each, 384 runs) as the chapter trains them, one vmapped ``train.sweep
  (stacked=True)`` per pair, against the same 384 runs as ``train.fit`` one by one (both compiled
  before timing; the one-by-one accuracies are checked against the vmapped ones).
"""

from __future__ import annotations

import contextlib
import io

import jax
import numpy as np
from common import figure, median, run_parts, timings_ms

from lessonlib import data, train
from lessonlib.demos import ch09_transfer as demo

TARGET_MS = 80.0


def _values(widget) -> list:
    if hasattr(widget, "options"):
        return [v if not isinstance(v, tuple) else v[1] for v in widget.options]
    if isinstance(widget.value, bool):
        return [False, True]
    return list(range(widget.min, widget.max + 1))


def _slider_figures(repeats: int) -> tuple[list[dict], list[str]]:
    stored, _ = demo.stored_experiments()
    with contextlib.redirect_stdout(io.StringIO()):  # the panel displays its image
        panel = demo.panel_from(stored["main_acc"], stored["main_n_labels"])
        compiles = train.compile_count()
        figs = []
        for cname, control in panel.controls.items():
            original = control.value
            values = [v for v in _values(control) if v != original] + [original]
            first = [panel.update(**{cname: v}) for v in values]
            again = [panel.update(**{cname: v}) for _ in range(repeats) for v in values[::-1]]
            panel.update(**{cname: original})
            for label, times in (("first", first), ("revisit", again)):
                med = median(times)
                figs.append(
                    figure(
                        f"ch09.slider.transfer.{cname}.{label}_ms",
                        f"09: panel_transfer {cname}, {label} visits (median of {len(times)})",
                        med,
                        "ms",
                        target=f"<= {TARGET_MS:g} ms",
                        ok=med <= TARGET_MS,
                        kind="slider",
                        note=f"max {max(times):.0f} ms",
                    )
                )
    recompiled = train.compile_count() - compiles
    note = f"Slider moves compiled {recompiled} new program(s) (expected 0)."
    return figs, [note]


def _race_figures(repeats: int) -> tuple[list[dict], list[str]]:
    ds = data.digits()
    pairs = [demo.MAIN_PAIR, *demo.OTHER_PAIRS]
    ae = demo.train_ae(ds.x_train, ds.x_test, demo.SEEDS, key=jax.random.key(100)).params
    setups = []
    for j, pair in enumerate(pairs):
        task_a, task_b = demo.split_tasks(ds, pair)
        k_a, _, k_b = jax.random.split(jax.random.key(j), 3)
        params_a = demo.train_a(task_a, demo.SEEDS, key=k_a).params
        setups.append((task_b, (params_a, ae), k_b))

    def swept():
        return [demo.train_b(tb, demo.OTHER_N, src, key=k) for tb, src, k in setups]

    runs = [demo.b_runs(tb, demo.OTHER_N, src, key=k) for tb, src, k in setups]
    n_runs = sum(r["key"].shape[0] for r in runs)

    def one_by_one():
        acc = []
        for r in runs:
            for i in range(r["key"].shape[0]):
                hp = {k: (v[i] if np.ndim(v) else v) for k, v in r["hp"].items()}
                run = train.fit(
                    r["model"], jax.tree.map(lambda x, i=i: x[i], r["params"]), r["data"],
                    key=r["key"][i], hp=hp, epochs=r["epochs"], batch_size=r["batch_size"],
                    optimizer=r["optimizer"],
                )  # fmt: skip
                acc.append(run.history["test_acc"][-1])
        return np.asarray(acc)

    vmapped = np.concatenate([a.reshape(-1) for a in swept()])  # compiles, and the reference
    looped = one_by_one()
    agree = float(np.mean(np.abs(vmapped - looped) < 1e-6))
    t_sweep = median(timings_ms(swept, repeats=repeats, warmup=0))
    t_loop = median(timings_ms(one_by_one, repeats=max(1, repeats // 2), warmup=0))
    figs = [
        figure(
            "ch09.experiment.sweep_vs_fit_ratio",
            f"09: seeds x pairs experiment at {demo.OTHER_N} labels ({n_runs} task-B runs), "
            f"{len(pairs)} vmapped sweeps vs {n_runs} train.fit calls",
            t_loop / t_sweep,
            "x",
            kind="ratio",
            note=f"{t_sweep:.0f} ms vs {t_loop:.0f} ms, both compiled before timing; "
            f"{agree:.0%} of the runs give the same final accuracy",
        )
    ]
    return figs, []


def bench(*, repeats: int = 3) -> dict:
    return run_parts((_slider_figures, _race_figures), repeats)


if __name__ == "__main__":
    import json

    print(json.dumps(bench(repeats=1), indent=1, default=str))
