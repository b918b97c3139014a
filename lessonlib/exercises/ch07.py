"""Chapter 07 exercises: two schedules, the reduce-on-plateau rule and the LR finder's pick.

The references are the library's own implementations (``lessonlib.schedules``), which are tested
against optax and the Keras formulas in ``tests/test_schedules.py``. Schedules are judged through
probes that build the learner's schedule and evaluate it under ``jax.vmap`` at many steps, so a
schedule that only works in plain Python (an ``if`` on the step) fails with a clear message.

Feedback names the step ``t`` (schedules) or the epoch and its validation loss (plateau) where the
first wrong value appears, never a position in the grader's grid of probe points, and names the
usual mistake when the answer matches it.
"""

from collections.abc import Callable

import numpy as np

from lessonlib.exercises import (
    Case,
    Exercise,
    Outcome,
    _to_inputs,
    compare,
    default_verdict,
    expected_outcome,
    get,
)

STEPS = np.array([0, 1, 7, 50, 99, 100, 101, 250, 999, 1000, 12345], np.int32)


# --------------------------------------------------------------------------- probes (trusted)
def _at_steps(factory, *args, until=None, **kwargs):
    """Build the schedule, then evaluate it at many steps under ``jax.vmap``.

    vmap traces the schedule like jit does (a Python ``if`` on the step fails) but needs no
    compilation. ``until=T`` evaluates 128 steps spread over [0, T]; otherwise ``STEPS``.
    """
    import jax
    import jax.numpy as jnp

    sched = factory(*args, **kwargs)
    steps = STEPS if until is None else np.round(np.linspace(0, until, 128))
    return np.asarray(jax.vmap(sched)(jnp.asarray(steps, jnp.int32)), np.float64)


def _plateau_state(lr0):
    import jax.numpy as jnp

    return (jnp.float32(lr0), jnp.float32(np.inf), jnp.int32(0))


PLATEAU_FIELDS = ("lr", "best", "wait")


def _plateau_loop(fn, lr0, metrics, **kwargs):
    """Feed a validation history to ``fn`` epoch by epoch in plain Python; return ``lr``, ``best``
    and ``wait`` after every epoch."""
    state = _plateau_state(lr0)
    rows = []
    for m in metrics:
        state = fn(state, m, **kwargs)
        rows.append([float(v) for v in state])
    return {
        k: np.asarray(col, np.float64)
        for k, col in zip(PLATEAU_FIELDS, zip(*rows, strict=True), strict=True)
    }


def _plateau_scan(fn, lr0, metrics, **kwargs):
    """The same history inside ``jax.lax.scan`` (so it must be written with jnp.where)."""
    import jax
    import jax.numpy as jnp

    def body(state, m):
        lr, best, wait = fn(state, m, **kwargs)
        new = (jnp.asarray(lr, jnp.float32), jnp.asarray(best, jnp.float32))
        new = new + (jnp.asarray(wait).astype(jnp.int32),)
        return new, new

    _, out = jax.jit(lambda ms: jax.lax.scan(body, _plateau_state(lr0), ms))(metrics)
    return {k: np.asarray(v, np.float64) for k, v in zip(PLATEAU_FIELDS, out, strict=True)}


# --------------------------------------------------------------------------- references
def _power_reference(init_value, s, c=1.0):
    from lessonlib import schedules

    return schedules.power_decay(init_value, s, c)


def _one_cycle_reference(total_steps, max_lr):
    from lessonlib import schedules

    return schedules.one_cycle(total_steps, max_lr)


def _plateau_reference(state, metric, *, factor=0.5, patience=5, min_delta=1e-4):
    import jax.numpy as jnp

    from lessonlib import schedules

    lr, best, wait = state
    full = schedules.PlateauState(
        lr=jnp.asarray(lr, jnp.float32),
        best=jnp.asarray(best, jnp.float32),
        wait=jnp.asarray(wait).astype(jnp.int32),
        cooldown_counter=jnp.zeros((), jnp.int32),
    )
    new = schedules.plateau_update(
        full, metric, factor=factor, patience=patience, min_delta=min_delta, cooldown=0, min_lr=0.0
    )
    return new.lr, new.best, new.wait


def _pick_reference(lrs, losses, beta=0.9):
    from lessonlib import lr_finder

    return lr_finder.pick_lr(lrs, losses, rule="minimum", divisor=10.0, beta=beta, skip_start=0)


def _plateau_min_best(state, metric, *, factor=0.5, patience=5, min_delta=1e-4):
    """The usual mistake: ``best = min(best, metric)``, so a dip smaller than min_delta moves best."""
    import jax.numpy as jnp

    lr, best, wait = state
    improved = metric < best - min_delta
    best = jnp.minimum(best, metric)
    wait = jnp.where(improved, 0, wait + 1)
    reduce = ~improved & (wait >= patience)
    return jnp.where(reduce, lr * factor, lr), best, jnp.where(reduce, 0, wait)


# --------------------------------------------------------------------------- feedback
def _first_mismatch(got, want, *, rtol, atol) -> int | None:
    g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    bad = ~np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    return int(np.argmax(bad)) if bad.any() else None


def _schedule_steps(case: Case) -> np.ndarray:
    """The steps t at which ``_at_steps`` evaluated the schedule for this case."""
    until = case.kwargs.get("until")
    return STEPS if until is None else np.round(np.linspace(0, until, 128)).astype(np.int64)


def _locate_schedule(case: Case, got, want, rtol, atol) -> str:
    i = _first_mismatch(got, want, rtol=rtol, atol=atol)
    t = int(_schedule_steps(case)[i])
    return f"at step t={t}: expected {float(want[i]):.6g}, got {float(got[i]):.6g}"


def _locate_plateau(case: Case, got, want, rtol, atol) -> str:
    metrics = np.asarray(case.args[1])
    first = {k: _first_mismatch(got[k], want[k], rtol=rtol, atol=atol) for k in PLATEAU_FIELDS}
    key = min((k for k in PLATEAU_FIELDS if first[k] is not None), key=lambda k: first[k])
    e = first[key]
    return (
        f"after epoch {e + 1} (validation loss {float(metrics[e]):.6g}): {key} should be "
        f"{float(want[key][e]):.6g}, got {float(got[key][e]):.6g}"
    )


def _judge(
    exercise_id: str,
    locate: Callable[..., str],
    mistakes: dict[str, Callable] | None = None,
):
    """The default verdict (errors, structure, values), with the first wrong value located by
    ``locate`` in the learner's terms and, when the answer matches one, the mistake named."""

    def judge(case: Case, outcome: Outcome) -> str | None:
        ex = get(exercise_id)
        why = default_verdict(ex, case, outcome)
        expected = expected_outcome(ex, case)  # schedules: cheap to run twice
        if why is None or outcome.error is not None or expected.error is not None:
            return why
        try:
            why = locate(case, outcome.value, expected.value, ex.rtol, ex.atol)
        except (TypeError, ValueError, KeyError, IndexError):
            pass  # the structure itself is wrong: compare's message says how
        for label, wrong in (mistakes or {}).items():
            args, kwargs = _to_inputs(case.args), _to_inputs(dict(case.kwargs))
            bad = ex.probes[case.probe](wrong, *args, **kwargs)
            if compare(outcome.value, bad, rtol=ex.rtol, atol=ex.atol) is None:
                return f"{why} — this is what you get when {label}"
        return why

    return judge


PLATEAU_MISTAKES = {
    "best is lowered on every decrease (best = min(best, metric)): Keras moves best only on an "
    "improvement, metric < best - min_delta, so a dip smaller than min_delta changes nothing": (
        _plateau_min_best
    ),
}


# --------------------------------------------------------------------------- cases
def _curve(n, i_min, *, seed, nan_from=None):
    """A synthetic LR-finder curve: flat, a dip down to index i_min, then a climb; small noise."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    after = np.maximum(i - i_min, 0)
    loss = np.where(i <= i_min, 2.3 - 1.5 * (i / i_min) ** 2, 0.8 + 0.3 * after**1.5)
    loss = loss + 0.02 * rng.standard_normal(n)
    if nan_from is not None:
        loss[nan_from:] = np.nan
    return loss.astype(np.float32)


_LRS60 = np.logspace(-4, 1, 60).astype(np.float32)
_LRS100 = np.logspace(-5, 1, 100).astype(np.float32)

_HISTORY = np.array([1.0, 0.8, 0.7, 0.7, 0.7, 0.71, 0.7, 0.69, 0.7, 0.7, 0.7, 0.7], np.float32)
_FLAT = np.array([0.5] * 14, np.float32)
# A dip smaller than min_delta (0.995 after 1.0, min_delta=0.01), then a real improvement (0.989).
_DIP = np.array([1.0, 0.995, 0.989, 0.989, 0.989, 0.989, 0.989], np.float32)
_DIP_HIDDEN = np.array([2.0, 1.97, 1.94, 1.93, 1.93, 1.93, 1.93, 1.93], np.float32)
_NOISY = np.round(1.0 / np.arange(1, 41) + 0.04 * np.random.default_rng(7).random(40), 3).astype(
    np.float32
)


EXERCISES = [
    Exercise(
        id="07.power_schedule",
        name="power_schedule",
        points=2,
        cases=(
            Case((0.01, 10_000.0), probe="at_steps", note="init_value=0.01, s=10_000, c=1"),
            Case((0.1, 50.0), {"c": 2.0}, probe="at_steps", note="init_value=0.1, s=50, c=2"),
            Case((0.1, 0.0), probe="at_steps", note="s=0 must raise ValueError"),
        ),
        hidden=(
            Case((1.0, 3.0), {"c": 0.5}, probe="at_steps"),
            Case((0.05, 1234.5), probe="at_steps"),
            Case((-0.1, 10.0), probe="at_steps"),
            Case((0.1, 10.0), {"c": 0.0}, probe="at_steps"),
        ),
        reference=_power_reference,
        judge=_judge("07.power_schedule", _locate_schedule),
        probes={"at_steps": _at_steps},
        rtol=1e-4,
        atol=1e-9,
        hint="eta0 / (1 + t/s)**c with t as a float (jnp), and raise ValueError when building "
        "the schedule if init_value, s or c is not > 0.",
    ),
    Exercise(
        id="07.one_cycle_schedule",
        name="one_cycle_schedule",
        points=3,
        cases=(
            Case((100, 0.1), {"until": 105}, probe="at_steps", note="T=100, max=0.1"),
            Case((37, 2.0), {"until": 45}, probe="at_steps", note="T=37, max=2.0"),
            Case((100, 0.0), probe="at_steps", note="max_lr=0 must raise ValueError"),
        ),
        hidden=(
            Case((1000, 0.5), {"until": 1100}, probe="at_steps"),
            Case((11, 1.0), {"until": 15}, probe="at_steps"),
            Case((0, 0.1), probe="at_steps"),
        ),
        reference=_one_cycle_reference,
        judge=_judge("07.one_cycle_schedule", _locate_schedule),
        probes={"at_steps": _at_steps},
        rtol=1e-4,
        atol=1e-9,
        hint="Knots at t = 0, floor(0.45 T), floor(0.9 T), T with values max/10, max, max/10, "
        "max/10/1000; interpolate linearly (jnp.interp or jnp.where), hold the end values.",
    ),
    Exercise(
        id="07.plateau_step",
        name="plateau_step",
        points=3,
        cases=(
            Case((1.0, _HISTORY), {"patience": 3}, probe="loop", note="patience=3, Python loop"),
            Case((0.1, _FLAT), probe="loop", note="a flat history, default factor and patience"),
            Case((1.0, _HISTORY), {"patience": 3}, probe="scan", note="same, inside lax.scan"),
            Case(
                (1.0, _DIP),
                {"patience": 2, "min_delta": 0.01},
                probe="loop",
                note="min_delta=0.01: a dip of 0.005 (not an improvement), then a real one",
            ),
        ),
        hidden=(
            Case((0.5, _DIP_HIDDEN), {"patience": 3, "min_delta": 0.05}, probe="scan"),
            Case((0.4, _NOISY), {"patience": 2, "factor": 0.2}, probe="scan"),
            Case((0.4, _NOISY), {"patience": 3, "min_delta": 0.003}, probe="loop"),
            Case((1.0, _FLAT), {"patience": 0}, probe="scan"),
        ),
        reference=_plateau_reference,
        judge=_judge("07.plateau_step", _locate_plateau, PLATEAU_MISTAKES),
        probes={"loop": _plateau_loop, "scan": _plateau_scan},
        rtol=1e-6,
        atol=1e-9,
        hint="Improved means metric < best - min_delta (then best = metric, wait = 0); otherwise "
        "best stays as it is, wait += 1 and at wait >= patience: lr *= factor, wait = 0. Use jnp.where, not if.",
    ),
    Exercise(
        id="07.pick_learning_rate",
        name="pick_learning_rate",
        points=2,
        cases=(
            Case((_LRS60, _curve(60, 40, seed=0)), note="a clean curve, beta=0.9"),
            Case(
                (_LRS60, _curve(60, 35, seed=1, nan_from=52)),
                {"beta": 0.0},
                note="NaN after divergence, no smoothing",
            ),
        ),
        hidden=(
            Case((_LRS100, _curve(100, 70, seed=2, nan_from=90))),
            Case((_LRS100, _curve(100, 55, seed=3)), {"beta": 0.5}),
        ),
        reference=_pick_reference,
        rtol=1e-5,
        atol=1e-12,
        hint="Smooth with a bias-corrected moving average avg_i/(1 - beta**(i+1)), skip NaN "
        "(jnp.nanargmin), take the lr at the smoothed minimum and divide it by 10.",
    ),
]
