"""Chapter 02's graders reject the plausible wrong answers, in the instant check (visible cases)."""

import jax
import jax.numpy as jnp
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
