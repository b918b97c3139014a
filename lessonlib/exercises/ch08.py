"""Chapter 08 exercises: a log-uniform sampler, one rung of successive halving, and "is the gain
real?" as a paired confidence interval over seeds.

The sampler is random, so it is judged by its distribution: a probe draws 20,000 samples with two
keys (and the first key again), and the judge runs a Kolmogorov-Smirnov test of ``log x`` against
``U(log low, log high)`` at a level (1e-6) that a right answer with any seed passes. The usual
mistakes (uniform on a linear scale, natural logs mixed with base-10 powers, returning the
exponent, ignoring the key) each get a message that names them. The other two are judged against
references (``lessonlib.search.keep_best`` and the Student-t interval) with the same care: the
judge recomputes the plausible wrong answers and says which one it got.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lessonlib.exercises import Case, Exercise, Key, Outcome

N = 20_000
KS_LEVEL = 1e-6

# --------------------------------------------------------------------------- 08.log_uniform


def _probe_sampler(fn, low, high, n, *, key):
    """Samples for two keys derived from ``key`` and for the first key again (plain arrays)."""
    import jax

    k1, k2 = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    return {"a": fn(k1, low, high, n), "b": fn(k2, low, high, n), "a_again": fn(k1, low, high, n)}


def _log_uniform_reference(key, low, high, n):
    import jax
    import jax.numpy as jnp

    if not low > 0:
        raise ValueError(f"low must be > 0, got {low}")
    if not high > low:
        raise ValueError(f"high must be > low, got {high}")
    u = jax.random.uniform(key, (n,), jnp.float32, math.log(low), math.log(high))
    return jnp.exp(u)


# The distance D at which the exact two-sided Kolmogorov-Smirnov p-value of N draws falls to
# KS_LEVEL: scipy.stats.kstwo.isf(KS_LEVEL, N) (tests/test_ch08_exercises.py recomputes it). A
# p-value above the level is a distance below it, so the judge needs no scipy.stats (about 2.5 s
# to import) for the sample sizes of its cases.
KS_CRITICAL_N = 0.019036122860194064


def _ks_critical(n: int) -> float:
    """scipy.stats.kstwo.isf(KS_LEVEL, n): the stored value for ``N``, else computed."""
    if n == N:
        return KS_CRITICAL_N
    from scipy import stats

    return float(stats.kstwo.isf(KS_LEVEL, n))


def _ks_ok(x: np.ndarray, lo: float, hi: float) -> bool:
    """Does ``x`` pass a KS test against U(lo, hi) at ``KS_LEVEL``? (scipy.stats.kstest's exact
    p-value above the level, that is its distance D below ``_ks_critical``.)"""
    if not np.all(np.isfinite(x)) or hi <= lo or x.size == 0:
        return False
    u = np.sort(np.clip((np.asarray(x, np.float64).ravel() - lo) / (hi - lo), 0.0, 1.0))
    n = u.size
    i = np.arange(1, n + 1, dtype=np.float64)
    d = max(np.max(i / n - u), np.max(u - (i - 1) / n))
    return bool(d < _ks_critical(n))


def _sampler_mistake(x: np.ndarray, low: float, high: float) -> str:
    """Name the wrong distribution ``x`` follows, if it is one of the usual ones."""
    ln, lg = (math.log(low), math.log(high)), (math.log10(low), math.log10(high))
    with np.errstate(divide="ignore", invalid="ignore"):
        if _ks_ok(x, low, high):
            return (
                "the samples are uniform between low and high: most of them land in the top "
                "decade. Draw the EXPONENT uniformly: exp(uniform(log(low), log(high)))"
            )
        if _ks_ok(np.log10(x), *ln):
            return (
                "log10 vs ln mix-up: you drew uniform(log(low), log(high)) with natural logs and "
                "then raised 10 to it. Use exp with natural logs, or 10** with log10, not a mix"
            )
        if _ks_ok(np.log(x), *lg):
            return (
                "ln vs log10 mix-up: you drew uniform(log10(low), log10(high)) and then applied "
                "exp. Use exp with natural logs, or 10** with log10, not a mix"
            )
        if _ks_ok(x, *ln) or _ks_ok(x, *lg):
            return "you returned the exponent itself: apply exp (or 10**) to the uniform draw"
        if _ks_ok(np.log10(x), low, high) or _ks_ok(np.log(x), low, high):
            return (
                "you drew the exponent between low and high themselves: take their logs first, "
                "uniform(log(low), log(high))"
            )
    return ""


def _judge_log_uniform(case: Case, outcome: Outcome) -> str | None:
    low, high, n = (float(case.args[0]), float(case.args[1]), int(case.args[2]))
    if not (low > 0 and high > low):
        if outcome.error is None:
            return f"low = {low}, high = {high}: raise ValueError (need 0 < low < high)"
        if not outcome.error.startswith("ValueError"):
            return f"low = {low}, high = {high}: expected ValueError, got {outcome.error}"
        return None
    if outcome.error is not None:
        return outcome.error
    try:
        a, b, a2 = (np.asarray(outcome.value[k], np.float64) for k in ("a", "b", "a_again"))
    except (TypeError, ValueError, KeyError):
        return "expected an array of n numbers"
    if a.shape != (n,):
        return f"expected {n} samples of shape ({n},), got shape {a.shape}"
    if not np.all(np.isfinite(a)):
        return "some samples are NaN or infinite"
    mistake = _sampler_mistake(a, low, high)
    outside = np.mean((a < low * (1 - 1e-6)) | (a > high * (1 + 1e-6)))
    if outside > 0:
        return mistake or f"{outside:.1%} of the samples lie outside [low, high] = [{low}, {high}]"
    if not _ks_ok(np.log(a), math.log(low), math.log(high)):
        return mistake or (
            "log(samples) is not uniform between log(low) and log(high) (Kolmogorov-Smirnov "
            f"test, level {KS_LEVEL:g}): each decade must be equally likely"
        )
    if np.array_equal(a, b):
        return "two different keys gave the same samples: draw them from the key you are given"
    if not np.array_equal(a, a2):
        return "the same key gave different samples: use only the key argument (no global seed)"
    return None


log_uniform_exercise = Exercise(
    id="08.log_uniform",
    name="log_uniform",
    points=3,
    cases=(
        Case((1e-4, 1.0, N), {"key": Key(0)}, probe="_probe_sampler", note="[1e-4, 1], n = 20,000"),
        Case((0.0, 1.0, 10), {"key": Key(1)}, probe="_probe_sampler", note="low = 0"),
    ),
    hidden=(
        Case((1e-6, 1e-2, N), {"key": Key(2)}, probe="_probe_sampler", note="[1e-6, 1e-2]"),
        Case((0.5, 50.0, N), {"key": Key(3)}, probe="_probe_sampler", note="[0.5, 50]"),
        Case((2.0, 3.0, N), {"key": Key(4)}, probe="_probe_sampler", note="[2, 3]: narrow"),
        Case((1e-3, 1e-3, 10), {"key": Key(5)}, probe="_probe_sampler", note="high = low"),
        Case((-1.0, 1.0, 10), {"key": Key(6)}, probe="_probe_sampler", note="low < 0"),
    ),
    reference=_log_uniform_reference,
    judge=_judge_log_uniform,
    hint="exp(jax.random.uniform(key, (n,), minval=log(low), maxval=log(high))); raise "
    "ValueError unless 0 < low < high.",
    probes={"_probe_sampler": _probe_sampler},
)


# --------------------------------------------------------------------------- 08.sh_rung


def _sh_rung_reference(scores, eta):
    from lessonlib.search import keep_best

    if eta < 2 or int(eta) != eta:
        raise ValueError(f"eta must be an integer >= 2, got {eta}")
    return keep_best(np.asarray(scores, np.float64), int(eta))


def _judge_sh_rung(case: Case, outcome: Outcome) -> str | None:
    scores, eta = np.asarray(case.args[0], np.float64), case.args[1]
    if eta < 2:
        if outcome.error is None or not outcome.error.startswith("ValueError"):
            return f"eta = {eta}: raise ValueError (a rung must drop someone: eta >= 2)"
        return None
    if outcome.error is not None:
        return outcome.error
    try:
        got = np.asarray(outcome.value).reshape(-1)
        got = [int(i) for i in got]
    except (TypeError, ValueError):
        return "expected a sequence of integer indices"
    want = _sh_rung_reference(scores, eta).tolist()
    if got == want:
        return None
    n, rank = len(scores), np.where(np.isnan(scores), -np.inf, scores)
    if any(not 0 <= i < n for i in got):
        return f"indices must lie in 0..{n - 1}"
    if any(np.isnan(scores[i]) for i in got):
        return (
            "a NaN score (a diverged run) was kept: NaN must rank below every number (np.argsort "
            "puts NaN last, so reversing an ascending argsort puts it FIRST)"
        )
    worst = np.argsort(rank, kind="stable")[: len(got)].tolist()
    if len(got) == len(want) and sorted(got) == sorted(worst) and set(got) != set(want):
        return "you kept the worst configurations: keep the HIGHEST scores"
    if len(got) != len(want):
        options = {
            "ceil(n / eta)": math.ceil(n / eta),
            "round(n / eta)": round(n / eta),
            "n - n // eta": n - n // eta,
            "n // eta without the floor of one": n // eta,
        }
        matches = [k for k, v in options.items() if v == len(got)]
        why = f" (that is {' or '.join(matches)})" if matches else ""
        return (
            f"n = {n}, eta = {eta}: keep max(1, floor(n / eta)) = {len(want)} configurations, "
            f"got {len(got)}{why}"
        )
    if set(got) == set(want):
        return f"the right configurations, in the wrong order: return them best first ({want})"
    return f"kept {got}, expected {want} (the best max(1, floor(n / eta)), best first)"


_S9 = np.array([0.50, 0.62, 0.30, 0.71, 0.55, 0.68, 0.20, 0.40, 0.60])

sh_rung_exercise = Exercise(
    id="08.sh_rung",
    name="sh_rung",
    points=2,
    cases=(Case((_S9, 3), note="9 scores, eta = 3"),),
    hidden=(
        Case(
            (np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.05, 0.95]), 3), note="n = 11"
        ),
        Case((np.array([0.3, 0.9, 0.1, 0.7, 0.5]), 2), note="n = 5, eta = 2"),
        Case((np.array([0.4, np.nan, 0.8, 0.6, np.nan, 0.1]), 2), note="two diverged runs"),
        Case((np.array([0.2, 0.6]), 3), note="n < eta"),
        Case((np.array([0.2, 0.6, 0.4]), 1), note="eta = 1"),
    ),
    reference=_sh_rung_reference,
    judge=_judge_sh_rung,
    hint="Sort by score, highest first, with NaN as the lowest; keep the first max(1, n // eta); "
    "raise ValueError for eta < 2.",
)


# --------------------------------------------------------------------------- 08.gain_interval


def _bisect(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """The x in [lo, hi] where the increasing ``f`` reaches ``target`` (to float precision)."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def _norm_ppf(p: float) -> float:
    """The standard normal quantile (scipy.stats.norm.ppf), for 0 < p < 1."""
    if p < 0.5:
        return -_norm_ppf(1 - p)
    return _bisect(lambda z: 1 - math.erfc(z / math.sqrt(2)) / 2, p, 0.0, 40.0)


def _t_ppf(p: float, df: int) -> float:
    """Student's t quantile (scipy.stats.t.ppf) for a whole number of degrees of freedom, from
    the closed form of P(|T| <= t) (Abramowitz & Stegun 26.7.3-4, with theta = atan(t/sqrt(df)))
    inverted by bisection: no scipy.stats (about 2.5 s to import) in the grader's judges."""
    if df < 1 or int(df) != df:
        from scipy import stats

        return float(stats.t.ppf(p, df))
    df = int(df)
    if p < 0.5:
        return -_t_ppf(1 - p, df)

    def inside(theta: float) -> float:  # P(|T| <= sqrt(df) tan(theta))
        s, c2 = math.sin(theta), math.cos(theta) ** 2
        if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
            term, total = 1.0, 1.0 if df > 1 else 0.0
            for k in range(1, (df - 1) // 2):
                term *= (2 * k) / (2 * k + 1) * c2
                total += term
            return 2 / math.pi * (theta + s * math.cos(theta) * total)
        term, total = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        return s * total

    theta = _bisect(inside, 2 * p - 1, 0.0, math.pi / 2)
    return math.sqrt(df) * math.tan(theta)


def _interval(gain, confidence, *, q=None, ddof=1, se=True):
    gain = np.asarray(gain, np.float64)
    n = len(gain)
    q = _t_ppf((1 + confidence) / 2, n - 1) if q is None else q
    half = q * gain.std(ddof=ddof) / (math.sqrt(n) if se else 1.0)
    return [float(gain.mean() - half), float(gain.mean() + half)]


def _gain_reference(baseline, searched, *, confidence=0.95):
    baseline, searched = np.asarray(baseline, np.float64), np.asarray(searched, np.float64)
    if baseline.shape != searched.shape or baseline.ndim != 1 or len(baseline) < 2:
        raise ValueError("baseline and searched need one score per seed, at least 2 seeds each")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return _interval(searched - baseline, confidence)


def _gain_alternatives(baseline, searched, confidence) -> dict[str, list[float]]:
    b, s = np.asarray(baseline, np.float64), np.asarray(searched, np.float64)
    g, n = s - b, len(b)
    pooled = math.sqrt(s.var(ddof=1) / n + b.var(ddof=1) / n)
    t = _t_ppf((1 + confidence) / 2, n - 1)
    return {
        "you used the normal quantile (1.96 for 95%): with a few seeds use Student's t with n - 1 "
        "degrees of freedom, which is wider": _interval(
            g, confidence, q=_norm_ppf((1 + confidence) / 2)
        ),
        "Student's t has n - 1 degrees of freedom here, not n": _interval(
            g, confidence, q=_t_ppf((1 + confidence) / 2, n)
        ),
        "use the sample standard deviation (ddof=1), not the population one": _interval(
            g, confidence, ddof=0
        ),
        "the interval is for the MEAN gain: divide the standard deviation by sqrt(n) (standard "
        "error)": _interval(g, confidence, se=False),
        "the runs are paired by seed: take the per-seed differences searched - baseline, not the "
        "two groups' separate spreads": [g.mean() - t * pooled, g.mean() + t * pooled],
        "the confidence is two-sided: use the quantile (1 + confidence) / 2": _interval(
            g, 2 * confidence - 1
        ),
        "gain = searched - baseline, not baseline - searched": _interval(-g, confidence),
        "comparing means without the seed spread: an interval needs the standard deviation of "
        "the gains": [g.mean(), g.mean()],
    }


def _judge_gain(case: Case, outcome: Outcome) -> str | None:
    confidence = case.kwargs.get("confidence", 0.95)
    try:
        want = _gain_reference(*case.args, confidence=confidence)
    except ValueError:
        if outcome.error is None or not outcome.error.startswith("ValueError"):
            return "expected ValueError (one score per seed, at least 2 seeds, 0 < confidence < 1)"
        return None
    if outcome.error is not None:
        return outcome.error
    try:
        got = [float(v) for v in np.asarray(outcome.value, np.float64).reshape(-1)]
    except (TypeError, ValueError):
        return "expected a pair (low, high)"
    if len(got) != 2:
        return f"expected a pair (low, high), got {len(got)} numbers"
    if np.allclose(got, want, rtol=1e-4, atol=1e-7):
        return None
    for why, alt in _gain_alternatives(*case.args, confidence).items():
        if np.allclose(got, alt, rtol=1e-4, atol=1e-7):
            return why
    return f"expected ({want[0]:.6g}, {want[1]:.6g}), got ({got[0]:.6g}, {got[1]:.6g})"


_B5 = np.array([0.912, 0.905, 0.921, 0.899, 0.915])
_S5 = np.array([0.931, 0.918, 0.924, 0.927, 0.916])

gain_interval_exercise = Exercise(
    id="08.gain_interval",
    name="gain_interval",
    points=3,
    cases=(Case((_B5, _S5), note="5 seeds"),),
    hidden=(
        Case(
            (
                np.array([0.61, 0.58, 0.66, 0.52, 0.63, 0.55, 0.60, 0.64]),
                np.array([0.93, 0.96, 0.92, 0.95, 0.90, 0.94, 0.97, 0.93]),
            ),
            {"confidence": 0.9},
            note="8 seeds, 90%",
        ),
        Case((np.array([0.80, 0.82, 0.79]), np.array([0.81, 0.80, 0.83])), note="3 seeds"),
        Case((np.array([0.9]), np.array([0.95])), note="one seed"),
        Case((_B5, _S5[:4]), note="lengths differ"),
    ),
    reference=_gain_reference,
    judge=_judge_gain,
    hint="gains g = searched - baseline (paired by seed); mean(g) -+ t * std(g, ddof=1) / sqrt(n) "
    "with t = scipy.stats.t.ppf((1 + confidence) / 2, n - 1).",
)


EXERCISES = [gain_interval_exercise, log_uniform_exercise, sh_rung_exercise]  # notebook order
