"""Chapter 04 exercise specs: the references and lessonlib's own functions pass, and every
plausible wrong answer fails the visible check (what the learner sees at once) and grading, with
feedback that names the mistake."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import augment, regularization, train
from lessonlib.exercises import ch04, evaluate, get


@pytest.mark.parametrize("exercise", ch04.EXERCISES, ids=lambda e: e.id)
def test_reference_passes_visible_and_hidden(exercise):
    report = evaluate(exercise, exercise.reference, hidden=True)
    assert report.passed, report.message()


def test_lessonlib_passes_the_exercises():
    def es(values, patience, min_delta=0.0):
        stop, best = train.early_stopping(
            jnp.asarray(values), patience=patience, min_delta=min_delta
        )
        return int(stop), int(best)

    assert evaluate(get("04.early_stopping"), es, hidden=True).passed
    mn = evaluate(get("04.max_norm"), lambda w, r: regularization.max_norm(w, r), hidden=True)
    assert mn.passed, mn.message()
    sh = evaluate(
        get("04.random_shift"),
        lambda key, x, m: augment.shift(key, x, m, mode="pad"),
        hidden=True,
    )
    assert sh.passed, sh.message()


def test_the_judges_rule_is_train_early_stopping():
    """The spec's plain-Python rule and lessonlib's jitted one agree on random histories."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = list(rng.integers(0, 16, rng.integers(1, 12)) / 8)
        patience, delta = int(rng.integers(0, 4)), float(rng.integers(0, 3) / 8)
        want = ch04._keras_rule(values, patience, delta)
        got = train.early_stopping(jnp.asarray(values), patience=patience, min_delta=delta)
        assert tuple(map(int, got)) == want, (values, patience, delta)


def _es(improve=None, stop_at=None, restore=True, one_based=False):
    def fn(values, patience, min_delta=0.0):
        stop, best = ch04._keras_rule(
            list(values), patience, min_delta, improve=improve, stop_at=stop_at, restore=restore
        )
        return (stop + 1 if stop >= 0 else -1, best + 1) if one_based else (stop, best)

    return fn


ES_WRONG = [
    (_es(improve=lambda v, b, d: v + d <= b), "strict <"),
    (_es(improve=lambda v, b, d: v < b), "min_delta is ignored"),
    (_es(improve=lambda v, b, d: v - d < b), "wrong sign"),
    (_es(stop_at=lambda w, p: w > p), "one epoch late"),
    (_es(stop_at=lambda w, p: w >= p - 1), "one epoch early"),
    (_es(restore=False), "BEST epoch"),
    (_es(one_based=True), "numbered from 0"),
]


def _source1_style(values, patience, min_delta=0.0):
    """The JAX book chapter's loop: no min_delta, keeps the last weights."""
    best, counter = math.inf, 0
    for epoch, v in enumerate(values):
        if v < best:
            best, counter = v, 0
        else:
            counter += 1
        if counter >= patience:
            return epoch, epoch
    return -1, len(values) - 1


@pytest.mark.parametrize("fn, words", ES_WRONG + [(_source1_style, "")])
def test_early_stopping_mistakes_fail_and_are_named(fn, words):
    ex = get("04.early_stopping")
    visible = evaluate(ex, fn)
    assert not visible.passed
    assert words in visible.message(), visible.message()
    assert not evaluate(ex, fn, hidden=True).passed


MAX_NORM_WRONG = [
    (
        lambda w, r: w * jnp.minimum(1.0, r / jnp.linalg.norm(w, axis=1, keepdims=True)),
        "wrong axis",
    ),
    (lambda w, r: w * r / jnp.linalg.norm(w, axis=0, keepdims=True), "only the columns"),
    (lambda w, r: w * jnp.minimum(1.0, r / jnp.linalg.norm(w)), "whole matrix"),
    (lambda w, r: jnp.clip(w, -r, r), "every entry"),
    (lambda w, r: w, "differ"),
]


@pytest.mark.parametrize("fn, words", MAX_NORM_WRONG)
def test_max_norm_mistakes_fail_and_are_named(fn, words):
    ex = get("04.max_norm")
    visible = evaluate(ex, fn)
    assert not visible.passed and words in visible.message(), visible.message()
    assert not evaluate(ex, fn, hidden=True).passed


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda s: s, "lambda = sigma:"),
        (lambda s: 2 * s**2, "2 sigma^2"),
        (lambda s: s**2 / 2, "sigma^2 / 2"),
        (lambda s: 1 / s**2, "MORE shrinkage"),
        (lambda s: 0.1, "expected"),
    ],
)
def test_noise_lambda_mistakes_fail_and_are_named(fn, words):
    ex = get("04.noise_lambda")
    visible = evaluate(ex, fn)
    assert not visible.passed and words in visible.message(), visible.message()
    assert not evaluate(ex, fn, hidden=True).passed


def _shift_with(draw, wrap=False):
    def fn(key, x, m):
        n = x.shape[1]
        s = draw(key, x.shape[0], m)
        idx = jnp.arange(n)[None, :] - s[:, None]
        out = jnp.take_along_axis(x, jnp.mod(idx, n), axis=1)
        return out if wrap else jnp.where((idx >= 0) & (idx < n), out, 0.0)

    return fn


def _right(key, b, m):
    return jax.random.randint(key, (b,), -m, m + 1)


SHIFT_WRONG = [
    (_shift_with(lambda k, b, m: jnp.full((b,), jax.random.randint(k, (), -m, m + 1))), "same shift"),
    (_shift_with(lambda k, b, m: jax.random.randint(k, (b,), -m, m)), "both ends included"),
    (_shift_with(_right, wrap=True), "wraps around"),
    (_shift_with(lambda k, b, m: jax.random.randint(jax.random.key(0), (b,), -m, m + 1)), "different keys"),
    (_shift_with(lambda k, b, m: jax.random.randint(k, (b,), -2 * m, 2 * m + 1)), "exceeds max_shift"),
    (_shift_with(lambda k, b, m: jnp.where(jax.random.uniform(k, (b,)) < 0.7, 0, _right(k, b, m))), "not uniform"),
    (lambda k, x, m: x * 1.01, "not x shifted"),
]  # fmt: skip


@pytest.mark.parametrize("fn, words", SHIFT_WRONG)
def test_random_shift_mistakes_fail_and_are_named(fn, words):
    ex = get("04.random_shift")
    visible = evaluate(ex, fn)
    assert not visible.passed and words in visible.message(), visible.message()
    assert not evaluate(ex, fn, hidden=True).passed
