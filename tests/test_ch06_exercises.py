"""Chapter 06 exercise specs: the references pass, lessonlib.optim agrees with them, and the
usual mistakes are named in the feedback."""

import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import optim
from lessonlib.exercises import ch06, evaluate, get


@pytest.mark.parametrize("exercise", ch06.EXERCISES, ids=lambda e: e.id)
def test_reference_passes_visible_and_hidden(exercise):
    assert evaluate(exercise, exercise.reference, hidden=True).passed


def _via_optim(make, *, with_params):
    """The exercise's one-step function, computed by lessonlib.optim from the given state."""

    def step(w, m, v, grad, t, lr, b1, b2, eps, *decay):
        opt = make(lr, b1, b2, eps, *decay)
        count = jnp.asarray(t - 1, jnp.int32)
        state = (optim.ScaleByAdamState(count, m, v),) + opt.init(w)[1:]
        updates, new_state = opt.update(grad, state, w if with_params else None)
        return w + updates, new_state[0].mu, new_state[0].nu

    return step


def test_optim_adam_and_adamw_pass_the_exercises():
    adam = _via_optim(lambda lr, b1, b2, eps: optim.adam(lr, b1, b2, eps), with_params=False)
    adamw = _via_optim(
        lambda lr, b1, b2, eps, wd: optim.adamw(lr, b1, b2, eps, weight_decay=wd), with_params=True
    )
    assert evaluate(get("06.adam_step"), adam, hidden=True).passed
    assert evaluate(get("06.adamw_step"), adamw, hidden=True).passed


def test_optim_sgd_momentum_passes_the_exercise():
    def step(w, m, grad, lr, beta):
        opt = optim.sgd(lr, momentum=beta)
        updates, state = opt.update(grad, (optim.TraceState(m), optim.EmptyState()), w)
        return w + updates, state[0].trace

    assert evaluate(get("06.momentum_step"), step, hidden=True).passed


def _adam_no_correction(w, m, v, grad, t, lr, b1, b2, eps):
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    return w - lr * m / (jnp.sqrt(v) + eps), m, v


def _adamw_as_l2(w, m, v, grad, t, lr, b1, b2, eps, weight_decay):
    return ch06._adam(w, m, v, np.asarray(grad) + weight_decay * np.asarray(w), t, lr, b1, b2, eps)


def _momentum_as_ema(w, m, grad, lr, beta):
    m = beta * m + (1 - beta) * grad
    return w - lr * m, m


@pytest.mark.parametrize(
    "exercise_id, wrong, phrase",
    [
        ("06.momentum_step", _momentum_as_ema, "beta*m + (1-beta)*grad"),
        ("06.adam_step", _adam_no_correction, "no bias correction"),
        ("06.adamw_step", _adamw_as_l2, "Adam + L2"),
    ],
)
def test_common_mistakes_are_named(exercise_id, wrong, phrase):
    report = evaluate(get(exercise_id), wrong, hidden=True)
    assert not report.passed
    assert phrase in report.message()


def test_hidden_cases_are_random_and_differ_from_visible():
    for ex in ch06.EXERCISES:
        assert len(ex.hidden) >= 3
        shapes = {np.shape(c.args[0]) for c in ex.hidden}
        assert len(shapes) >= 2


def _adam_fixed_betas(w, m, v, grad, t, lr, b1, b2, eps):
    return ch06._adam(w, m, v, grad, t, lr, 0.9, 0.999, eps)


def _adamw_fixed_betas(w, m, v, grad, t, lr, b1, b2, eps, weight_decay):
    return ch06._adamw(w, m, v, grad, t, lr, 0.9, 0.999, eps, weight_decay)


@pytest.mark.parametrize(
    "exercise_id, wrong",
    [("06.adam_step", _adam_fixed_betas), ("06.adamw_step", _adamw_fixed_betas)],
)
def test_hard_coded_betas_fail_the_instant_check_and_grading(exercise_id, wrong):
    """Every case used b1=0.9, b2=0.999 once, so typing them in passed: the visible cases alone
    (the instant check) and the hidden ones (grading) must now fail it, naming the mistake."""
    for hidden in (False, True):
        report = evaluate(get(exercise_id), wrong, hidden=hidden)
        assert not report.passed
        assert "typed in as 0.9 and 0.999" in report.message()
    exercise = get(exercise_id)
    assert any(c.args[6:8] != (0.9, 0.999) for c in exercise.cases)
    assert sum(c.args[6:8] != (0.9, 0.999) for c in exercise.hidden) >= 2
