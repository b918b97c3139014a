"""Chapter 01's graders: the instant check gives grading's verdict, and states its requirements."""

import jax.numpy as jnp
import numpy as np

from lessonlib.exercises import ch01, evaluate, get


def test_lam_best_instant_check_rejects_the_training_loss_argmin():
    ref = ch01._selection_losses()
    lams = ref["lams"]
    ex = get("01.lam_best")
    for wrong, named in (
        (float(lams[int(np.argmin(ref["train"]))]), "TRAINING"),  # 1e-4: shown as ✔ before
        (float(lams[-1]), "validation loss"),
    ):
        report = evaluate(ex, wrong)  # visible cases only: what check() runs
        assert not report.passed and named in report.message(), report.message()
    assert evaluate(ex, float(lams[int(np.argmin(ref["val"]))])).passed
    assert evaluate(ex, float(lams[int(np.argmin(ref["val"]))]), hidden=True).passed


def test_soft_threshold_negative_t_is_a_visible_case():
    def no_check(w, t):
        return jnp.sign(w) * jnp.maximum(jnp.abs(w) - t, 0.0)

    report = evaluate(get("01.soft_threshold"), no_check)
    assert not report.passed and "t < 0 must raise ValueError" in report.message()
