"""Exercises of chapter 01, overfitting and weight decay.

Each function exercise is judged against a float64 reference; when the answer is wrong, the judge
also tries the usual mistakes (a lost square, a missing 1/2, the decay without the learning rate,
...) and names the one that matches, so the feedback says what to fix.
"""

from __future__ import annotations

import numpy as np

from lessonlib.exercises import Case, Exercise, Outcome, judge_with_mistakes, precomputed

# --------------------------------------------------------------------------- helpers


def _f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


# --------------------------------------------------------------------------- 01.l2_penalty


def _l2(w, lam):
    return lam / 2 * np.sum(_f64(w) ** 2)


L2_PENALTY = Exercise(
    id="01.l2_penalty",
    name="l2_penalty",
    points=2,
    cases=(
        Case((np.array([1.0, -2.0, 3.0], np.float32), 0.5), note="w = [1, -2, 3], lam = 0.5"),
        Case((np.array([[0.5, -1.0], [2.0, 0.0]], np.float32), 2.0), note="a 2x2 matrix, lam = 2"),
    ),
    hidden=(
        Case((np.zeros(4, np.float32), 3.0), note="w = 0"),
        Case((np.array([-3.0, -4.0], np.float32), 1.0), note="negative weights"),
        Case((np.arange(6.0, dtype=np.float32).reshape(2, 3), 0.0), note="lam = 0"),
    ),
    judge=judge_with_mistakes(
        _l2,
        {
            "the square is lost (the JAX book chapter's jnp.sum(weights2))": lambda w, lam: (
                lam / 2 * np.sum(_f64(w))
            ),
            "the 1/2 is missing (lam * sum(w**2), Keras' convention)": lambda w, lam: (
                lam * np.sum(_f64(w) ** 2)
            ),
            "the mean is taken instead of the sum": lambda w, lam: lam / 2 * np.mean(_f64(w) ** 2),
            "the norm is not squared (lam/2 * ||w||)": lambda w, lam: (
                lam / 2 * np.sqrt(np.sum(_f64(w) ** 2))
            ),
            "it is the L1 penalty (sum of |w|)": lambda w, lam: lam / 2 * np.sum(np.abs(_f64(w))),
        },
    ),
    hint="The penalty is lam/2 times the SUM of SQUARES of all entries: jnp.sum(w**2), not the mean or the norm.",
)


# --------------------------------------------------------------------------- 01.weight_decay_step


def _wd_step(w, grad, lr, lam):
    return (1 - lr * lam) * _f64(w) - lr * _f64(grad)


WEIGHT_DECAY_STEP = Exercise(
    id="01.weight_decay_step",
    name="weight_decay_step",
    points=2,
    cases=(
        Case(
            (np.array([1.0, -2.0], np.float32), np.array([0.5, 0.5], np.float32), 0.1, 3.0),
            note="w = [1, -2], grad = [0.5, 0.5], lr = 0.1, lam = 3",
        ),
    ),
    hidden=(
        Case(
            (np.array([2.0, 0.0, -1.0], np.float32), np.zeros(3, np.float32), 0.5, 0.4),
            note="zero gradient: a pure decay",
        ),
        Case(
            (np.array([1.0, 1.0], np.float32), np.array([1.0, -1.0], np.float32), 0.01, 0.0),
            note="lam = 0: plain SGD",
        ),
        Case(
            (
                np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
                np.ones((2, 3), np.float32),
                0.2,
                2.0,
            ),
            note="a 2x3 matrix",
        ),
    ),
    judge=judge_with_mistakes(
        _wd_step,
        {
            "the decay is not multiplied by the learning rate ((1 - lam) w)": lambda w, g, lr, lam: (
                (1 - lam) * _f64(w) - lr * _f64(g)
            ),
            "the decay has the wrong sign ((1 + lr*lam) w)": lambda w, g, lr, lam: (
                (1 + lr * lam) * _f64(w) - lr * _f64(g)
            ),
            "the gradient step is added instead of subtracted": lambda w, g, lr, lam: (
                (1 - lr * lam) * _f64(w) + lr * _f64(g)
            ),
            "the decay is applied after the gradient step ((1 - lr*lam)(w - lr*grad))": lambda w, g, lr, lam: (
                (1 - lr * lam) * (_f64(w) - lr * _f64(g))
            ),
            "the decay uses lam/2 (the 1/2 cancels when differentiating lam/2 ||w||^2)": lambda w, g, lr, lam: (
                (1 - lr * lam / 2) * _f64(w) - lr * _f64(g)
            ),
        },
    ),
    hint="Differentiate l(w) + lam/2 ||w||^2: one SGD step is w - lr*(grad + lam*w) = (1 - lr*lam)*w - lr*grad.",
)


# --------------------------------------------------------------------------- 01.soft_threshold


def _soft(w, t):
    if not t >= 0:
        raise ValueError(f"t must be >= 0, got {t!r}")
    w = _f64(w)
    return np.sign(w) * np.maximum(np.abs(w) - t, 0.0)


SOFT_THRESHOLD = Exercise(
    id="01.soft_threshold",
    name="soft_threshold",
    points=2,
    cases=(
        Case(
            (np.array([-2.0, -0.5, 0.0, 0.3, 1.5], np.float32), 1.0),
            note="w = [-2, -0.5, 0, 0.3, 1.5], t = 1",
        ),
        Case((np.array([1.0], np.float32), -0.1), note="t < 0 must raise ValueError"),
    ),
    hidden=(
        Case((np.array([0.2, -0.2, 5.0], np.float32), 0.0), note="t = 0 leaves w unchanged"),
        Case((np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4), 0.25), note="a 2x4 matrix"),
        Case((np.array([1.0, -1.0], np.float32), 10.0), note="t larger than every |w|"),
        Case((np.array([3.0, -2.0], np.float32), -2.5), note="t = -2.5 must raise ValueError"),
    ),
    judge=judge_with_mistakes(
        _soft,
        {
            "a subgradient step w - t*sign(w) is taken: small weights jump across zero instead of stopping at it": lambda w, t: (
                _f64(w) - t * np.sign(_f64(w))
            ),
            "the weights above the threshold are kept unchanged (hard thresholding)": lambda w, t: (
                np.where(np.abs(_f64(w)) > t, _f64(w), 0.0)
            ),
            "the sign is lost (max(|w| - t, 0) without sign(w))": lambda w, t: np.maximum(
                np.abs(_f64(w)) - t, 0.0
            ),
        },
    ),
    hint="Shrink |w| by t and stop at zero: sign(w) * max(|w| - t, 0); raise ValueError when t < 0.",
)


# --------------------------------------------------------------------------- 01.lam_best


@precomputed  # the grader stores it on disk: warm grading does not rerun the sweep
def _selection_losses() -> dict[str, np.ndarray]:
    """Final train / validation / test losses of ``playground.SELECTION`` for every lambda."""
    from lessonlib.demos import ch01_weight_decay as playground

    return playground.selection_losses()


def _judge_lam(case: Case, outcome: Outcome) -> str | None:
    if outcome.error is not None:
        return outcome.error
    value = outcome.value
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"lam_best must be a number (one of lams), got {type(value).__name__}"
    ref = _selection_losses()
    lams = ref["lams"]
    i = int(np.argmin(np.abs(np.log(lams) - np.log(max(value, 1e-30)))))
    if not np.isclose(value, lams[i], rtol=1e-4):
        return f"lam_best = {value:.6g} is not one of the swept values lams"
    best = float(ref["val"].min())
    if ref["val"][i] <= best * 1.005:
        return None
    if i == int(np.argmin(ref["train"])):
        return (
            f"lam_best = {value:.4g} has the lowest TRAINING loss; training loss always prefers "
            "the weakest penalty. Pick the lowest validation loss."
        )
    if i == int(np.argmin(ref["test"])):
        return (
            f"lam_best = {value:.4g} has the lowest TEST loss; choosing with the test set makes "
            "its score optimistic. Pick the lowest validation loss."
        )
    return (
        f"lam_best = {value:.4g} has validation loss {ref['val'][i]:.4f}, "
        f"but the best lambda reaches {best:.4f}"
    )


LAM_BEST = Exercise(
    id="01.lam_best",
    name="lam_best",
    points=2,
    kind="value",
    # the visible case gives grading's verdict: the reference sweep is cached (``prepare``), so
    # the instant check costs one sweep the first time and nothing after
    cases=(Case(note="lam_best is the lambda of lams with the lowest validation loss"),),
    judge=_judge_lam,
    prepare=_selection_losses,
    hint="Sweep lams on train_val, take the final validation loss (history['test_loss'][:, -1]) and pick its argmin; never use the test split to choose.",
)


EXERCISES = [L2_PENALTY, WEIGHT_DECAY_STEP, SOFT_THRESHOLD, LAM_BEST]
