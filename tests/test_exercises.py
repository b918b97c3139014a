"""The exercise-spec machinery: run_case returns plain data, judge_case decides, check reports."""

import jax
import numpy as np
import pytest

from lessonlib.exercises import (
    Case,
    CheckFailed,
    Exercise,
    Key,
    Outcome,
    compare,
    evaluate,
    judge_case,
    run_case,
    to_plain,
)


def _ref(w, lam):
    return lam / 2 * np.sum(np.asarray(w, np.float64) ** 2)


def _checked_ref(rate):
    if not 0 <= rate < 1:
        raise ValueError("rate must lie in [0, 1)")
    return rate


EX = Exercise(
    id="99.l2",
    name="l2",
    points=2,
    cases=(Case((np.array([1.0, 2.0], np.float32), 1.0), note="w=[1,2]"),),
    hidden=(Case((np.zeros(3, np.float32), 5.0)),),
    reference=_ref,
    hint="sum of squares times lam/2",
)
RAISES = Exercise(
    id="99.rate", name="rate", points=1, cases=(Case((1.5,)),), reference=_checked_ref
)
VALUE_EX = Exercise(
    id="99.v", name="v_answer", points=1, kind="value", cases=(Case(),), reference=3
)


def test_correct_answer_passes():
    import jax.numpy as jnp

    report = evaluate(EX, lambda w, lam: lam / 2 * jnp.sum(w**2), hidden=True)
    assert report.passed and report.total == 2


def test_wrong_answer_fails_with_hint():
    import jax.numpy as jnp

    report = evaluate(EX, lambda w, lam: lam * jnp.sum(w**2))
    assert not report.passed
    msg = report.message()
    assert "expected 2.5, got 5" in msg and "Hint: sum of squares" in msg and "w=[1,2]" in msg


def test_not_implemented_and_crashes_are_reported():
    def unsolved(w, lam):
        raise NotImplementedError()

    assert "not solved yet" in evaluate(EX, unsolved).message()
    assert "ZeroDivisionError" in evaluate(EX, lambda w, lam: 1 / 0).message()
    assert "must be a function" in evaluate(EX, 3.0).message()


def test_expected_exception_type_must_match():
    assert judge_case(RAISES, RAISES.cases[0], Outcome(error="ValueError: nope")) is None
    assert "expected ValueError" in judge_case(RAISES, RAISES.cases[0], Outcome(value=1.5))
    assert "TypeError" in judge_case(RAISES, RAISES.cases[0], Outcome(error="TypeError: x"))


def test_objects_with_custom_eq_are_not_plain_data():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    outcome = run_case(EX, lambda w, lam: AlwaysEqual(), EX.cases[0])
    assert outcome.value is None and outcome.error.startswith("TypeError")
    assert judge_case(EX, EX.cases[0], outcome) is not None


def test_to_plain():
    import jax.numpy as jnp

    assert to_plain({"a": jnp.ones(2), "b": [1, 2.5, None]})["b"] == [1, 2.5, None]
    assert isinstance(to_plain(jnp.float32(3)), np.ndarray)
    with pytest.raises(TypeError):
        to_plain(np.array([object()]))
    with pytest.raises(TypeError):
        to_plain(jax.random.key(0))


def test_keys_reach_the_function_as_jax_keys():
    seen = {}

    def fn(key):
        seen["key"] = key
        return jax.random.uniform(key, (2,))

    ex = Exercise(
        id="99.k",
        name="fn",
        points=1,
        cases=(Case((Key(3),)),),
        reference=None,
        judge=lambda case, out: None,
    )
    out = run_case(ex, fn, ex.cases[0])
    np.testing.assert_array_equal(out.value, jax.random.uniform(jax.random.key(3), (2,)))


def test_compare_shapes_and_structure():
    assert "shape" in compare(np.ones(3), np.ones(2))
    assert compare({"a": 1.0}, {"a": 1.0}) is None
    assert "keys" in compare({"b": 1.0}, {"a": 1.0})
    assert "index (1,)" in compare(np.array([1.0, 3.0]), np.array([1.0, 2.0]))


def test_check_raises_and_prints(monkeypatch, capsys):
    import lessonlib.exercises as exercises

    monkeypatch.setattr(exercises, "get", lambda exercise_id: EX)
    assert exercises.check("99.l2", lambda w, lam: lam / 2 * (w**2).sum()) is None
    assert "✔ 99.l2" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="Hint"):
        exercises.check("99.l2", lambda w, lam: 0.0)


def test_unknown_exercise():
    from lessonlib.exercises import get

    with pytest.raises(KeyError):
        get("42.nothing")


def test_check_failed_renders_as_the_verdict_not_a_traceback(monkeypatch, capsys):
    """In IPython a failed check shows the verdict and the hint only (``_render_traceback_``);
    it is still an error, so Run All needs ``raises-exception`` and grading scores it 0."""
    from IPython.core.interactiveshell import InteractiveShell

    import lessonlib.exercises as exercises

    monkeypatch.setattr(exercises, "get", lambda exercise_id: EX)
    shell = InteractiveShell.instance()
    shell.user_ns["check"] = exercises.check
    result = shell.run_cell('check("99.l2", lambda w, lam: 0.0)')
    out = capsys.readouterr().out
    assert isinstance(result.error_in_exec, CheckFailed)  # still a failure
    assert "✘ 99.l2" in out and "Hint: sum of squares" in out
    assert "Traceback" not in out and "exercises/__init__.py" not in out
    assert len(out.strip().splitlines()) <= 4
    # an unsolved value exercise: the variable was never assigned
    monkeypatch.setattr(exercises, "get", lambda exercise_id: VALUE_EX)
    result = shell.run_cell('check("99.v")')
    out = capsys.readouterr().out
    assert isinstance(result.error_in_exec, CheckFailed) and "not solved yet" in out
    assert "NameError" not in out and "Traceback" not in out
    InteractiveShell.clear_instance()
