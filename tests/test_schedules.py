"""Tests for lessonlib.schedules: closed forms under jit, optax and the Keras formulas as
independent references, and the plateau rule against hand-worked histories."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lessonlib.schedules import (
    exponential_decay,
    one_cycle,
    one_cycle_momentum,
    piecewise_constant,
    plateau_init,
    plateau_update,
    power_decay,
)

STEPS = np.array([0, 1, 7, 99, 100, 101, 999, 1000, 5000, 20_000], dtype=np.int32)


def values_under_jit(sched, steps=STEPS):
    return np.asarray(jax.jit(jax.vmap(sched))(jnp.asarray(steps)))


def optax_values(sched, steps=STEPS):
    # optax's piecewise schedules mix a Python float with the count, which strict dtype
    # promotion rejects: evaluate the reference under standard promotion, with float steps.
    with jax.numpy_dtype_promotion("standard"):
        return values_under_jit(sched, np.asarray(steps, dtype=np.float32))


# --------------------------------------------------------------------------- closed forms
def test_power_decay_closed_form_under_jit():
    got = values_under_jit(power_decay(0.1, s=100.0, c=2.0))
    want = 0.1 / (1.0 + STEPS / 100.0) ** 2
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_exponential_decay_closed_form_under_jit():
    got = values_under_jit(exponential_decay(0.1, s=1000))
    want = 0.1 * 0.1 ** (STEPS / 1000.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_piecewise_constant_closed_form_under_jit():
    got = values_under_jit(piecewise_constant([100, 1000], [0.1, 0.01, 0.001]))
    want = np.where(STEPS < 100, 0.1, np.where(STEPS < 1000, 0.01, 0.001))
    np.testing.assert_allclose(got, want, rtol=1e-7)


def test_one_cycle_closed_form_under_jit():
    total, peak = 1000, 0.5
    got = values_under_jit(one_cycle(total, peak), np.arange(0, 1100, dtype=np.int32))
    start, final = peak / 10, peak / 10 / 1000
    t = np.arange(0, 1100)
    want = np.where(
        t < 450,
        start + (peak - start) * t / 450,
        np.where(
            t < 900,
            peak + (start - peak) * (t - 450) / 450,
            start + (final - start) * np.minimum(t - 900, 100) / 100,
        ),
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    assert got.max() == pytest.approx(peak)
    assert int(np.argmax(got)) == 450


def test_one_cycle_momentum_closed_form_under_jit():
    t = np.arange(0, 110, dtype=np.int32)
    got = values_under_jit(one_cycle_momentum(100), t)
    want = np.where(t < 45, 0.95 - 0.1 * t / 45, np.where(t < 90, 0.85 + 0.1 * (t - 45) / 45, 0.95))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_schedules_are_elementwise_over_arrays_of_steps():
    steps = jnp.asarray(STEPS)
    for sched in (
        power_decay(0.1, 10),
        exponential_decay(0.1, 10),
        piecewise_constant([100, 1000], [0.1, 0.01, 0.001]),
        one_cycle(1000, 1.0),
        one_cycle_momentum(1000),
    ):
        np.testing.assert_allclose(sched(steps), values_under_jit(sched), rtol=1e-6)


def test_negative_steps_hold_the_initial_value():
    for sched in (power_decay(0.1, 10), exponential_decay(0.1, 10), one_cycle(100, 1.0)):
        assert float(sched(-5)) == pytest.approx(float(sched(0)))


# --------------------------------------------------------------------------- optax as reference
def test_exponential_decay_matches_optax():
    ours = values_under_jit(exponential_decay(0.03, s=250))
    ref = optax_values(optax.exponential_decay(0.03, transition_steps=250, decay_rate=0.1))
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_piecewise_constant_matches_optax():
    boundaries, values = [50, 80, 200], [0.1, 0.05, 0.01, 0.002]
    scales = {b: values[i + 1] / values[i] for i, b in enumerate(boundaries)}
    steps = np.arange(0, 300, dtype=np.int32)
    ours = values_under_jit(piecewise_constant(boundaries, values), steps)
    ref = optax_values(optax.piecewise_constant_schedule(values[0], scales), steps)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


@pytest.mark.parametrize("total", [100, 137, 1000])
def test_one_cycle_matches_optax_linear_onecycle(total):
    peak = 0.3
    ours = one_cycle(
        total,
        peak,
        start_value=peak / 25,
        final_value=peak / 25 / 1e4,
        pct_start=0.3,
        pct_final=0.85,
    )
    ref = optax.linear_onecycle_schedule(total, peak)  # div_factor=25, final_div_factor=1e4
    steps = np.arange(0, total + 10, dtype=np.int32)
    np.testing.assert_allclose(
        values_under_jit(ours, steps), optax_values(ref, steps), rtol=1e-5, atol=1e-9
    )


def test_schedule_drives_an_optax_optimizer_per_step():
    sched = exponential_decay(0.1, s=10)
    opt = optax.sgd(learning_rate=sched)
    params = jnp.zeros(3)
    grads = jnp.ones(3)
    state = opt.init(params)
    for t in range(4):
        updates, state = opt.update(grads, state, params)
        np.testing.assert_allclose(updates, -0.1 * 0.1 ** (t / 10) * np.ones(3), rtol=1e-6)


# --------------------------------------------------------------------------- Keras formulas
# The formulas from the Keras docs of keras.optimizers.schedules, written out here.
def keras_inverse_time_decay(step, initial_learning_rate, decay_steps, decay_rate):
    return initial_learning_rate / (1 + decay_rate * step / decay_steps)


def keras_exponential_decay(step, initial_learning_rate, decay_steps, decay_rate):
    return initial_learning_rate * decay_rate ** (step / decay_steps)


def keras_piecewise_constant_decay(step, boundaries, values):
    # "use values[0] while step <= boundaries[0], values[1] while boundaries[0] < step <= ..."
    for b, v in zip(boundaries, values, strict=False):
        if step <= b:
            return v
    return values[-1]


def test_power_decay_matches_keras_inverse_time_decay():
    # Géron: InverseTimeDecay(0.01, decay_steps=10_000, decay_rate=1.0) is eta0 / (1 + t/s).
    ours = values_under_jit(power_decay(0.01, s=10_000))
    np.testing.assert_allclose(ours, keras_inverse_time_decay(STEPS, 0.01, 10_000, 1.0), rtol=1e-6)
    # decay_rate r maps to s = decay_steps / r.
    ours = values_under_jit(power_decay(0.01, s=10_000 / 0.5))
    np.testing.assert_allclose(ours, keras_inverse_time_decay(STEPS, 0.01, 10_000, 0.5), rtol=1e-6)


def test_exponential_decay_matches_keras():
    ours = values_under_jit(exponential_decay(0.01, s=20_000))
    np.testing.assert_allclose(ours, keras_exponential_decay(STEPS, 0.01, 20_000, 0.1), rtol=1e-5)


def test_piecewise_constant_matches_keras_except_one_step_late_at_boundaries():
    boundaries, values = [50, 80], [0.01, 0.005, 0.001]
    sched = piecewise_constant(boundaries, values)
    for t in range(0, 120):
        keras = keras_piecewise_constant_decay(t, boundaries, values)
        if t in boundaries:
            # Keras switches one step later: at step b it still uses the old value.
            assert keras_piecewise_constant_decay(t + 1, boundaries, values) == pytest.approx(
                float(sched(t))
            )
            assert keras != pytest.approx(float(sched(t)))
        else:
            assert float(sched(t)) == pytest.approx(keras)


# --------------------------------------------------------------------------- traced hyperparameters
def test_total_steps_may_be_a_traced_whole_number():
    """Chapter 07's slider moves 1cycle's length inside one compiled run: a float tracer."""
    at = jax.jit(lambda total, t: one_cycle(total, 0.1)(t))
    assert float(at(jnp.float32(100.0), 45)) == pytest.approx(0.1)
    assert float(one_cycle(100.0, 0.1)(45)) == pytest.approx(0.1)  # 100.0 is a whole number


def test_traced_hyperparameters_do_not_recompile():
    traces = []

    @jax.jit
    def lr_at(peak, start, t):
        traces.append(None)
        return one_cycle(200, peak, start_value=start)(t) + exponential_decay(peak, start * 1e4)(t)

    for peak in (0.1, 0.2, 0.5):
        got = lr_at(jnp.float32(peak), jnp.float32(peak / 5), jnp.int32(100))
        want = one_cycle(200, peak, start_value=peak / 5)(100) + exponential_decay(
            peak, peak / 5 * 1e4
        )(100)
        assert float(got) == pytest.approx(float(want), rel=1e-5)
    assert len(traces) == 1


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: power_decay(0.0, 10), "init_value must be > 0"),
        (lambda: power_decay(0.1, -1), "s must be > 0"),
        (lambda: power_decay(0.1, 10, c=0), "c must be > 0"),
        (lambda: exponential_decay(-0.1, 10), "init_value must be > 0"),
        (lambda: exponential_decay(0.1, 0), "s must be > 0"),
        (lambda: piecewise_constant([10, 10], [1.0, 0.5, 0.1]), "strictly increasing"),
        (lambda: piecewise_constant([20, 10], [1.0, 0.5, 0.1]), "strictly increasing"),
        (lambda: piecewise_constant([-1], [1.0, 0.5]), "strictly increasing steps >= 0"),
        (lambda: piecewise_constant([10, 20], [1.0, 0.5]), r"len\(boundaries\) \+ 1"),
        (lambda: piecewise_constant([10], [1.0, 0.0]), r"values\[1\] must be > 0"),
        (lambda: one_cycle(0, 0.1), "total_steps must be a positive integer, got 0"),
        (lambda: one_cycle(10.5, 0.1), "total_steps must be a positive integer, got 10.5"),
        (lambda: one_cycle(100, -0.1), "max_value must be > 0"),
        (lambda: one_cycle(100, 0.1, start_value=0.2), "start_value must be <= max_value"),
        (lambda: one_cycle(100, 0.1, pct_start=0.9, pct_final=0.5), "pct_start must be <"),
        (lambda: one_cycle(100, 0.1, pct_start=0.0), r"pct_start must be in \(0, 1\)"),
        (lambda: one_cycle(2, 0.1), "too small"),
        (lambda: one_cycle_momentum(100, max_momentum=1.0), r"max_momentum must be in \[0, 1\)"),
        (lambda: one_cycle_momentum(100, min_momentum=0.99), "min_momentum must be <="),
        (lambda: plateau_init(0.0), "lr must be > 0"),
        (lambda: plateau_update(plateau_init(0.1), 1.0, factor=1.0), r"factor must be in \(0, 1\)"),
        (
            lambda: plateau_update(plateau_init(0.1), 1.0, patience=-1),
            "patience must be an integer >= 0, got -1",
        ),
        (
            lambda: plateau_update(plateau_init(0.1), 1.0, cooldown=1.5),
            "cooldown must be an integer >= 0, got 1.5",
        ),
        (lambda: plateau_update(plateau_init(0.1), 1.0, min_lr=-1.0), "min_lr must be >= 0"),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# --------------------------------------------------------------------------- reduce on plateau
def run_plateau(metrics, lr, **kw):
    state, lrs = plateau_init(lr), []
    for m in metrics:
        state = plateau_update(state, m, **kw)
        lrs.append(float(state.lr))
    return lrs


def test_plateau_hand_worked_with_cooldown_and_min_lr():
    # factor 0.5, patience 2, cooldown 1, min_lr 0.2, min_delta 0, worked by hand:
    # ep1 5 best; ep2 4 best; ep3 wait 1; ep4 wait 2 -> 0.5 (cooldown 1); ep5 cooldown ends,
    # wait 1; ep6 wait 2 -> 0.25; ep7 3 best; ep8 wait 1; ep9 wait 2 -> max(0.125, 0.2) = 0.2;
    # ep10 wait 1; ep11 wait 2 but lr is at min_lr: stays; ep12 stays.
    metrics = [5, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3]
    want = [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]
    got = run_plateau(metrics, 1.0, factor=0.5, patience=2, cooldown=1, min_lr=0.2, min_delta=0)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_plateau_hand_worked_cooldown_blocks_waiting():
    # patience 1, cooldown 2: after a cut, one epoch is fully blocked, so cuts come every 2nd epoch.
    got = run_plateau([1.0] * 7, 1.0, factor=0.5, patience=1, cooldown=2, min_delta=0)
    np.testing.assert_allclose(got, [1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125], rtol=1e-6)


def test_plateau_hand_worked_min_delta():
    # best 1.0; 0.95 is not < 1.0 - 0.1 -> cut; 0.85 < 0.9 -> new best; 0.8 is not < 0.75 -> cut.
    got = run_plateau([1.0, 0.95, 0.85, 0.8], 1.0, factor=0.5, patience=1, min_delta=0.1)
    np.testing.assert_allclose(got, [1, 0.5, 0.5, 0.25], rtol=1e-6)


def test_plateau_default_is_geron_factor_half_patience_five():
    # Five epochs in a row without improvement after the best one: the 5th cuts the rate by half.
    got = run_plateau([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 0.1)
    np.testing.assert_allclose(got, [0.1] * 5 + [0.05] * 2, rtol=1e-6)


class KerasReduceLROnPlateau:
    """Plain-Python transcription of keras.callbacks.ReduceLROnPlateau.on_epoch_end, mode min."""

    def __init__(self, lr, factor, patience, cooldown, min_lr, min_delta):
        self.lr, self.factor, self.patience = lr, factor, patience
        self.cooldown, self.min_lr, self.min_delta = cooldown, min_lr, min_delta
        self.best, self.wait, self.cooldown_counter = np.inf, 0, 0

    def on_epoch_end(self, current):
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if current < self.best - self.min_delta:
            self.best = current
            self.wait = 0
        elif not self.cooldown_counter > 0:
            self.wait += 1
            if self.wait >= self.patience and self.lr > np.float32(self.min_lr):
                self.lr = max(self.lr * self.factor, self.min_lr)
                self.cooldown_counter = self.cooldown
                self.wait = 0
        return self.lr


@pytest.mark.parametrize("seed", range(4))
def test_plateau_in_lax_scan_matches_keras_transcription(seed):
    rng = np.random.default_rng(seed)
    # A noisy, flattening validation curve, rounded so that ties happen.
    metrics = np.round(1.0 / np.arange(1, 61) + 0.05 * rng.random(60), 2).astype(np.float32)
    kw = dict(factor=0.5, patience=3, cooldown=2, min_lr=0.01, min_delta=0.005)
    keras = KerasReduceLROnPlateau(0.4, **kw)
    want = [keras.on_epoch_end(float(m)) for m in metrics]

    @jax.jit
    def scan(metrics):
        def body(state, m):
            state = plateau_update(state, m, **kw)
            return state, state.lr

        return jax.lax.scan(body, plateau_init(0.4), metrics)[1]

    np.testing.assert_allclose(np.asarray(scan(jnp.asarray(metrics))), want, rtol=1e-6)
    assert len(set(want)) > 2  # the history actually exercises several cuts


# --------------------------------------------------------------------------- chapter 07 exercises
def _evaluate(exercise_id, fn):
    from lessonlib import exercises

    return exercises.evaluate(exercises.get(exercise_id), fn, hidden=True)


def test_exercise_references_pass_their_own_checks():
    from lessonlib.exercises import ch07

    for ex in ch07.EXERCISES:
        report = _evaluate(ex.id, ex.reference)
        assert report.passed, report.message()


def test_exercise_power_rejects_python_if_and_missing_validation():
    def with_python_if(init_value, s, c=1.0):
        def schedule(t):
            return init_value if t == 0 else init_value / (1 + t / s) ** c

        return schedule

    def unchecked(init_value, s, c=1.0):
        return lambda t: init_value / (1.0 + jnp.asarray(t, jnp.float32) / s) ** c

    assert not _evaluate("07.power_schedule", with_python_if).passed
    report = _evaluate("07.power_schedule", unchecked)
    assert not report.passed and "ValueError" in report.message()


def test_exercise_one_cycle_catches_a_missing_final_phase():
    def two_phases(total_steps, max_lr):
        if not (total_steps > 0 and max_lr > 0):
            raise ValueError("bad")
        knots = jnp.array([0, int(0.45 * total_steps), int(0.9 * total_steps)], jnp.float32)
        values = jnp.array([max_lr / 10, max_lr, max_lr / 10], jnp.float32)
        return lambda t: jnp.interp(jnp.asarray(t, jnp.float32), knots, values)

    assert not _evaluate("07.one_cycle_schedule", two_phases).passed


def test_exercise_plateau_catches_python_if_and_cutting_on_improvement():
    def python_if(state, metric, *, factor=0.5, patience=5, min_delta=1e-4):
        lr, best, wait = state
        if metric < best - min_delta:
            return lr, metric, 0
        wait = wait + 1
        if wait >= patience:
            return lr * factor, best, 0
        return lr, best, wait

    def cuts_even_when_improving(state, metric, *, factor=0.5, patience=5, min_delta=1e-4):
        lr, best, wait = state
        improved = metric < best - min_delta
        best = jnp.where(improved, metric, best)
        wait = jnp.where(improved, 0, wait + 1)
        reduce = wait >= patience
        return jnp.where(reduce, lr * factor, lr), best, jnp.where(reduce, 0, wait)

    report = _evaluate("07.plateau_step", python_if)
    assert not report.passed and "lax.scan" in report.message()  # the loop cases pass, scan fails
    assert not _evaluate("07.plateau_step", cuts_even_when_improving).passed  # patience=0 case


def _plateau_min_best(state, metric, *, factor=0.5, patience=5, min_delta=1e-4):
    lr, best, wait = state
    improved = metric < best - min_delta
    best = jnp.minimum(best, metric)  # the mistake: a dip smaller than min_delta moves best
    wait = jnp.where(improved, 0, wait + 1)
    reduce = ~improved & (wait >= patience)
    return jnp.where(reduce, lr * factor, lr), best, jnp.where(reduce, 0, wait)


def test_exercise_plateau_catches_best_as_running_minimum():
    """`best = min(best, metric)` used to pass; Keras moves best only on metric < best - min_delta.
    A visible case (the instant check) and a hidden one (grading) catch it, named, at the epoch."""
    from lessonlib import exercises

    ex = exercises.get("07.plateau_step")
    for hidden in (False, True):
        report = exercises.evaluate(ex, _plateau_min_best, hidden=hidden)
        assert not report.passed
        assert "best = min(best, metric)" in report.message()
    report = exercises.evaluate(ex, _plateau_min_best)
    # the dip case: epoch 2 (validation loss 0.995) must leave best at 1.0
    assert "after epoch 2 (validation loss 0.995): best should be 1, got 0.995" in report.message()
    hidden_only = exercises.Exercise(**{**ex.__dict__, "cases": ()})
    assert not exercises.evaluate(hidden_only, _plateau_min_best, hidden=True).passed


def test_exercise_schedule_feedback_names_the_step_not_the_grid_index():
    """A 1cycle whose peak is at 0.5 T instead of floor(0.45 T): the feedback names a step t of
    the learner's schedule (the probe grid has 128 points over [0, T + 5])."""

    def peak_at_half(total_steps, max_lr):
        if not (total_steps > 0 and max_lr > 0):
            raise ValueError("total_steps and max_lr must be > 0")
        knots = jnp.array([0, 0.5 * total_steps, 0.9 * total_steps, total_steps], jnp.float32)
        values = jnp.array([max_lr / 10, max_lr, max_lr / 10, max_lr / 1e4], jnp.float32)
        return lambda t: jnp.interp(jnp.asarray(t, jnp.float32), knots, values)

    report = _evaluate("07.one_cycle_schedule", peak_at_half)
    assert not report.passed
    message = report.message()
    assert "at step t=" in message and "index" not in message
    t = int(message.split("at step t=")[1].split(":")[0])
    from lessonlib import schedules

    want = float(schedules.one_cycle(100, 0.1)(t))
    assert f"expected {want:.6g}" in message


# --------------------------------------------------------------------------- cosine and warm-up
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_cosine_decay_matches_optax(alpha):
    from lessonlib.schedules import cosine_decay

    steps = np.arange(0, 260, dtype=np.int32)
    ours = values_under_jit(cosine_decay(0.2, decay_steps=200, alpha=alpha), steps)
    ref = optax_values(optax.cosine_decay_schedule(0.2, decay_steps=200, alpha=alpha), steps)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)
    assert ours[-1] == pytest.approx(0.2 * alpha, abs=1e-8)  # held after decay_steps


def test_linear_warmup_matches_optax_linear_schedule_and_warmup_cosine():
    from lessonlib.schedules import cosine_decay, linear_warmup

    steps = np.arange(0, 320, dtype=np.int32)
    held = values_under_jit(linear_warmup(0.3, 50, init_value=0.01), steps)
    ref = optax_values(optax.linear_schedule(0.01, 0.3, transition_steps=50), steps)
    np.testing.assert_allclose(held, ref, rtol=1e-5, atol=1e-8)
    warm_cos = linear_warmup(0.3, 50, cosine_decay(0.3, 250, alpha=0.001 / 0.3), init_value=0.01)
    ref = optax.warmup_cosine_decay_schedule(0.01, 0.3, 50, decay_steps=300, end_value=0.001)
    np.testing.assert_allclose(
        values_under_jit(warm_cos, steps), optax_values(ref, steps), rtol=1e-5, atol=1e-8
    )


def test_cosine_and_warmup_check_their_arguments():
    from lessonlib.schedules import cosine_decay, linear_warmup

    with pytest.raises(ValueError, match="decay_steps must be > 0"):
        cosine_decay(0.1, 0)
    with pytest.raises(ValueError, match="alpha"):
        cosine_decay(0.1, 10, alpha=1.5)
    with pytest.raises(ValueError, match="warmup_steps must be > 0"):
        linear_warmup(0.1, 0)
    with pytest.raises(ValueError, match="init_value"):
        linear_warmup(0.1, 10, init_value=0.2)


def test_chapter_07_probe_source_compiles_for_the_grader():
    """The grader sends the probes' source (with the spec module's imports, once per probe) to
    its sandbox; a ``from __future__`` import there is a SyntaxError after the first copy, and
    every 07 exercise then scored 0 with "the process exited with code 1"."""
    from lessonlib.exercises import ch07
    from lessonlib.grading.grader import probe_source

    namespace = {"__name__": "lessonlib_probes"}
    exec(compile(probe_source(ch07.EXERCISES), "<probes>", "exec"), namespace)
    assert {"at_steps", "loop", "scan"} <= set(namespace)
