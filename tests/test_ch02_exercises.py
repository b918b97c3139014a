"""Chapter 02's graders reject the plausible wrong answers, in the instant check (visible cases)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib.exercises import evaluate, get
from lessonlib.exercises.ch02 import _mc_reference
from lessonlib.layers import dropout as library_dropout


def _shared_row_mask(x, rate, *, key=None, train=True):
    """One mask row broadcast over the whole batch."""
    if not 0 <= rate < 1:
        raise ValueError("rate")
    if not train or rate == 0:
        return x
    if key is None:
        raise ValueError("key")
    keep = jax.random.uniform(key, x.shape[-1:]) >= rate
    return jnp.where(keep, x / (1 - rate), 0.0)


def _mean_survivors(x, rate, *, key=None, train=True):
    """Survivors get mean(x)/(1-p) instead of their own x_i/(1-p)."""
    if not 0 <= rate < 1:
        raise ValueError("rate")
    if not train or rate == 0:
        return x
    if key is None:
        raise ValueError("key")
    keep = jax.random.uniform(key, x.shape) >= rate
    return jnp.where(keep, jnp.mean(x) / (1 - rate), 0.0)


def _accepts_negative_rate(x, rate, *, key=None, train=True):
    if rate >= 1:
        raise ValueError("rate")
    if not train or rate <= 0:
        return x
    if key is None:
        raise ValueError("key")
    keep = jax.random.uniform(key, x.shape) >= rate
    return jnp.where(keep, x / (1 - rate), 0.0)


def test_library_dropout_passes_visible_and_hidden():
    assert evaluate(get("02.dropout"), library_dropout, hidden=True).passed


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (_shared_row_mask, "same mask"),
        (_mean_survivors, "its own x_i/(1-p)"),
        (_accepts_negative_rate, "p = -0.1"),
    ],
)
def test_wrong_dropouts_fail_the_instant_check(wrong, named):
    report = evaluate(get("02.dropout"), wrong)  # visible cases only: what check() runs
    assert not report.passed
    assert named in report.message(), report.message()
    assert not evaluate(get("02.dropout"), wrong, hidden=True).passed


def test_mc_predict_must_reject_zero_passes_visibly():
    def no_check(forward, x, *, key, passes):
        probs = [jax.nn.softmax(forward(x, jax.random.fold_in(key, t)), -1) for t in range(passes)]
        return jnp.mean(jnp.stack(probs), axis=0) if probs else jnp.zeros((x.shape[0], 3))

    report = evaluate(get("02.mc_predict"), no_check)
    assert not report.passed and "passes = 0" in report.message()
    assert evaluate(get("02.mc_predict"), _mc_reference, hidden=True).passed


# --------------------------------------------------------------------------- 02.pick_p
def _pick_right(ps, val_acc, test_acc):
    if not (len(ps) == len(val_acc) == len(test_acc)):
        raise ValueError("lengths")
    return float(ps[int(np.argmax(val_acc))])


def _pick_on_test(ps, val_acc, test_acc):
    _pick_right(ps, val_acc, test_acc)
    return float(ps[int(np.argmax(test_acc))])


def _pick_argmin(ps, val_acc, test_acc):
    _pick_right(ps, val_acc, test_acc)
    return float(ps[int(np.argmin(val_acc))])


def _pick_index(ps, val_acc, test_acc):
    _pick_right(ps, val_acc, test_acc)
    return int(np.argmax(val_acc))


def _pick_last_tie(ps, val_acc, test_acc):
    _pick_right(ps, val_acc, test_acc)
    v = np.asarray(val_acc)
    return float(ps[int(np.flatnonzero(v == v.max())[-1])])


def _pick_unchecked(ps, val_acc, test_acc):
    return float(ps[int(np.argmax(val_acc))])


def test_pick_p_right_answer_passes():
    ex = get("02.pick_p")
    assert evaluate(ex, _pick_right).passed and evaluate(ex, _pick_right, hidden=True).passed


@pytest.mark.parametrize(
    "wrong, hidden, named",
    [
        (_pick_on_test, False, "test split"),
        (_pick_argmin, False, "LOWEST validation"),
        (_pick_index, False, "index"),
        (_pick_unchecked, False, "ValueError"),
        (_pick_last_tie, True, "tie"),
    ],
)
def test_pick_p_wrong_answers_fail_with_the_mistake_named(wrong, hidden, named):
    report = evaluate(get("02.pick_p"), wrong, hidden=hidden)
    assert not report.passed
    assert named in report.message(), report.message()
