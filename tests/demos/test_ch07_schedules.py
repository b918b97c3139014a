"""lessonlib.demos.ch07_schedules: the schedule panel draws what its run function returns and
greys out the sliders the chosen schedule does not read."""

import numpy as np
import pytest

from lessonlib.demos import ch07_schedules as demo


class _Run:
    def __init__(self, loss):
        self.history = {
            "train_loss": np.full(4, loss),
            "test_loss": np.full(4, 2 * loss),
            "test_acc": np.full(4, 0.5),
        }

    def diverged_at(self):  # as train.Run's: first non-finite epoch (1-based), else 0
        bad = ~np.isfinite(self.history["train_loss"])
        return int(bad.argmax()) + 1 if bad.any() else 0


def test_schedule_panel_draws_the_run_and_greys_out_unused_sliders():
    calls = []

    def run_schedule(kind, lr, s, pct_start):
        calls.append((kind, lr, s, pct_start))
        return _Run(lr), np.full(12, lr)

    panel = demo.schedule_panel(run_schedule, total=12, epochs=4, lr=0.5)
    # warmed at a neighbour of each enabled control, drawn at the values again, then shown
    assert calls[-2] == calls[-1] == (3, 0.5, 200.0, 0.45) and len(calls) > 2
    assert [panel.controls[n].disabled for n in ("s", "pct_start")] == [True, False]
    panel.controls["schedule"].value = 1  # a real change: redraw and grey out
    assert calls[-1][0] == 1
    assert [panel.controls[n].disabled for n in ("s", "pct_start")] == [False, True]
    panel.update(lr=0.1)
    ax_sched, ax_curve = panel.fig.axes
    np.testing.assert_allclose(ax_sched.lines[0].get_ydata(), np.full(12, 0.1))
    np.testing.assert_allclose(ax_curve.lines[1].get_ydata(), np.full(4, 0.2))
    assert ax_sched.title.get_text() == "exponential, lr = 0.1"
    assert demo.FAMILY[1] == "exponential" and set(demo.SLIDER_USERS) == {"s", "pct_start"}


def test_schedule_panel_names_a_diverged_run():
    panel = demo.schedule_panel(
        lambda *a: (_Run(np.nan), np.ones(5)), total=5, epochs=4, lr=1.0, kind=0
    )
    assert panel.fig.axes[1].title.get_text() == "diverged at epoch 1"
    with pytest.raises(ValueError, match="kind must be one of"):
        demo.schedule_panel(lambda *a: None, total=5, epochs=4, lr=1.0, kind=len(demo.FAMILY))
