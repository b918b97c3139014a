"""Exercises of chapter 05: the variance-scaling initializer, clipping by global norm, SELU, and
the fraction of dead units.

Initializers are random, so ``05.variance_scaling`` is judged statistically: a probe draws with
two keys and with the first key again, and the judge (trusted, this process) checks the shape,
the variance (tolerance: 5 standard errors of a sample variance), the distribution (one-sample
Kolmogorov-Smirnov against the exact CDF, at its 0.1% critical value) and the key handling.
Every other answer is compared with a float64 reference; when an answer is wrong, the judges try
the usual mistakes (fan_out for fan_in, the uncorrected truncated normal, per-leaf norms, swapped
SELU constants, ``>=`` for "active", counting per batch, ...) and name the one that matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lessonlib.exercises import Case, Exercise, Key, Outcome, compare, judge_with_mistakes

Z = 5.0  # standard errors allowed for a sample statistic
KS_CRITICAL = 1.95  # c(alpha) of the one-sample Kolmogorov-Smirnov test at alpha = 0.001
TRUNCATED_STD = 0.87962566103423978  # sd of N(0, 1) truncated to [-2, 2]


def _f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


def _leaves(tree) -> list:
    if isinstance(tree, dict):
        return [v for k in tree for v in _leaves(tree[k])]
    if isinstance(tree, list):
        return [v for item in tree for v in _leaves(item)]
    return [tree]


def _map(fn: Callable, tree):
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_map(fn, v) for v in tree]
    return fn(_f64(tree))


# --------------------------------------------------------------------------- 05.variance_scaling

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def _fan(fan_in: int, fan_out: int, mode: str) -> float:
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def _check_args(scale, mode, distribution) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got {distribution!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")


def _variance_scaling_reference(
    key, fan_in, fan_out, scale=1.0, mode="fan_in", distribution="truncated_normal"
):
    """Keras's ``VarianceScaling`` / ``jax.nn.initializers.variance_scaling`` (trusted)."""
    import jax
    import jax.numpy as jnp

    _check_args(scale, mode, distribution)
    std = math.sqrt(scale / _fan(fan_in, fan_out, mode))
    shape = (fan_in, fan_out)
    if distribution == "normal":
        return std * jax.random.normal(key, shape, jnp.float32)
    if distribution == "truncated_normal":
        return std / TRUNCATED_STD * jax.random.truncated_normal(key, -2.0, 2.0, shape)
    return math.sqrt(3) * std * jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)


def _probe_draws(fn, *args, key, **kwargs):
    """Draws for two keys derived from ``key`` and for the first key again (plain arrays)."""
    import jax

    k1, k2 = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    return {
        "a": fn(k1, *args, **kwargs),
        "b": fn(k2, *args, **kwargs),
        "a_again": fn(k1, *args, **kwargs),
    }


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z), the standard normal CDF, as 1 - erfc(z / sqrt 2) / 2 with the Chebyshev fit of
    erfc in Numerical Recipes (2nd ed., section 6.2, ``erfcc``): fractional error below 1.2e-7
    everywhere, far under the test's resolution (its critical distance is 1.95 / sqrt(n) > 1e-3
    here). Written in numpy so the judge needs neither scipy.stats (about 2.5 s to import) nor
    a compiled program; ``tests/test_ch05_exercises.py`` checks it against scipy."""
    x = np.abs(np.asarray(z, np.float64)) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * x)
    poly = -0.82215223 + t * 0.17087277
    for c in (1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196):
        poly = c + t * poly
    erfc = t * np.exp(-x * x - 1.26551223 + t * (1.00002368 + t * poly))
    return np.where(np.asarray(z) >= 0, 1.0 - erfc / 2, erfc / 2)


def _cdf(distribution: str, var: float) -> Callable[[np.ndarray], np.ndarray]:
    """The CDF of the weights' distribution with variance ``var`` (zero mean)."""
    sd = math.sqrt(var)
    if distribution == "normal":
        return lambda x: _normal_cdf(x / sd)
    if distribution == "truncated_normal":  # N(0, s^2) cut to [-2s, 2s], s = sd / TRUNCATED_STD
        s = sd / TRUNCATED_STD
        lo, mass = _normal_cdf(-2.0), _normal_cdf(2.0) - _normal_cdf(-2.0)
        return lambda x: np.clip((_normal_cdf(np.clip(x / s, -2, 2)) - lo) / mass, 0.0, 1.0)
    a = math.sqrt(3) * sd
    return lambda x: np.clip((x + a) / (2 * a), 0.0, 1.0)


def _ks(sample: np.ndarray, distribution: str, var: float) -> float:
    """The one-sample Kolmogorov-Smirnov distance sup |F_n(x) - F(x)| (``scipy.stats.kstest``'s
    statistic): at the i-th smallest draw, F_n jumps from (i-1)/n to i/n."""
    x = np.sort(np.asarray(sample, np.float64).ravel())
    n = x.size
    f = _cdf(distribution, var)(x)
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def _variance_mistakes(fan_in, fan_out, scale, mode, distribution) -> dict[str, float]:
    """label -> the variance a plausible mistake produces."""
    fan = _fan(fan_in, fan_out, mode)
    var = scale / fan
    out = {}
    for other in MODES:
        other_fan = _fan(fan_in, fan_out, other)
        if other != mode and not math.isclose(other_fan, fan):
            out[f"you divided by {other} = {other_fan:g} instead of {mode} = {fan:g}"] = (
                scale / other_fan
            )
    if mode == "fan_avg":
        out["you divided by fan_in + fan_out instead of their average"] = scale / (fan_in + fan_out)
    if distribution == "truncated_normal":
        out[
            "the truncated normal keeps the untruncated standard deviation sqrt(scale/fan): "
            f"cutting at ±2 sd removes variance, divide the sd by {TRUNCATED_STD:.4f}"
        ] = var * TRUNCATED_STD**2
    if distribution == "uniform":
        out["the uniform limit is sqrt(scale/fan); it must be sqrt(3*scale/fan)"] = var / 3
    if scale != 1:
        out["scale is ignored (Var(w) = 1/fan)"] = 1 / fan
        out["scale is outside the square root (sd = scale*sqrt(1/fan))"] = scale**2 / fan
    out["the variance scale/fan was used as the standard deviation"] = var**2
    return out


def _judge_variance_scaling(case: Case, outcome: Outcome) -> str | None:
    if case.probe is None:  # a bad argument: the learner must raise ValueError
        if outcome.error is None:
            return f"{case.note}: raise ValueError naming the argument and what is allowed"
        if not outcome.error.startswith("ValueError"):
            return f"{case.note}: expected ValueError, got {outcome.error}"
        return None
    if outcome.error is not None:
        return outcome.error
    fan_in, fan_out = case.args[:2]
    scale, mode, distribution = case.args[2:5]
    try:
        draws = {k: _f64(outcome.value[k]) for k in ("a", "b", "a_again")}
    except (TypeError, ValueError, KeyError):
        got = outcome.value.get("a") if isinstance(outcome.value, dict) else outcome.value
        return (
            f"expected a (fan_in, fan_out) array of numbers, got {type(got).__name__} {got!r:.60}"
        )
    a = draws["a"]
    if a.shape != (fan_in, fan_out):
        return f"expected an array of shape (fan_in, fan_out) = {(fan_in, fan_out)}, got {a.shape}"
    if not np.isfinite(a).all():
        return "the weights contain NaN or inf"
    n, var = a.size, scale / _fan(fan_in, fan_out, mode)
    got_var = float(a.var())
    tol = Z * var * math.sqrt(2 / n)  # sd of a sample variance of a normal; others are smaller
    if abs(got_var - var) > tol:
        why = (
            f"Var(w) = {got_var:.4g}, expected scale / {mode} = {scale:g} / "
            f"{_fan(fan_in, fan_out, mode):g} = {var:.4g} (tolerance {tol:.2g} from {n} draws)"
        )
        for label, v in _variance_mistakes(fan_in, fan_out, scale, mode, distribution).items():
            if abs(got_var - v) <= Z * v * math.sqrt(2 / n):
                return f"{why} — this is what you get when {label}"
        return why
    if abs(float(a.mean())) > Z * math.sqrt(var / n):
        return f"the mean of the weights is {a.mean():.3g}; it must be 0"
    d = _ks(a.ravel(), distribution, var)
    critical = KS_CRITICAL / math.sqrt(n)
    if d > critical:
        why = (
            f"the variance is right but the draws do not follow a {distribution} distribution "
            f"(Kolmogorov-Smirnov distance {d:.4f} > {critical:.4f})"
        )
        for other in DISTRIBUTIONS:
            if other != distribution and _ks(a.ravel(), other, var) <= critical:
                return f"{why}: they look {other.replace('_', ' ')}"
        if distribution == "truncated_normal":
            bound = 2 * math.sqrt(var) / TRUNCATED_STD
            return f"{why}: a truncated normal redraws values beyond ±{bound:.4g} (2 sd)"
        return why
    if np.array_equal(a, draws["b"]):
        return "two different keys gave the same weights: draw from the key you are given"
    if not np.array_equal(a, draws["a_again"]):
        return "the same key gave different weights: draw from the key argument only"
    return None


def _vs_case(fan_in, fan_out, scale, mode, distribution, seed, note="") -> Case:
    note = note or f"fan_in={fan_in}, fan_out={fan_out}, scale={scale}, {mode}, {distribution}"
    return Case(
        (fan_in, fan_out, scale, mode, distribution),
        {"key": Key(seed)},
        probe="_probe_draws",
        note=note,
    )


def _vs_bad(note: str, **kwargs) -> Case:
    args = {"scale": 1.0, "mode": "fan_in", "distribution": "normal"} | kwargs
    return Case((Key(0), 3, 4), args, note=note)


VARIANCE_SCALING = Exercise(
    id="05.variance_scaling",
    name="variance_scaling",
    points=3,
    cases=(
        _vs_case(300, 500, 1.0, "fan_in", "normal", 1, "LeCun normal: scale 1, fan_in"),
        _vs_case(300, 500, 2.0, "fan_avg", "uniform", 2, "the notes' scale=2, fan_avg, uniform"),
        _vs_case(300, 500, 1.0, "fan_in", "truncated_normal", 3, "truncated normal, fan_in"),
        _vs_bad("mode='fan_sum'", mode="fan_sum"),
    ),
    hidden=(  # one shape for every case: the learner's draws compile once per distribution
        _vs_case(300, 500, 2.0, "fan_out", "truncated_normal", 11),
        _vs_case(300, 500, 1.0, "fan_avg", "normal", 12),
        _vs_case(300, 500, 2.0, "fan_in", "uniform", 13),
        _vs_case(300, 500, 2.0, "fan_avg", "truncated_normal", 14),
        _vs_case(300, 500, 0.5, "fan_out", "uniform", 15),
        _vs_bad("distribution='cauchy'", distribution="cauchy"),
        _vs_bad("scale=0", scale=0.0),
        _vs_bad("scale=-2", scale=-2.0),
    ),
    reference=_variance_scaling_reference,
    judge=_judge_variance_scaling,
    probes={"_probe_draws": _probe_draws},
    hint=(
        "Var(w) = scale / fan with fan = fan_in, fan_out or (fan_in + fan_out) / 2; normal: "
        "sd = sqrt(scale/fan); truncated normal: jax.random.truncated_normal(key, -2, 2, shape) "
        "times sqrt(scale/fan) / 0.8796; uniform: limit sqrt(3 * scale / fan). ValueError for "
        "an unknown mode or distribution and for scale <= 0."
    ),
)


# --------------------------------------------------------------------------- 05.clip_by_global_norm


def _global_norm(tree) -> float:
    return math.sqrt(sum(float(np.sum(v**2)) for v in _leaves(_map(lambda a: a, tree))))


def _clip_reference(grads, max_norm):
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    norm = _global_norm(grads)
    factor = 1.0 if norm <= max_norm else max_norm / norm
    return _map(lambda g: g * factor, grads)


CLIP_MISTAKES = {
    "each leaf is clipped by its own norm (Keras's clipnorm): the global norm is over ALL leaves": (
        lambda grads, max_norm: _map(
            lambda g: g * min(1.0, max_norm / max(math.sqrt(float(np.sum(g**2))), 1e-300)), grads
        )
    ),
    "every coordinate is clipped to [-max_norm, max_norm] (that is clipping by value)": (
        lambda grads, max_norm: _map(lambda g: np.clip(g, -max_norm, max_norm), grads)
    ),
    "the gradients are always rescaled to norm max_norm, even when they are already smaller": (
        lambda grads, max_norm: _map(lambda g: g * max_norm / _global_norm(grads), grads)
    ),
    "the norm is the sum of squares without the square root": (
        lambda grads, max_norm: _map(
            lambda g: g * min(1.0, max_norm / (_global_norm(grads) ** 2)), grads
        )
    ),
}


def _tree(seed: int, shapes: dict, scale: float) -> dict:
    rng = np.random.default_rng(seed)
    return {k: (rng.normal(size=s) * scale).astype(np.float32) for k, s in shapes.items()}


_G_SMALL = {"w": np.array([[0.3, -0.4], [0.0, 0.0]], np.float32), "b": np.array([0.0], np.float32)}
_G_NESTED = {
    "dense": [
        _tree(51, {"w": (4, 3), "b": (3,)}, 5.0),
        _tree(52, {"w": (3, 2), "b": (2,)}, 0.5),
    ]
}

CLIP_BY_GLOBAL_NORM = Exercise(
    id="05.clip_by_global_norm",
    name="clip_by_global_norm",
    points=2,
    cases=(
        Case(
            ({"w": np.array([0.9, 100.0], np.float32)}, 1.0),
            note="the notes' [0.9, 100.0] at max_norm 1",
        ),
        Case(
            (
                {
                    "w": np.array([[3.0, 0.0], [0.0, 0.0]], np.float32),
                    "b": np.array([4.0], np.float32),
                },
                1.0,
            ),
            note="two leaves with norms 3 and 4: global norm 5",
        ),
        Case((_G_SMALL, 1.0), note="norm 0.5 < max_norm: unchanged"),
        Case(({"w": np.zeros((2, 2), np.float32)}, 1.0), note="all-zero gradients"),
    ),
    hidden=(
        Case((_G_NESTED, 2.0), note="a nested pytree of two layers"),
        Case((_tree(53, {"w": (5, 5), "b": (5,), "g": (5,)}, 0.1), 10.0)),
        Case((_tree(54, {"w": (6,), "b": (2,)}, 3.0), 0.5)),
        Case((_G_SMALL, 0.0), note="max_norm = 0"),
        Case((_G_SMALL, -1.0), note="max_norm = -1"),
    ),
    reference=_clip_reference,
    judge=judge_with_mistakes(_clip_reference, CLIP_MISTAKES, rtol=1e-5, atol=1e-6),
    hint=(
        "norm = sqrt(sum over ALL leaves of sum(g**2)); multiply every leaf by "
        "min(1, max_norm / norm) (no division when the norm is 0); keep the pytree's structure "
        "(jax.tree.map); ValueError for max_norm <= 0."
    ),
)


# --------------------------------------------------------------------------- 05.selu

ALPHA, SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _selu_values(x):
    x = _f64(x)
    return SCALE * np.where(x > 0, x, ALPHA * np.expm1(np.minimum(x, 0)))


def _selu_reference(x):
    """The model answer (differentiable: the gradient probe runs it under jax.grad)."""
    import jax.numpy as jnp

    return SCALE * jnp.where(x > 0, x, ALPHA * jnp.expm1(jnp.minimum(x, 0)))


def _selu_like(scale_pos: float, scale_neg: float, alpha: float, minus_one: bool = True):
    def f(x):
        x = _f64(x)
        neg = np.exp(np.minimum(x, 0)) - (1 if minus_one else 0)
        return np.where(x > 0, scale_pos * x, scale_neg * alpha * neg)

    return f


SELU_MISTAKES = {
    "alpha and lambda are swapped (alpha ~ 1.6733, lambda ~ 1.0507)": _selu_like(
        ALPHA, ALPHA, SCALE
    ),
    "the negative branch (the ELU part) is missing the scale lambda": _selu_like(SCALE, 1.0, ALPHA),
    "only the negative branch is scaled: lambda multiplies both branches": _selu_like(
        1.0, SCALE, ALPHA
    ),
    "there is no scale at all: that is ELU with alpha = 1.6733": _selu_like(1.0, 1.0, ALPHA),
    "the negative branch is lambda*alpha*exp(x), without the -1": _selu_like(
        SCALE, SCALE, ALPHA, minus_one=False
    ),
    "alpha is 1 (that is lambda * ELU)": _selu_like(SCALE, SCALE, 1.0),
}


def _probe_selu_grad(fn, x):
    """d selu / dx at every entry of ``x`` (the function is elementwise)."""
    import jax
    import jax.numpy as jnp

    return jax.grad(lambda v: jnp.sum(fn(v)))(x)


def _selu_grad_reference(x):
    x = _f64(x)
    return SCALE * np.where(x > 0, 1.0, ALPHA * np.exp(np.minimum(x, 0)))


def _judge_selu(case: Case, outcome: Outcome) -> str | None:
    if case.probe != "_probe_selu_grad":
        return _SELU_VALUES(case, outcome)
    if outcome.error is not None:
        return f"jax.grad of your selu failed: {outcome.error}"
    got = _f64(outcome.value)
    x = _f64(case.args[0])
    if not np.isfinite(got).all():
        bad = x[~np.isfinite(got)]
        return (
            f"jax.grad(selu) is NaN at x = {bad[0]:g}: jnp.where computes both branches, "
            f"exp({abs(bad[0]):g}) overflows to inf and the backward pass multiplies it by 0 "
            "(0 * inf = NaN). Feed exp only non-positive values, e.g. "
            "jnp.exp(jnp.minimum(x, 0)) or jnp.expm1(jnp.where(x > 0, 0.0, x))"
        )
    return compare(got, _selu_grad_reference(x), rtol=1e-5, atol=1e-6)


_SELU_VALUES = judge_with_mistakes(_selu_values, SELU_MISTAKES, rtol=1e-5, atol=1e-6)
_X_SELU = np.array([-50.0, -20.0, -3.0, -1.0, -0.5, 0.0, 0.5, 2.0], np.float32)

SELU = Exercise(
    id="05.selu",
    name="selu",
    points=2,
    cases=(
        Case((_X_SELU,), note="x = [-50, -20, -3, -1, -0.5, 0, 0.5, 2]"),
        Case(
            (np.array([100.0, 90.0, -1.0, 2.0, -0.5, 0.3, -3.0, 5.0], np.float32),),
            probe="_probe_selu_grad",
            note="jax.grad of selu at x = 100 (must be finite)",
        ),
    ),
    hidden=(
        Case((np.linspace(-4, 4, 8, dtype=np.float32),)),
        Case((np.array([1e-3, -1e-3, 10.0, -10.0, 0.2, -0.2, 3.0, -3.0], np.float32),)),
        Case((np.linspace(-4, 4, 8, dtype=np.float32).reshape(2, 4),), note="a 2 x 4 array"),
        Case((np.linspace(-4, 4, 8, dtype=np.float32),), probe="_probe_selu_grad"),
    ),
    reference=_selu_reference,
    judge=_judge_selu,
    probes={"_probe_selu_grad": _probe_selu_grad},
    rtol=1e-5,
    atol=1e-6,
    hint=(
        "selu(x) = lambda * x for x > 0 and lambda * alpha * (exp(x) - 1) otherwise, with "
        "alpha = 1.6732632423543772 and lambda = 1.0507009873554805; keep exp away from large "
        "positive x so that jax.grad stays finite."
    ),
)


# --------------------------------------------------------------------------- 05.dead_fraction


def _dead_reference(h):
    h = _f64(h)
    units = h.reshape(-1, h.shape[-1])
    return float(np.mean(np.all(units <= 0, axis=0)))


DEAD_MISTAKES = {
    "a unit counts as active when h >= 0: ReLU outputs 0 when inactive, so use h > 0": (
        lambda h: float(np.mean(np.all(_f64(h).reshape(-1, _f64(h).shape[-1]) < 0, axis=0)))
    ),
    "you counted units that are 0 on SOME example; dead means 0 on EVERY example": (
        lambda h: float(np.mean(np.any(_f64(h).reshape(-1, _f64(h).shape[-1]) <= 0, axis=0)))
    ),
    "you counted zero entries (examples x units), not units that are never active": (
        lambda h: float(np.mean(_f64(h) <= 0))
    ),
    "you reduced over the units instead of the examples (axis confusion)": (
        lambda h: float(np.mean(np.all(_f64(h).reshape(-1, _f64(h).shape[-1]) <= 0, axis=1)))
    ),
    "you counted per batch and averaged: a unit active in another batch is not dead": (
        lambda h: float(np.mean(np.mean(np.all(_f64(h) <= 0, axis=-2), axis=-1)))
    ),
    "you only looked at the last batch: use the whole training set": (
        lambda h: float(np.mean(np.all(_f64(h)[-1] <= 0, axis=0)))
    ),
}

_H_UNITS = np.array(
    [
        # units 0 and 3 never fire, unit 1 once, unit 2 on 4 of 5 examples, unit 4 twice;
        # example 3 has every unit off (5 examples x 5 units)
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 0.7, 2.0, 0.0, 0.0],
        [0.0, 0.0, 0.5, 0.0, 0.3],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 3.0, 0.0, 1.2],
    ],
    np.float32,
)


def _batches() -> np.ndarray:
    """3 batches x 4 examples x 5 units: unit 0 active only in batch 0, unit 1 only in batch 2,
    unit 2 never, units 3 and 4 always."""
    h = np.zeros((3, 4, 5), np.float32)
    h[0, 1, 0] = 0.5
    h[2, 3, 1] = 0.2
    h[:, :, 3] = 1.0
    h[:, :, 4] = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    return h


def _hidden_batches() -> np.ndarray:
    rng = np.random.default_rng(55)
    z = rng.normal(size=(4, 32, 40)) + np.linspace(-4, 1, 40)  # later units more active
    h = np.maximum(z, 0).astype(np.float32)
    h[:, :, ::7] = 0.0  # a few units dead for sure
    h[1, 5, 14] = 0.8  # unit 14 fires once, in batch 1 only
    return h


DEAD_FRACTION = Exercise(
    id="05.dead_fraction",
    name="dead_fraction",
    points=2,
    cases=(
        Case((_H_UNITS,), note="5 examples x 5 ReLU units"),
        Case((_batches(),), note="3 batches x 4 examples x 5 units (the training set in batches)"),
    ),
    hidden=(
        Case((_hidden_batches(),), note="4 batches x 32 examples x 40 units"),
        Case((_hidden_batches()[0],), note="one batch of 32 x 40"),
        Case((np.maximum(np.eye(6, dtype=np.float32) - 0.5, 0),), note="each unit fires once"),
    ),
    reference=_dead_reference,
    judge=judge_with_mistakes(_dead_reference, DEAD_MISTAKES, rtol=1e-6, atol=1e-9),
    hint=(
        "A ReLU unit is dead when its output is 0 (not > 0) for EVERY example of the training "
        "set: flatten all leading axes into one examples axis, test h > 0, reduce over examples "
        "with any/all, then average over units."
    ),
)

EXERCISES = [VARIANCE_SCALING, CLIP_BY_GLOBAL_NORM, SELU, DEAD_FRACTION]
