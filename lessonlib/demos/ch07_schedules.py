"""Chapter 07 (learning-rate schedules): the schedule family and its slider panel.

The chapter trains one digits MLP with SGD whose learning rate follows a schedule picked by a
traced number, ``hp["kind"]``, an index into ``FAMILY``; the notebook's ``lr_at`` switches between
the schedules in that order. ``schedule_panel`` draws the chosen schedule (left) and the training
curves it gives (right); the sliders a schedule does not read (``SLIDER_USERS``) are greyed out,
so no slider moves without an effect.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from lessonlib import _checks, train, viz

#: The schedules of the panel, in the order of ``hp["kind"]``.
FAMILY = ("constant", "exponential", "power", "1cycle", "cosine", "warm-up + cosine")
#: The schedules (indices into ``FAMILY``) that read each slider besides ``lr``: ``s`` is the decay
#: constant of exponential/power, ``pct_start`` the warm-up share of 1cycle and warm-up + cosine.
SLIDER_USERS = {"s": (1, 2), "pct_start": (3, 5)}


def schedule_panel(
    run_schedule: Callable[[int, float, float, float], tuple[train.Run, np.ndarray]],
    *,
    total: int,
    epochs: int,
    lr: float,
    kind: int = 3,
) -> viz.Panel:
    """A dropdown over ``FAMILY`` and sliders for ``lr``, ``s`` and ``pct_start``.

    ``run_schedule(kind, lr, s, pct_start)`` trains with that schedule and returns ``(run, rates)``:
    the run (``epochs`` entries of history) and the learning rate at each of the ``total``
    optimizer steps. Each move retrains; a diverged run is named in the right plot's title.
    """
    total = _checks.positive_int("total", total)
    epochs = _checks.positive_int("epochs", epochs)
    _checks.positive("lr", lr)
    _checks.one_of("kind", kind, range(len(FAMILY)))
    fig, (ax_sched, ax_curve) = viz.figure(2)
    ax_sched.set(yscale="log", xlim=(0, total), ylim=(1e-6, 10))
    ax_sched.set(xlabel="step (batch)", ylabel="learning rate")
    ax_curve.set(yscale="log", xlim=(1, epochs), ylim=(3e-3, 5), xlabel="epoch", ylabel="loss")
    (line_lr,) = ax_sched.plot([], [], color="#9467bd", animated=True)
    (line_train,) = ax_curve.plot([], [], color=viz.COLORS["train"], label="train", animated=True)
    (line_test,) = ax_curve.plot([], [], color=viz.COLORS["test"], label="test", animated=True)
    ax_curve.legend(loc="lower left", fontsize=8)
    sched_title = ax_sched.set_title("", animated=True)
    curve_title = ax_curve.set_title("", animated=True)
    epochs_axis, steps_axis = np.arange(1, epochs + 1), np.arange(total)

    def draw(schedule, lr, s, pct_start):
        run, rates = run_schedule(schedule, lr, s, pct_start)
        h = run.history
        line_lr.set_data(steps_axis, np.asarray(rates))
        line_train.set_data(epochs_axis, viz.finite(h["train_loss"]))
        line_test.set_data(epochs_axis, viz.finite(h["test_loss"]))
        sched_title.set_text(f"{FAMILY[schedule]}, lr = {lr:.3g}")
        first_bad = int(run.diverged_at())
        curve_title.set_text(
            f"diverged at epoch {first_bad}" if first_bad else f"test acc {h['test_acc'][-1]:.3f}"
        )

    panel = viz.Panel(
        fig,
        draw,
        schedule=widgets.Dropdown(
            options=[(n, i) for i, n in enumerate(FAMILY)], value=kind, description="schedule"
        ),
        lr=viz.log_slider("lr", value=lr, min_exp=-2, max_exp=1),
        s=viz.log_slider("s (steps)", value=200.0, min_exp=1, max_exp=4),
        pct_start=viz.slider("pct_start", value=0.45, min=0.05, max=0.85, step=0.05),
    )

    def grey_out_unused(change=None):
        """Disable the sliders the chosen schedule ignores."""
        chosen = panel.controls["schedule"].value
        for name, users in SLIDER_USERS.items():
            panel.controls[name].disabled = chosen not in users

    panel.controls["schedule"].observe(grey_out_unused, names="value")
    grey_out_unused()
    return panel
