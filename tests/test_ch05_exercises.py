"""Chapter 05 exercise specs: the model answers and lessonlib's own functions pass, and every
plausible wrong answer fails with feedback that names the mistake."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import layers, models, optim
from lessonlib.exercises import ch05, evaluate, get


@pytest.mark.parametrize("exercise", ch05.EXERCISES, ids=lambda e: e.id)
def test_reference_passes_visible_and_hidden(exercise):
    report = evaluate(exercise, exercise.reference, hidden=True)
    assert report.passed, report.message()


def _fails_naming(exercise_id, fn, phrase):
    report = evaluate(get(exercise_id), fn, hidden=True)
    assert not report.passed, f"a wrong answer passed {exercise_id}"
    text = "\n".join(why for _, why in report.failures)
    assert phrase in text, f"{phrase!r} not in the feedback:\n{text}"
    return report


# --------------------------------------------------------------------------- variance scaling


def _fan(fan_in, fan_out, mode):
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def _checked(fn):
    """Wrap a draw rule with the argument checks, so that only the rule is wrong."""

    def variance_scaling(
        key, fan_in, fan_out, scale=1.0, mode="fan_in", distribution="truncated_normal"
    ):
        ch05._check_args(scale, mode, distribution)
        return fn(key, fan_in, fan_out, scale, mode, distribution)

    return variance_scaling


SQRT3 = math.sqrt(3)


def _draw(std_of, *, trunc_correct=True, uniform_factor=SQRT3, trunc="truncated"):
    def draw(key, fan_in, fan_out, scale, mode, distribution):
        std = std_of(fan_in, fan_out, scale, mode)
        shape = (fan_in, fan_out)
        if distribution == "normal":
            return std * jax.random.normal(key, shape)
        if distribution == "truncated_normal":
            if trunc == "normal":
                return std * jax.random.normal(key, shape)
            if trunc == "clipped":
                s = std / 0.8796256610342398
                return jnp.clip(s * jax.random.normal(key, shape), -2 * s, 2 * s)
            s = std / 0.8796256610342398 if trunc_correct else std
            return s * jax.random.truncated_normal(key, -2.0, 2.0, shape)
        a = uniform_factor * std
        return jax.random.uniform(key, shape, minval=-a, maxval=a)

    return _checked(draw)


def _right_std(fan_in, fan_out, scale, mode):
    return math.sqrt(scale / _fan(fan_in, fan_out, mode))


def test_library_variance_scaling_passes():
    def ours(key, fan_in, fan_out, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        if not scale > 0:  # the library checks scale only when given; the exercise always does
            raise ValueError("scale must be > 0")
        return models.variance_scaling(
            key, fan_in, fan_out, scale=scale, mode=mode, dist=distribution
        )

    assert evaluate(get("05.variance_scaling"), ours, hidden=True).passed
    assert evaluate(get("05.variance_scaling"), _draw(_right_std), hidden=True).passed


def test_normal_cdf_matches_scipy():
    from scipy import stats

    z = np.concatenate([np.linspace(-9, 9, 2001), [0.0, -1e-9, 1e-9, 40.0, -40.0]])
    np.testing.assert_allclose(ch05._normal_cdf(z), stats.norm.cdf(z), rtol=2e-7, atol=1e-12)


@pytest.mark.parametrize("drawn", ["normal", "truncated_normal", "uniform", "laplace"])
@pytest.mark.parametrize("against", ch05.DISTRIBUTIONS)
def test_ks_distance_matches_scipy_kstest(drawn, against):
    """The judge's Kolmogorov-Smirnov distance is scipy.stats.kstest's statistic, both for draws
    of the right distribution and for draws of another (the distances a mistake produces)."""
    from scipy import stats

    rng = np.random.default_rng(5)
    var = 2.0 / 300
    sd = math.sqrt(var)
    sample = {
        "normal": lambda: rng.normal(0, sd, 20_000),
        "truncated_normal": lambda: stats.truncnorm(-2, 2, scale=sd / ch05.TRUNCATED_STD).rvs(
            20_000, random_state=rng
        ),
        "uniform": lambda: rng.uniform(-math.sqrt(3) * sd, math.sqrt(3) * sd, 20_000),
        "laplace": lambda: rng.laplace(0, sd / math.sqrt(2), 20_000),
    }[drawn]()
    cdf = {
        "normal": stats.norm(scale=sd).cdf,
        "truncated_normal": stats.truncnorm(-2, 2, scale=sd / ch05.TRUNCATED_STD).cdf,
        "uniform": stats.uniform(loc=-math.sqrt(3) * sd, scale=2 * math.sqrt(3) * sd).cdf,
    }[against]
    want = stats.kstest(sample, cdf).statistic
    assert ch05._ks(sample, against, var) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (
            _draw(lambda fi, fo, s, m: math.sqrt(s / _fan(fo, fi, m))),  # fans swapped
            "divided by fan_out",
        ),
        (
            _draw(lambda fi, fo, s, m: math.sqrt(s / (fi if m == "fan_avg" else _fan(fi, fo, m)))),
            "divided by fan_in = 300 instead of fan_avg",
        ),
        (
            _draw(
                lambda fi, fo, s, m: math.sqrt(s / (fi + fo if m == "fan_avg" else _fan(fi, fo, m)))
            ),
            "fan_in + fan_out instead of their average",
        ),
        (_draw(_right_std, trunc_correct=False), "untruncated standard deviation"),
        (_draw(_right_std, uniform_factor=1.0), "sqrt(3*scale/fan)"),
        (_draw(lambda fi, fo, s, m: math.sqrt(1 / _fan(fi, fo, m))), "scale is ignored"),
        (
            _draw(lambda fi, fo, s, m: s * math.sqrt(1 / _fan(fi, fo, m))),
            "scale is outside the square root",
        ),
        (_draw(lambda fi, fo, s, m: s / _fan(fi, fo, m)), "used as the standard deviation"),
        (_draw(_right_std, trunc="normal"), "they look normal"),
        (_draw(_right_std, trunc="clipped"), "Var(w) ="),
    ],
)
def test_wrong_initializers_fail_with_the_mistake_named(wrong, phrase):
    _fails_naming("05.variance_scaling", wrong, phrase)


def test_initializer_with_a_fixed_key_or_no_checks_fails():
    right = _draw(_right_std)

    def fixed_key(key, *args, **kwargs):
        del key
        return right(jax.random.key(0), *args, **kwargs)

    _fails_naming("05.variance_scaling", fixed_key, "two different keys gave the same weights")

    def unchecked(key, fan_in, fan_out, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        if mode not in ch05.MODES:
            mode = "fan_in"  # silently falls back instead of raising
        return right(key, fan_in, fan_out, scale, mode, "normal")

    _fails_naming("05.variance_scaling", unchecked, "raise ValueError")


def test_initializer_wrong_shape_and_garbage_are_judged_not_crashed():
    def transposed(key, fan_in, fan_out, scale=1.0, mode="fan_in", distribution="normal"):
        return _draw(_right_std)(key, fan_in, fan_out, scale, mode, distribution).T

    _fails_naming("05.variance_scaling", transposed, "expected an array of shape")

    def text(key, *args, **kwargs):
        ch05._check_args(*args[2:]) if len(args) > 2 else None
        return "weights"

    report = evaluate(get("05.variance_scaling"), text, hidden=True)
    assert not report.passed


# --------------------------------------------------------------------------- clip_by_global_norm


def _clip_global(grads, max_norm):
    if max_norm <= 0:
        raise ValueError("max_norm must be > 0")
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    factor = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30))
    return jax.tree.map(lambda g: g * factor, grads)


def test_clip_answers_that_pass():
    assert evaluate(get("05.clip_by_global_norm"), _clip_global, hidden=True).passed

    def via_optim(grads, max_norm):
        if max_norm <= 0:
            raise ValueError("max_norm must be > 0")
        return optim.clip_by_global_norm(max_norm).update(grads, None)[0]

    assert evaluate(get("05.clip_by_global_norm"), via_optim, hidden=True).passed


def _checked_clip(fn):
    def clip_by_global_norm(grads, max_norm):
        if max_norm <= 0:
            raise ValueError("max_norm must be > 0")
        return fn(grads, max_norm)

    return clip_by_global_norm


def _per_leaf(grads, max_norm):
    return jax.tree.map(
        lambda g: g * jnp.minimum(1.0, max_norm / jnp.maximum(jnp.linalg.norm(g), 1e-30)), grads
    )


def _by_value(grads, max_norm):
    return jax.tree.map(lambda g: jnp.clip(g, -max_norm, max_norm), grads)


def _always(grads, max_norm):
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    return jax.tree.map(lambda g: g * max_norm / jnp.maximum(norm, 1e-30), grads)


def _no_sqrt(grads, max_norm):
    sq = sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))
    return jax.tree.map(lambda g: g * jnp.minimum(1.0, max_norm / jnp.maximum(sq, 1e-30)), grads)


def _divide_by_zero(grads, max_norm):
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    return jax.tree.map(lambda g: jnp.where(norm > max_norm, g / norm * max_norm, g), grads)


def _naive_nan(grads, max_norm):
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    return jax.tree.map(lambda g: g / norm * jnp.minimum(norm, max_norm), grads)


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (_per_leaf, "clipped by its own norm"),
        (_by_value, "clipping by value"),
        (_always, "always rescaled"),
        (_no_sqrt, "without the square root"),
        (_naive_nan, "NaN"),
    ],
)
def test_wrong_clipping_fails_with_the_mistake_named(wrong, phrase):
    _fails_naming("05.clip_by_global_norm", _checked_clip(wrong), phrase)


def test_clip_where_guard_is_fine_and_missing_check_fails():
    assert evaluate(
        get("05.clip_by_global_norm"), _checked_clip(_divide_by_zero), hidden=True
    ).passed  # jnp.where picks g itself when the norm is small: correct, no NaN
    _fails_naming("05.clip_by_global_norm", _divide_by_zero, "expected ValueError")

    def flat(grads, max_norm):  # loses the structure
        if max_norm <= 0:
            raise ValueError
        return jnp.concatenate([g.ravel() for g in jax.tree.leaves(_clip_global(grads, max_norm))])

    _fails_naming("05.clip_by_global_norm", flat, "expected a dict")


# --------------------------------------------------------------------------- selu

A, L = 1.6732632423543772, 1.0507009873554805


def test_selu_answers_that_pass():
    assert evaluate(get("05.selu"), layers.selu, hidden=True).passed
    assert evaluate(get("05.selu"), jax.nn.selu, hidden=True).passed

    def double_where(x):
        safe = jnp.where(x > 0, 0.0, x)
        return L * jnp.where(x > 0, x, A * (jnp.exp(safe) - 1))

    assert evaluate(get("05.selu"), double_where, hidden=True).passed


def _selu(scale_pos, scale_neg, alpha, minus=1.0):
    def selu(x):
        return jnp.where(
            x > 0, scale_pos * x, scale_neg * alpha * (jnp.exp(jnp.minimum(x, 0)) - minus)
        )

    return selu


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (_selu(A, A, L), "swapped"),
        (_selu(L, 1.0, A), "missing the scale lambda"),
        (_selu(1.0, L, A), "only the negative branch is scaled"),
        (_selu(1.0, 1.0, A), "ELU with alpha = 1.6733"),
        (_selu(L, L, A, minus=0.0), "without the -1"),
        (_selu(L, L, 1.0), "alpha is 1"),
    ],
)
def test_wrong_selu_fails_with_the_mistake_named(wrong, phrase):
    _fails_naming("05.selu", wrong, phrase)


def test_selu_with_a_nan_gradient_fails_with_the_explanation():
    def naive(x):
        return L * jnp.where(x > 0, x, A * (jnp.exp(x) - 1))

    report = _fails_naming("05.selu", naive, "0 * inf = NaN")
    assert len(report.failures) == 1  # the values themselves are right


# --------------------------------------------------------------------------- dead fraction


def _flat(h):
    return h.reshape(-1, h.shape[-1])


def test_dead_fraction_answers_that_pass():
    from lessonlib.demos import ch05_initialization as demo

    def ours(h):
        return demo.never_active(_flat(h))

    assert evaluate(get("05.dead_fraction"), ours, hidden=True).passed

    def with_any(h):
        return 1.0 - jnp.mean(jnp.any(_flat(h) > 0, axis=0))

    assert evaluate(get("05.dead_fraction"), with_any, hidden=True).passed


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (lambda h: 1.0 - jnp.mean(jnp.any(_flat(h) >= 0, axis=0)), "h >= 0"),
        (lambda h: jnp.mean(jnp.any(_flat(h) == 0, axis=0)), "on SOME example"),
        (lambda h: jnp.mean(h == 0), "zero entries"),
        (lambda h: jnp.mean(jnp.all(_flat(h) == 0, axis=1)), "instead of the examples"),
        (lambda h: jnp.mean(jnp.all(h == 0, axis=-2)), "per batch"),
        (
            lambda h: (
                jnp.mean(jnp.all(h[-1] == 0, axis=0))
                if h.ndim == 3
                else jnp.mean(jnp.all(h == 0, axis=0))
            ),
            "last batch",
        ),
    ],
)
def test_wrong_dead_fractions_fail_with_the_mistake_named(wrong, phrase):
    _fails_naming("05.dead_fraction", wrong, phrase)


def test_dead_fraction_cases_tell_the_mistakes_apart():
    """Every mistake gives a value different from the right one on at least one visible case."""
    ex = get("05.dead_fraction")
    for label, wrong in ch05.DEAD_MISTAKES.items():
        assert any(
            not np.isclose(wrong(*c.args), ch05._dead_reference(*c.args)) for c in ex.cases
        ), label
