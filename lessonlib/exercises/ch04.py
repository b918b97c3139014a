"""Chapter 04: Keras's early-stopping rule, the max-norm projection, the lambda of input noise, and
a random shift with one draw per example.

Every judge compares with a trusted reference first; when the answer is wrong it recomputes the
plausible wrong answers on the same case and names the one that matches (``<=`` for ``<``,
min_delta ignored, a unit's norm over the wrong axis, lambda = sigma, one shift for the batch...).
"""

from __future__ import annotations

import math

import numpy as np

from lessonlib.exercises import Case, Exercise, Key, Outcome

# --------------------------------------------------------------------------- 04.early_stopping


def _keras_rule(values, patience, min_delta=0.0, *, improve=None, stop_at=None, restore=True):
    """Keras 3's EarlyStopping in mode "min" without baseline (keras/src/callbacks/
    early_stopping.py): ``(stop_epoch or -1, epoch whose weights restore_best_weights returns)``.
    ``improve``/``stop_at``/``restore`` swap in the wrong variants the judge names."""
    improve = improve or (lambda v, best, d: v + d < best)
    stop_at = stop_at or (lambda wait, p: wait >= p)
    best, wait, best_epoch = math.inf, 0, 0
    for epoch, v in enumerate(values):
        v = float(v)
        if epoch == 0:
            best_epoch = 0
        wait += 1
        if improve(v, best, min_delta):
            best, best_epoch, wait = v, epoch, 0
            continue
        if stop_at(wait, patience) and epoch > 0:
            return epoch, (best_epoch if restore else epoch)
    last = len(values) - 1
    return -1, (best_epoch if restore else last)


def _early_stopping_reference(values, patience, min_delta=0.0):
    if int(patience) < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    return list(_keras_rule(list(values), int(patience), abs(float(min_delta))))


_ES_MISTAKES = {
    "an improvement must beat the best by MORE than min_delta (strict <): you count a tie as an "
    "improvement (<=)": {"improve": lambda v, best, d: v + d <= best},
    "min_delta is ignored: an improvement must beat the best by more than min_delta": {
        "improve": lambda v, best, d: v < best
    },
    "min_delta has the wrong sign: in mode 'min' an improvement is value + min_delta < best "
    "(value - min_delta < best accepts values that are worse)": {
        "improve": lambda v, best, d: v - d < best
    },
    "you stop one epoch late: Keras increments wait BEFORE the test and stops as soon as "
    "wait >= patience": {"stop_at": lambda wait, p: wait > p},
    "you stop one epoch early: patience counts the epochs without improvement, the first of "
    "them included (wait >= patience, not wait >= patience - 1)": {
        "stop_at": lambda wait, p: wait >= p - 1
    },
    "the second number must be the BEST epoch (whose weights restore_best_weights returns), "
    "not the last epoch trained": {"restore": False},
}


def _judge_early_stopping(case: Case, outcome: Outcome) -> str | None:
    values, patience = list(case.args[0]), int(case.args[1])
    min_delta = float(case.args[2]) if len(case.args) > 2 else 0.0
    want = _keras_rule(values, patience, min_delta)
    if outcome.error is not None:
        return outcome.error
    got = outcome.value
    try:
        got = tuple(int(v) for v in np.asarray(got, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        return f"return two integers (stop_epoch, best_epoch), got {got!r}"
    if len(got) != 2:
        return f"return two integers (stop_epoch, best_epoch), got {len(got)} numbers"
    if got == want:
        return None
    for why, variant in _ES_MISTAKES.items():
        if _keras_rule(values, patience, min_delta, **variant) == got:
            return f"got {got}, expected {want}: {why}"
    if got == (want[0] + 1 if want[0] >= 0 else -1, want[1] + 1):
        return f"got {got}, expected {want}: epochs are numbered from 0"
    return f"got (stop_epoch, best_epoch) = {got}, expected {want}"


_ES_CASES = (  # values are multiples of 1/8: every sum is exact in floating point
    Case(([1.0, 0.5, 0.5, 0.5, 0.5, 0.5], 2), note="a plateau of exact ties, patience 2"),
    Case(([2.0, 1.5, 1.375, 1.125, 1.0, 1.0, 1.0], 2, 0.25), note="min_delta = 0.25"),
    Case(([2.0, 1.0, 1.5, 1.25, 1.125, 1.0, 0.5], 3), note="patience 3, best at epoch 1"),
    Case(([2.0, 1.0, 1.625, 1.5, 1.25, 1.125], 1), note="patience 1"),
)
_ES_HIDDEN = (
    Case(([3.0, 2.0, 1.0, 0.5, 0.25], 1), note="always improving: never stops"),
    Case(([1.0, 2.0, 3.0], 0), note="patience 0"),
    Case(
        ([4.0, 3.875, 3.75, 3.625, 3.5, 3.375, 3.25], 2, 0.125), note="steps of exactly min_delta"
    ),
    Case(([4.0, 3.5, 3.75, 3.5, 3.25, 3.5, 3.625, 3.75, 3.875], 3, 0.0), note="patience 3"),
    Case(([1.0, 1.0], 1), note="two equal epochs"),
    Case(([5.0], 2), note="one epoch"),
    Case(([2.0, 1.0, 1.5, 1.25, 1.125, 1.0, 0.5], 5), note="patience 5: no stop"),
)

early_stopping_exercise = Exercise(
    id="04.early_stopping",
    name="keras_early_stopping",
    points=3,
    cases=_ES_CASES,
    hidden=_ES_HIDDEN,
    reference=_early_stopping_reference,
    judge=_judge_early_stopping,
    hint="best = inf, wait = 0. For each epoch: wait += 1; if value + min_delta < best: best = "
    "value, best_epoch = epoch, wait = 0; elif wait >= patience and epoch > 0: stop after this "
    "epoch. Return (stop epoch or -1, best_epoch).",
)


# --------------------------------------------------------------------------- 04.max_norm


def _max_norm_reference(w, r):
    import jax.numpy as jnp

    norms = jnp.linalg.norm(w, axis=0, keepdims=True)
    return w * jnp.minimum(1.0, r / norms)


def _max_norm_mistakes(w: np.ndarray, r: float) -> dict[str, np.ndarray]:
    w = np.asarray(w, np.float64)
    cols = np.linalg.norm(w, axis=0, keepdims=True)
    rows = np.linalg.norm(w, axis=1, keepdims=True)
    total = np.linalg.norm(w)
    return {
        "the norm is taken over the wrong axis: a unit's incoming weights are a COLUMN of w "
        "(fan_in, fan_out), so use axis=0": w * np.minimum(1.0, r / rows),
        "every column is rescaled to norm r: only the columns whose norm exceeds r change "
        "(w * min(1, r / norm))": w * (r / cols),
        "you clipped the norm of the whole matrix: max-norm caps each unit (column) on its own": w
        * min(1.0, r / total),
        "you clipped every entry to [-r, r]: max-norm caps the norm of each column": np.clip(
            w, -r, r
        ),
    }


def _judge_max_norm(case: Case, outcome: Outcome) -> str | None:
    if outcome.error is not None:
        return outcome.error
    w, r = np.asarray(case.args[0], np.float64), float(case.args[1])
    want = np.asarray(_max_norm_reference(w, r))
    got = np.asarray(outcome.value, np.float64)
    if got.shape != w.shape:
        return f"expected an array of w's shape {w.shape}, got {got.shape}"
    if np.allclose(got, want, rtol=1e-5, atol=1e-6):
        return None
    for why, alt in _max_norm_mistakes(w, r).items():
        if np.allclose(got, alt, rtol=1e-5, atol=1e-6):
            return why
    return "some columns differ from w_j * min(1, r / ||w_j||)"


def _matrix(seed: int, shape, scale: float) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


max_norm_exercise = Exercise(
    id="04.max_norm",
    name="max_norm",
    points=2,
    cases=(
        Case((_matrix(0, (5, 3), 1.0), 2.0), note="w of shape (5, 3), r = 2"),
        Case((_matrix(1, (4, 4), 0.7), 1.5), note="a square w, r = 1.5"),
    ),
    hidden=(
        Case((_matrix(2, (8, 2), 2.0), 3.0), note="w of shape (8, 2), r = 3"),
        Case((_matrix(3, (3, 6), 0.1), 1.0), note="every column below r: unchanged"),
        Case((_matrix(4, (6, 5), 1.0), 0.5), note="r = 0.5"),
    ),
    reference=_max_norm_reference,
    judge=_judge_max_norm,
    hint="Compute the norm of every column (axis=0, keepdims=True) and multiply by "
    "min(1, r / norm): columns inside the ball stay as they are.",
)


# --------------------------------------------------------------------------- 04.noise_lambda


def _noise_lambda_reference(sigma):
    return float(sigma) ** 2


def _judge_noise_lambda(case: Case, outcome: Outcome) -> str | None:
    if outcome.error is not None:
        return outcome.error
    sigma = float(case.args[0])
    try:
        got = float(np.asarray(outcome.value, np.float64))
    except (TypeError, ValueError):
        return f"return one number, got {outcome.value!r}"
    if math.isclose(got, sigma**2, rel_tol=1e-6, abs_tol=1e-12):
        return None
    named = {
        "lambda = sigma: the penalty is sigma^2 ||w||^2 / 2 (E[(w.eps)^2] = sigma^2 ||w||^2)": sigma,
        "lambda = 2 sigma^2: with the loss ||Xw - y||^2 / (2n) the 1/2 applies to the noise term "
        "too": 2 * sigma**2,
        "lambda = sigma^2 / 2: l2_penalty is lambda/2 ||w||^2 already, so lambda = sigma^2": sigma
        ** 2
        / 2,
        "lambda = 1 / sigma^2: more noise means MORE shrinkage, not less": 1 / sigma**2,
    }
    for why, value in named.items():
        if math.isclose(got, value, rel_tol=1e-6):
            return f"got {got:g} for sigma = {sigma:g}: {why}"
    return f"got {got:g} for sigma = {sigma:g}, expected {sigma**2:g}"


noise_lambda_exercise = Exercise(
    id="04.noise_lambda",
    name="noise_lambda",
    points=1,
    cases=(Case((3.0,), note="sigma = 3"), Case((0.3,), note="sigma = 0.3")),
    hidden=(Case((0.1,), note="sigma = 0.1"), Case((1.5,), note="sigma = 1.5")),
    reference=_noise_lambda_reference,
    judge=_judge_noise_lambda,
    hint="Expand E[(y - w.(x + eps))^2] with E[eps] = 0 and E[eps eps^T] = sigma^2 I, then compare "
    "with ||Xw - y||^2/(2n) + lambda/2 ||w||^2.",
)


# --------------------------------------------------------------------------- 04.random_shift

_SIGNAL = np.arange(1.0, 25.0, dtype=np.float32)  # distinct, nonzero: a shift is identifiable
_BATCH = 1500


def _probe_shift(fn, x, max_shift, *, key):
    import jax

    k1, k2 = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    return {"a": fn(k1, x, max_shift), "b": fn(k2, x, max_shift), "a_again": fn(k1, x, max_shift)}


def _shifted(x: np.ndarray, s: int, wrap: bool) -> np.ndarray:
    n = x.size
    idx = np.arange(n) - s
    out = x[np.mod(idx, n)]
    return out if wrap else np.where((idx >= 0) & (idx < n), out, 0.0)


def _shifts_of(rows: np.ndarray, x: np.ndarray, wrap: bool) -> np.ndarray | None:
    """The shift of every row (y[t] = x[t - s]), or None if some row is no such shift."""
    n = x.size
    cand = np.arange(-(n - 1), n)
    table = np.stack([_shifted(x, int(s), wrap) for s in cand])  # (2n - 1, n)
    match = (np.abs(rows[:, None, :] - table[None]) < 1e-6).all(-1)
    if not match.any(-1).all():
        return None
    return cand[match.argmax(-1)]


def _judge_shift(case: Case, outcome: Outcome) -> str | None:
    if outcome.error is not None:
        return outcome.error
    x = np.asarray(case.args[0], np.float64)
    m = int(case.args[1])
    out = {k: np.asarray(outcome.value[k], np.float64) for k in ("a", "b", "a_again")}
    if out["a"].shape != x.shape:
        return f"expected a batch of x's shape {x.shape}, got {out['a'].shape}"
    if not np.array_equal(out["a"], out["a_again"]):
        return "the same key gave two different batches: draw the shifts from the key argument only"
    s = _shifts_of(out["a"], x[0], wrap=False)
    if s is None:
        if _shifts_of(out["a"], x[0], wrap=True) is not None:
            return (
                "the signal wraps around: pad with zeros instead (what leaves the window is lost)"
            )
        return "some rows are not x shifted by a whole number of samples and padded with zeros"
    if np.abs(s).max() > m:
        return f"a shift of {int(np.abs(s).max())} exceeds max_shift = {m}"
    if m == 0:
        return None
    if len(set(s.tolist())) == 1:
        return "every example got the same shift: draw one shift per example (shape (batch,))"
    counts = np.bincount(s + m, minlength=2 * m + 1)
    missing = [int(v) for v in np.flatnonzero(counts == 0) - m]
    if missing:
        return (
            f"the shift {missing} never occurred in {len(s)} draws: the range is -max_shift .. "
            "max_shift, both ends included (randint's maxval is exclusive)"
        )
    expected = len(s) / (2 * m + 1)
    sd = math.sqrt(expected * (1 - 1 / (2 * m + 1)))
    worst = np.abs(counts - expected).max()
    if worst > 6 * sd:
        return f"the shifts are not uniform over -{m} .. {m}: counts {counts.tolist()}"
    if np.array_equal(out["a"], out["b"]):
        return "two different keys gave the same batch: use the key you are given"
    return None


def _shift_reference(key, x, max_shift):
    import jax
    import jax.numpy as jnp

    n = x.shape[1]
    s = jax.random.randint(key, (x.shape[0],), -max_shift, max_shift + 1)
    idx = jnp.arange(n)[None, :] - s[:, None]
    inside = (idx >= 0) & (idx < n)
    return jnp.where(inside, jnp.take_along_axis(x, jnp.clip(idx, 0, n - 1), axis=1), 0.0)


def _batch(n: int) -> np.ndarray:
    return np.tile(_SIGNAL, (n, 1))


random_shift_exercise = Exercise(
    id="04.random_shift",
    name="random_shift",
    points=2,
    cases=(
        Case((_batch(_BATCH), 3), {"key": Key(40)}, probe="_probe_shift", note="max_shift = 3"),
    ),
    hidden=(
        Case((_batch(_BATCH), 1), {"key": Key(41)}, probe="_probe_shift", note="max_shift = 1"),
        Case((_batch(_BATCH), 6), {"key": Key(42)}, probe="_probe_shift", note="max_shift = 6"),
        Case((_batch(8), 0), {"key": Key(43)}, probe="_probe_shift", note="max_shift = 0"),
    ),
    reference=_shift_reference,
    judge=_judge_shift,
    hint="Draw s = jax.random.randint(key, (batch,), -max_shift, max_shift + 1), one per example; "
    "read y[i, t] = x[i, t - s_i] where 0 <= t - s_i < length and 0 elsewhere.",
    probes={"_probe_shift": _probe_shift},
)


EXERCISES = [
    early_stopping_exercise,
    max_norm_exercise,
    noise_lambda_exercise,
    random_shift_exercise,
]
