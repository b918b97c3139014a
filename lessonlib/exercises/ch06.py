"""Exercises of chapter 06, optimizers: one step of momentum, of Adam and of AdamW.

Each answer is judged against a float64 NumPy reference, on the visible cases and on hidden cases
drawn at random (fixed seeds, so grading is reproducible). When an answer is wrong the judge tries
the usual mistakes (no bias correction, eps inside the square root, the L2 penalty fed into the
moments, ...) and names the one that matches.

Conventions (those of ``lessonlib.optim`` and optax): ``t`` is the number of the step being taken,
starting at 1; momentum keeps ``m = beta * m + grad`` and steps ``w - lr * m``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lessonlib.exercises import Case, Exercise, Outcome, compare


def _f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


def _judge(reference: Callable, mistakes: dict[str, Callable], *, rtol: float, atol: float):
    """Compare with ``reference``; on a mismatch, name the first listed mistake that matches."""

    def judge(case: Case, outcome: Outcome) -> str | None:
        if outcome.error is not None:
            return outcome.error
        want = [np.asarray(v) for v in reference(*case.args, **case.kwargs)]
        why = compare(outcome.value, want, rtol=rtol, atol=atol)
        if why is None:
            return None
        for label, wrong in mistakes.items():
            bad = [np.asarray(v) for v in wrong(*case.args, **case.kwargs)]
            if compare(outcome.value, bad, rtol=rtol, atol=atol) is None:
                return f"{why} — this is what you get when {label}"
        return why

    return judge


def _random_arrays(seed: int, shape: tuple[int, ...], n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) for _ in range(n)]


def _random_v(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A second-moment state: non-negative."""
    return (np.random.default_rng(seed).random(shape) ** 2 * 0.1).astype(np.float32)


# --------------------------------------------------------------------------- 06.momentum_step


def _momentum(w, m, grad, lr, beta):
    m = beta * _f64(m) + _f64(grad)
    return _f64(w) - lr * m, m


MOMENTUM_MISTAKES = {
    "m is an average, beta*m + (1-beta)*grad (that is Adam's first moment, not SGD momentum)": (
        lambda w, m, g, lr, b: (
            _f64(w) - lr * (b * _f64(m) + (1 - b) * _f64(g)),
            b * _f64(m) + (1 - b) * _f64(g),
        )
    ),
    "the step uses the old m (w - lr*m is computed before m is updated)": lambda w, m, g, lr, b: (
        _f64(w) - lr * _f64(m),
        b * _f64(m) + _f64(g),
    ),
    "the learning rate goes into the buffer (Keras' v = beta*v - lr*grad): here m has no lr": (
        lambda w, m, g, lr, b: (
            _f64(w) + b * _f64(m) - lr * _f64(g),
            b * _f64(m) - lr * _f64(g),
        )
    ),
    "the step is added instead of subtracted": lambda w, m, g, lr, b: (
        _f64(w) + lr * (b * _f64(m) + _f64(g)),
        b * _f64(m) + _f64(g),
    ),
}


def _momentum_hidden() -> tuple[Case, ...]:
    cases = []
    for seed, shape, lr, beta in [
        (61, (5,), 0.1, 0.9),
        (62, (3, 4), 0.01, 0.99),
        (63, (), 0.5, 0.0),
    ]:
        w, m, g = _random_arrays(seed, shape, 3)
        cases.append(Case((w, m, g, lr, beta), note=f"random {shape} arrays, lr={lr}, beta={beta}"))
    return tuple(cases)


MOMENTUM_STEP = Exercise(
    id="06.momentum_step",
    name="momentum_step",
    points=2,
    cases=(
        Case(
            (
                np.array([1.0, -2.0], np.float32),
                np.zeros(2, np.float32),
                np.array([0.5, -1.0], np.float32),
                0.1,
                0.9,
            ),
            note="first step: m = 0",
        ),
        Case(
            (
                np.array([1.0, -2.0], np.float32),
                np.array([0.3, 0.2], np.float32),
                np.array([0.5, -1.0], np.float32),
                0.1,
                0.9,
            ),
            note="m = [0.3, 0.2]",
        ),
    ),
    hidden=_momentum_hidden(),
    reference=_momentum,
    judge=_judge(_momentum, MOMENTUM_MISTAKES, rtol=1e-5, atol=1e-6),
    hint="First m = beta*m + grad (no 1-beta, no lr), then w = w - lr*m with the NEW m; "
    "return (w, m).",
)


# --------------------------------------------------------------------------- 06.adam_step


def _moments(m, v, grad, b1, b2):
    g = _f64(grad)
    return b1 * _f64(m) + (1 - b1) * g, b2 * _f64(v) + (1 - b2) * g**2


def _adam(w, m, v, grad, t, lr, b1, b2, eps):
    m, v = _moments(m, v, grad, b1, b2)
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return _f64(w) - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _adam_variant(*, correct=True, eps_inside=False, t_shift=0):
    def step(w, m, v, grad, t, lr, b1, b2, eps):
        m, v = _moments(m, v, grad, b1, b2)
        tt = t + t_shift
        m_hat = m / (1 - b1**tt) if correct else m
        v_hat = v / (1 - b2**tt) if correct else v
        denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        return _f64(w) - lr * m_hat / denom, m, v

    return step


def _fixed_betas(step):
    """``step`` with b1, b2 ignored and 0.9, 0.999 used instead (the defaults typed in)."""

    def wrong(w, m, v, g, t, lr, b1, b2, eps, *rest):
        return step(w, m, v, g, t, lr, 0.9, 0.999, eps, *rest)

    return wrong


ADAM_MISTAKES = {
    "b1 and b2 are typed in as 0.9 and 0.999: use the arguments b1 and b2": _fixed_betas(
        lambda *a: _adam(*a)
    ),
    "there is no bias correction (m and v used as they are)": _adam_variant(correct=False),
    "eps is inside the square root (sqrt(v_hat + eps)); Adam adds it outside": _adam_variant(
        eps_inside=True
    ),
    "the bias correction uses t+1 (t is already the number of this step, starting at 1)": (
        _adam_variant(t_shift=1)
    ),
    "the step is added instead of subtracted": lambda w, m, v, g, t, lr, b1, b2, eps: (
        2 * _f64(w) - _adam(w, m, v, g, t, lr, b1, b2, eps)[0],
        *_adam(w, m, v, g, t, lr, b1, b2, eps)[1:],
    ),
}


def _adam_hidden() -> tuple[Case, ...]:
    cases = []
    for seed, shape, t, b1, b2, eps in [
        (64, (6,), 1, 0.9, 0.999, 1e-8),
        (65, (2, 3), 7, 0.5, 0.9, 1e-8),
        (66, (4,), 1000, 0.95, 0.9999, 1e-3),
        (70, (3,), 4, 0.0, 0.99, 1e-8),
    ]:
        w, m, g = _random_arrays(seed, shape, 3)
        m = m * np.float32(0.1) if t > 1 else np.zeros_like(m)
        v = _random_v(seed + 100, shape) if t > 1 else np.zeros_like(m)
        cases.append(
            Case(
                (w, m, v, g, t, 0.01, b1, b2, eps),
                note=f"random {shape} arrays, t={t}, b1={b1}, b2={b2}",
            )
        )
    return tuple(cases)


_ADAM_FIRST = (
    np.array([1.0, -1.0, 0.5], np.float32),
    np.zeros(3, np.float32),
    np.zeros(3, np.float32),
    np.array([0.2, -3.0, 1e-4], np.float32),
    1,
    0.1,
    0.9,
    0.999,
    1e-8,
)

ADAM_STEP = Exercise(
    id="06.adam_step",
    name="adam_step",
    points=3,
    cases=(
        Case(_ADAM_FIRST, note="step t=1 from m = v = 0"),
        Case(
            (
                np.array([1.0, -1.0], np.float32),
                np.array([0.1, -0.2], np.float32),
                np.array([0.01, 0.04], np.float32),
                np.array([0.3, 0.1], np.float32),
                3,
                0.01,
                0.9,
                0.999,
                1e-8,
            ),
            note="step t=3",
        ),
        Case(
            (
                np.array([1.0, -1.0], np.float32),
                np.array([0.1, -0.2], np.float32),
                np.array([0.01, 0.04], np.float32),
                np.array([0.3, 0.1], np.float32),
                2,
                0.01,
                0.5,
                0.9,
                1e-8,
            ),
            note="step t=2 with b1=0.5, b2=0.9 (not the defaults)",
        ),
    ),
    hidden=_adam_hidden(),
    reference=_adam,
    judge=_judge(_adam, ADAM_MISTAKES, rtol=1e-4, atol=1e-6),
    hint="m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g**2; m_hat = m/(1-b1**t); v_hat = v/(1-b2**t); "
    "w - lr*m_hat/(sqrt(v_hat) + eps); return (w, m, v) with the UNcorrected m and v.",
)


# --------------------------------------------------------------------------- 06.adamw_step


def _adamw(w, m, v, grad, t, lr, b1, b2, eps, weight_decay):
    _, m, v = _adam(w, m, v, grad, t, lr, b1, b2, eps)
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    w = _f64(w)
    return w - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w), m, v


ADAMW_MISTAKES = {
    "b1 and b2 are typed in as 0.9 and 0.999: use the arguments b1 and b2": _fixed_betas(
        lambda *a: _adamw(*a)
    ),
    "the decay is added to the gradient before the moments (that is Adam + L2, not AdamW)": (
        lambda w, m, v, g, t, lr, b1, b2, eps, wd: _adam(
            w, m, v, _f64(g) + wd * _f64(w), t, lr, b1, b2, eps
        )
    ),
    "the decay is not multiplied by the learning rate (w - lr*adam - wd*w)": (
        lambda w, m, v, g, t, lr, b1, b2, eps, wd: (
            _adam(w, m, v, g, t, lr, b1, b2, eps)[0] - wd * _f64(w),
            *_adam(w, m, v, g, t, lr, b1, b2, eps)[1:],
        )
    ),
    "the decay uses the already-updated w (it must use the w before this step)": (
        lambda w, m, v, g, t, lr, b1, b2, eps, wd: (
            (1 - lr * wd) * _adam(w, m, v, g, t, lr, b1, b2, eps)[0],
            *_adam(w, m, v, g, t, lr, b1, b2, eps)[1:],
        )
    ),
    "there is no weight decay at all (plain Adam)": (
        lambda w, m, v, g, t, lr, b1, b2, eps, wd: _adam(w, m, v, g, t, lr, b1, b2, eps)
    ),
}


def _adamw_hidden() -> tuple[Case, ...]:
    cases = []
    for seed, shape, t, b1, b2, wd in [
        (67, (5,), 1, 0.9, 0.999, 0.1),
        (68, (3, 2), 20, 0.8, 0.95, 0.01),
        (69, (4,), 3, 0.5, 0.99, 0.5),
    ]:
        w, m, g = _random_arrays(seed, shape, 3)
        m = m * np.float32(0.1) if t > 1 else np.zeros_like(m)
        v = _random_v(seed + 100, shape) if t > 1 else np.zeros_like(m)
        cases.append(
            Case(
                (w, m, v, g, t, 0.01, b1, b2, 1e-8, wd),
                note=f"random {shape} arrays, t={t}, b1={b1}, b2={b2}, weight_decay={wd}",
            )
        )
    return tuple(cases)


ADAMW_STEP = Exercise(
    id="06.adamw_step",
    name="adamw_step",
    points=2,
    cases=(
        Case(
            (
                np.array([2.0, -1.0], np.float32),
                np.zeros(2, np.float32),
                np.zeros(2, np.float32),
                np.zeros(2, np.float32),
                1,
                0.1,
                0.9,
                0.999,
                1e-8,
                0.5,
            ),
            note="zero gradient: only the decay moves w",
        ),
        Case((*_ADAM_FIRST, 0.1), note="step t=1, weight_decay=0.1"),
        Case(
            (
                np.array([1.0, -1.0], np.float32),
                np.array([0.1, -0.2], np.float32),
                np.array([0.01, 0.04], np.float32),
                np.array([0.3, 0.1], np.float32),
                2,
                0.01,
                0.5,
                0.9,
                1e-8,
                0.1,
            ),
            note="step t=2 with b1=0.5, b2=0.9 (not the defaults), weight_decay=0.1",
        ),
    ),
    hidden=_adamw_hidden(),
    reference=_adamw,
    judge=_judge(_adamw, ADAMW_MISTAKES, rtol=1e-4, atol=1e-6),
    hint="Run Adam on the plain gradient, then w - lr*(m_hat/(sqrt(v_hat)+eps) + weight_decay*w) "
    "with the OLD w; the decay never enters m or v.",
)


EXERCISES = [MOMENTUM_STEP, ADAM_STEP, ADAMW_STEP]
