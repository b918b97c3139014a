"""Chapter 09 exercise specs: the references pass, and the plausible wrong answers fail with
feedback that names the mistake."""

import jax.numpy as jnp
import pytest

from lessonlib.exercises import ch09, evaluate, get


@pytest.mark.parametrize("exercise", ch09.EXERCISES, ids=lambda e: e.id)
def test_reference_passes_visible_and_hidden(exercise):
    assert evaluate(exercise, exercise.reference, hidden=True).passed


def _messages(exercise_id, fn):
    result = evaluate(get(exercise_id), fn, hidden=True)
    assert not result.passed
    return " | ".join(message for _, message in result.failures)


def _labels_from(flags_of):
    def labels(params, n_reused):
        n_layers = len(params["dense"])
        if n_reused > n_layers - 1 or n_reused < 0:
            raise ValueError("n_reused")
        flags = flags_of(n_layers, n_reused)
        return {
            "dense": [
                {k: "frozen" if f else "trainable" for k in layer}
                for f, layer in zip(flags, params["dense"], strict=True)
            ]
        }

    return labels


@pytest.mark.parametrize(
    "flags_of, named",
    [
        (lambda L, n: [True] * L, "output layer"),  # freezes everything, head included
        (lambda L, n: [i <= n for i in range(L)], "off-by-one"),  # i <= n instead of i < n
        (lambda L, n: [L - 1 - n <= i < L - 1 for i in range(L)], "last hidden layers"),
    ],
)
def test_freeze_labels_wrong_answers_are_named(flags_of, named):
    assert named in _messages("09.freeze_labels", _labels_from(flags_of))


def test_freeze_labels_must_refuse_to_freeze_the_head():
    def no_check(params, n_reused):
        return {
            "dense": [
                {k: "frozen" if i < n_reused else "trainable" for k in layer}
                for i, layer in enumerate(params["dense"])
            ]
        }

    assert "must raise ValueError" in _messages("09.freeze_labels", no_check)


def _checked(fn):
    def wrapped(params_a, fresh, n):
        if n > len(fresh["dense"]) - 1:
            raise ValueError("n_reused")
        return fn(params_a, fresh, n)

    return wrapped


@pytest.mark.parametrize(
    "fn, named",
    [
        (
            _checked(lambda a, f, n: {"dense": a["dense"][: n + 1] + f["dense"][n + 1 :]}),
            "off-by-one",
        ),
        (
            _checked(
                lambda a, f, n: {"dense": a["dense"][:-1] + f["dense"][-1:] if n else f["dense"]}
            ),
            "off-by-one",
        ),
        (lambda a, f, n: {"dense": a["dense"][:n] + f["dense"][n:]}, "output layer"),
        (lambda a, f, n: {"dense": list(a["dense"])}, "output layer"),
    ],
)
def test_b_on_a_wrong_answers_are_named(fn, named):
    assert named in _messages("09.b_on_a", fn)


def test_b_on_a_mutating_model_a_is_named():
    @_checked
    def in_place(params_a, fresh, n):
        params_a["dense"][n:] = fresh["dense"][n:]
        return params_a

    assert "changed in place" in _messages("09.b_on_a", in_place)


def test_pick_on_the_test_split_is_named():
    msg = _messages("09.pick_finetune_lr", lambda lrs, val, test: lrs[jnp.argmax(test)])
    assert "test split" in msg
    assert "LOWEST" in _messages("09.pick_finetune_lr", lambda lrs, val, test: lrs[jnp.argmin(val)])


@pytest.mark.parametrize("label", list(ch09._ENDS_MISTAKES))
def test_advantage_ends_wrong_answers_are_named(label):
    """Each plausible misreading of the curve fails the hidden tests and is named in at least one
    case (it is the mistake the learner would have made)."""
    wrong = ch09._ENDS_MISTAKES[label]
    assert label in _messages("09.advantage_ends", wrong)


@pytest.mark.parametrize(
    "fn, named",
    [
        (lambda n, s, r: n[-1], "expected"),  # a hard-coded answer
        (lambda n, s, r: 0, "expected"),
        (lambda n, s, r: "20", "return a number of labels"),
    ],
)
def test_advantage_ends_other_wrong_answers_fail(fn, named):
    assert named in _messages("09.advantage_ends", fn)


def _learner_ends(*, lower=True, index=False):
    """A learner-style implementation, written independently of the judge's mistake list."""

    def advantage_ends(n_labels, scratch, reused):
        d = reused - scratch
        half = 1.96 * jnp.std(d, axis=1, ddof=1) / jnp.sqrt(d.shape[1]) if lower else 0.0
        sig = [bool(v) for v in (jnp.mean(d, axis=1) - half) > 0]
        last = max([i for i, v in enumerate(sig) if v], default=-1)
        if last == len(n_labels) - 1:
            return None
        return last + 1 if index else n_labels[last + 1]

    return advantage_ends


def test_advantage_ends_independent_learner_answers():
    assert evaluate(get("09.advantage_ends"), _learner_ends(), hidden=True).passed
    assert "the interval is ignored" in _messages("09.advantage_ends", _learner_ends(lower=False))
    assert "index" in _messages("09.advantage_ends", _learner_ends(index=True))
