"""Chapter 08 exercise specs: the references pass, other right answers pass, and every plausible
wrong answer fails with a message that names the mistake."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lessonlib import search
from lessonlib.exercises import ch08, evaluate, get


@pytest.mark.parametrize("exercise", ch08.EXERCISES, ids=lambda e: e.id)
def test_reference_passes_visible_and_hidden(exercise):
    report = evaluate(exercise, exercise.reference, hidden=True)
    assert report.passed, report.message()


def _checked(fn):
    """Wrap a sampler body with the required argument checks (so only the body is wrong)."""

    def sampler(key, low, high, n):
        if not 0 < low < high:
            raise ValueError("need 0 < low < high")
        return fn(key, low, high, n)

    return sampler


# ----------------------------------------------------------------------------- 08.log_uniform

RIGHT_SAMPLERS = {
    "10 ** uniform(log10)": lambda k, lo, hi, n: (
        10 ** jax.random.uniform(k, (n,), minval=math.log10(lo), maxval=math.log10(hi))
    ),
    "low * (high / low) ** u": lambda k, lo, hi, n: lo * (hi / lo) ** jax.random.uniform(k, (n,)),
    "lessonlib.search.LogUniform": lambda k, lo, hi, n: search.LogUniform(lo, hi).sample(k, n),
    "numpy seeded from the key": lambda k, lo, hi, n: stats.loguniform(lo, hi).rvs(
        n, random_state=int(jax.random.randint(k, (), 0, 2**30))
    ),
}


@pytest.mark.parametrize("name", RIGHT_SAMPLERS)
def test_other_right_samplers_pass(name):
    report = evaluate(get("08.log_uniform"), _checked(RIGHT_SAMPLERS[name]), hidden=True)
    assert report.passed, report.message()


WRONG_SAMPLERS = [
    (
        "uniform",
        lambda k, lo, hi, n: jax.random.uniform(k, (n,), minval=lo, maxval=hi),
        "uniform between low and high",
    ),
    (
        "10 ** uniform(ln)",
        lambda k, lo, hi, n: (
            10 ** jax.random.uniform(k, (n,), minval=math.log(lo), maxval=math.log(hi))
        ),
        "log10 vs ln mix-up",
    ),
    (
        "exp(uniform(log10))",
        lambda k, lo, hi, n: jnp.exp(
            jax.random.uniform(k, (n,), minval=math.log10(lo), maxval=math.log10(hi))
        ),
        "ln vs log10 mix-up",
    ),
    (
        "the exponent itself",
        lambda k, lo, hi, n: jax.random.uniform(k, (n,), minval=math.log(lo), maxval=math.log(hi)),
        "returned the exponent",
    ),
    (
        "10 ** uniform(low, high)",
        lambda k, lo, hi, n: 10 ** jax.random.uniform(k, (n,), minval=lo, maxval=hi),
        "between low and high themselves",
    ),
    (
        "a fixed key",
        lambda k, lo, hi, n: search.LogUniform(lo, hi).sample(jax.random.key(0), n),
        "same samples",
    ),
    (
        "a log-normal",
        lambda k, lo, hi, n: jnp.clip(
            jnp.exp((math.log(lo) + math.log(hi)) / 2 + jax.random.normal(k, (n,))), lo, hi
        ),
        "not uniform between log(low) and log(high)",
    ),
    ("n - 1 samples", lambda k, lo, hi, n: search.LogUniform(lo, hi).sample(k, n - 1), "shape"),
]


@pytest.mark.parametrize("name, fn, phrase", WRONG_SAMPLERS, ids=[w[0] for w in WRONG_SAMPLERS])
def test_wrong_samplers_are_named(name, fn, phrase):
    report = evaluate(get("08.log_uniform"), _checked(fn), hidden=True)
    assert not report.passed
    assert phrase in report.message(), report.message()
    # the visible case alone already catches it (the learner sees it before grading)
    assert not evaluate(get("08.log_uniform"), _checked(fn)).passed


def test_sampler_without_argument_checks_fails():
    report = evaluate(get("08.log_uniform"), RIGHT_SAMPLERS["low * (high / low) ** u"])
    assert not report.passed and "ValueError" in report.message()


# ----------------------------------------------------------------------------- 08.sh_rung


def _ranked(scores):
    s = np.asarray(scores, np.float64)
    return np.argsort(-np.where(np.isnan(s), -np.inf, s), kind="stable")


def _rung(keep):
    def sh_rung(scores, eta):
        if eta < 2:
            raise ValueError("eta must be >= 2")
        return keep(np.asarray(scores, np.float64), int(eta))

    return sh_rung


WRONG_RUNGS = [
    ("the worst", _rung(lambda s, e: np.argsort(s)[: max(1, len(s) // e)]), "worst"),
    ("ceil", _rung(lambda s, e: _ranked(s)[: math.ceil(len(s) / e)]), "ceil(n / eta)"),
    ("round", _rung(lambda s, e: _ranked(s)[: round(len(s) / e)]), "round(n / eta)"),
    ("drop 1/eta", _rung(lambda s, e: _ranked(s)[: len(s) - len(s) // e]), "n - n // eta"),
    ("no floor of one", _rung(lambda s, e: _ranked(s)[: len(s) // e]), "without the floor of one"),
    (
        "reversed argsort",
        _rung(lambda s, e: np.argsort(s)[::-1][: max(1, len(s) // e)]),
        "NaN score",
    ),
    (
        "ascending order",
        _rung(lambda s, e: np.sort(_ranked(s)[: max(1, len(s) // e)])),
        "best first",
    ),
    ("no eta check", lambda s, e: _ranked(s)[: max(1, len(s) // max(e, 1))], "ValueError"),
]


@pytest.mark.parametrize("name, fn, phrase", WRONG_RUNGS, ids=[w[0] for w in WRONG_RUNGS])
def test_wrong_rungs_are_named(name, fn, phrase):
    report = evaluate(get("08.sh_rung"), fn, hidden=True)
    assert not report.passed
    assert phrase in report.message(), report.message()


def test_keeping_the_worst_fails_the_visible_case():
    assert not evaluate(get("08.sh_rung"), WRONG_RUNGS[0][1]).passed


# ----------------------------------------------------------------------------- 08.gain_interval


def _gain(half_width, *, sign=1.0):
    def gain_interval(baseline, searched, *, confidence=0.95):
        b, s = np.asarray(baseline, np.float64), np.asarray(searched, np.float64)
        if b.shape != s.shape or len(b) < 2:
            raise ValueError("one score per seed, at least 2 seeds")
        g = sign * (s - b)
        h = half_width(g, b, s, confidence)
        return g.mean() - h, g.mean() + h

    return gain_interval


def _t(c, dof):
    return stats.t.ppf((1 + c) / 2, dof)


WRONG_GAINS = [
    (
        "z",
        _gain(lambda g, b, s, c: stats.norm.ppf((1 + c) / 2) * g.std(ddof=1) / math.sqrt(len(g))),
        "normal quantile",
    ),
    (
        "t with n dof",
        _gain(lambda g, b, s, c: _t(c, len(g)) * g.std(ddof=1) / math.sqrt(len(g))),
        "n - 1 degrees",
    ),
    ("ddof 0", _gain(lambda g, b, s, c: _t(c, len(g) - 1) * g.std() / math.sqrt(len(g))), "ddof=1"),
    ("std not se", _gain(lambda g, b, s, c: _t(c, len(g) - 1) * g.std(ddof=1)), "sqrt(n)"),
    (
        "unpaired",
        _gain(
            lambda g, b, s, c: (
                _t(c, len(g) - 1) * math.sqrt((s.var(ddof=1) + b.var(ddof=1)) / len(g))
            )
        ),
        "paired by seed",
    ),
    (
        "one-sided",
        _gain(lambda g, b, s, c: stats.t.ppf(c, len(g) - 1) * g.std(ddof=1) / math.sqrt(len(g))),
        "two-sided",
    ),
    (
        "sign",
        _gain(lambda g, b, s, c: _t(c, len(g) - 1) * g.std(ddof=1) / math.sqrt(len(g)), sign=-1.0),
        "not baseline - searched",
    ),
    ("means only", _gain(lambda g, b, s, c: 0.0), "without the seed spread"),
]


@pytest.mark.parametrize("name, fn, phrase", WRONG_GAINS, ids=[w[0] for w in WRONG_GAINS])
def test_wrong_intervals_are_named(name, fn, phrase):
    report = evaluate(get("08.gain_interval"), fn, hidden=True)
    assert not report.passed
    assert phrase in report.message(), report.message()
    assert not evaluate(get("08.gain_interval"), fn).passed  # the visible case catches it


def test_right_interval_written_by_hand_passes():
    def gain_interval(baseline, searched, *, confidence=0.95):
        g = np.asarray(searched, np.float64) - np.asarray(baseline, np.float64)
        if g.ndim != 1 or len(g) < 2 or np.shape(baseline) != np.shape(searched):
            raise ValueError("paired scores, at least 2 seeds")
        se = math.sqrt(np.sum((g - g.mean()) ** 2) / (len(g) - 1) / len(g))
        q = stats.t.ppf(0.5 + confidence / 2, len(g) - 1)
        return (g.mean() - q * se, g.mean() + q * se)

    assert evaluate(get("08.gain_interval"), gain_interval, hidden=True).passed


# --------------------------------------------------------------------------- scipy-free statistics


def test_quantiles_match_scipy():
    for p in (0.5, 0.55, 0.9, 0.95, 0.975, 0.995, 0.9999, 0.05, 0.001):
        assert ch08._norm_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-9, abs=1e-12)
        for df in (1, 2, 3, 4, 5, 7, 8, 12, 29, 30, 101):
            assert ch08._t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)


def test_ks_critical_distance_is_scipys():
    assert ch08.KS_CRITICAL_N == pytest.approx(stats.kstwo.isf(ch08.KS_LEVEL, ch08.N), rel=1e-12)
    assert ch08._ks_critical(500) == pytest.approx(stats.kstwo.isf(ch08.KS_LEVEL, 500))


@pytest.mark.parametrize("n", [ch08.N, 500])
def test_ks_verdict_matches_scipy_kstest(n):
    """The judge's KS verdict is scipy.stats.kstest's p-value > KS_LEVEL, also near the edge."""
    rng = np.random.default_rng(8)
    d_crit = stats.kstwo.isf(ch08.KS_LEVEL, n)
    for bend in (0.0, 0.5, 0.9, 1.0, 1.1, 1.5):  # power-law bends of U(0, 1) around the edge
        for seed in range(3):
            u = np.random.default_rng((seed, n)).uniform(size=n)
            x = 2.0 + 3.0 * u ** (1 + bend * 3 * d_crit)
            want = stats.kstest(x, stats.uniform(2.0, 3.0).cdf).pvalue > ch08.KS_LEVEL
            assert ch08._ks_ok(x, 2.0, 5.0) == want
    assert not ch08._ks_ok(rng.uniform(2, 5, n) ** 1.2, 2.0, 5.0)
