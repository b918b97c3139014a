"""Chapter 02 (dropout): implement dropout, fix the JAX book chapter's dropout, MC-dropout prediction.

Dropout is random, so its checks are statistical: probes call the learner's function on large
inputs with several keys and return plain arrays; the judges compare means and zero fractions with
tolerances derived from the sample size (5 standard deviations of the sample mean), and name the
usual mistakes in their messages.
"""

from __future__ import annotations

import math

import numpy as np

from lessonlib.exercises import Case, Exercise, Key, Outcome

N = 100_000  # units per statistical probe
Z = 5.0  # standard deviations allowed


# --------------------------------------------------------------------------- 02.dropout


def _probe_stats(fn, x, rate, *, key):
    """Outputs for two keys derived from ``key`` and for ``key`` again (plain arrays)."""
    import jax

    k1, k2 = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    return {
        "x": x,
        "a": fn(x, rate, key=k1, train=True),
        "b": fn(x, rate, key=k2, train=True),
        "a_again": fn(x, rate, key=k1, train=True),
    }


def _probe_eval(fn, x, rate):
    return fn(x, rate, train=False)


def _probe_no_key(fn, x, rate):
    return fn(x, rate, train=True)


def _dropout_stats_verdict(x, outs, rate: float, what: str = "dropout(x)") -> str | None:
    """Check survivors, zero fraction, mean, mask independence and key dependence of dropout.

    ``x`` is a 2-D probe with no zero entries and values that differ from unit to unit, so the
    ratio ``out / x`` is the scaled mask: each entry must be 0 or exactly ``1/(1-p)``. That rules
    out survivors computed from anything but their own ``x_i`` (e.g. ``mean(x)/(1-p)``), and the
    masks of different rows (and columns) must differ: a mask shared across the batch is one mask.
    """
    x = np.asarray(x, np.float64)
    a, b, a2 = (np.asarray(outs[k], np.float64) for k in ("a", "b", "a_again"))
    for y in (a, b):
        if y.shape != x.shape:
            return f"expected the output to have the input's shape {x.shape}, got {y.shape}"
    dropped = a == 0  # checked first: a shared mask also spoils the mean
    if rate > 0 and a.ndim == 2 and a.shape[0] > 1:
        if (dropped == dropped[:1]).all():
            return (
                "every row of the batch has the same mask: draw one mask entry per unit of x "
                "(shape x.shape), not one row broadcast over the batch"
            )
        if (dropped == dropped[:, :1]).all():
            return (
                "within each row all units are dropped together: draw one mask entry per unit "
                "(shape x.shape), not one per example"
            )
    kept = a != 0
    if kept.any() and np.allclose(a[kept], x[kept], rtol=1e-5):
        return "kept units equal x: did you forget to divide the survivors by 1-p?"
    if kept.any() and not np.allclose(a[kept], x[kept] / (1 - rate), rtol=1e-5):
        i = tuple(int(j) for j in np.argwhere(kept & ~np.isclose(a, x / (1 - rate), rtol=1e-5))[0])
        return (
            f"each kept unit must equal its own x_i/(1-p): at index {i} x = {x[i]:.4g}, so "
            f"expected {x[i] / (1 - rate):.4g}, got {a[i]:.4g}"
        )
    n = x.size
    ratio = a / x  # the probe has no zeros
    mean = ratio.mean()
    tol = Z * math.sqrt(rate / ((1 - rate) * n)) + 1e-6
    if abs(mean - 1.0) > tol:
        why = ""
        if rate > 0 and abs(mean - rate / (1 - rate)) < 0.02:
            why = " Are you keeping units with probability p instead of 1-p?"
        elif abs(mean - (1 - rate)) < 0.02:
            why = " Did you forget to divide the survivors by 1-p?"
        elif abs(mean - 1 / (1 - rate)) < 0.02:
            why = " Are you scaling every unit by 1/(1-p) without zeroing any?"
        return (
            f"mean of {what}/x is {mean:.2f}, expected 1 (rate p = {rate}; tolerance "
            f"{tol:.4f} from {n} samples).{why}"
        )
    zeros = (a == 0).mean()
    ztol = Z * math.sqrt(rate * (1 - rate) / n)
    if abs(zeros - rate) > ztol:
        return f"{zeros:.3f} of the units are zero, expected a fraction p = {rate}" + (
            ": no unit is dropped" if zeros == 0 else ""
        )
    dropped = a == 0
    if rate > 0 and np.array_equal(dropped, b == 0):
        return (
            "two different keys gave the same mask: use the key you are given "
            "(a fixed PRNGKey(0) repeats one mask every training step)"
        )
    if not np.array_equal(a, a2):
        return "the same key gave two different masks: draw the mask from the key argument only"
    return None


def _judge_dropout(case: Case, outcome: Outcome) -> str | None:
    rate = float(case.args[1])
    kind = case.probe
    bad_rate = not 0.0 <= rate < 1.0
    if bad_rate:
        if outcome.error is None:
            return f"rate = {rate} is outside [0, 1): raise ValueError naming the rate"
        if not outcome.error.startswith("ValueError"):
            return f"rate = {rate}: expected ValueError, got {outcome.error}"
        return None
    if kind == "_probe_no_key":
        if outcome.error is None:
            return "train=True without a key must raise ValueError (a silent default key repeats masks)"
        if not outcome.error.startswith("ValueError"):
            return f"missing key: expected ValueError, got {outcome.error}"
        return None
    if outcome.error is not None:
        return outcome.error
    x = np.asarray(case.args[0])
    if kind == "_probe_eval":
        got = np.asarray(outcome.value)
        if got.shape != x.shape or not np.array_equal(got, x):
            return (
                "train=False must return x unchanged (inverted dropout needs no test-time scaling)"
            )
        return None
    if rate == 0.0:
        for k in ("a", "b"):
            if not np.array_equal(np.asarray(outcome.value[k]), x):
                return "rate = 0 must return x exactly (nothing dropped, nothing rescaled)"
        return None
    return _dropout_stats_verdict(x, outcome.value, rate)


def _dropout_reference(x, rate, *, key=None, train=True):
    import jax
    import jax.numpy as jnp

    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate must lie in [0, 1), got {rate!r}")
    if not train or rate == 0:
        return x
    if key is None:
        raise ValueError("key is required when train=True")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


_ONES = np.full(N, 1.0, np.float32)
_X = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
# the statistical probes: a batch of 500 rows of 200 different non-zero values (no two rows equal)
_RNG = np.random.default_rng(2)
_XS = (_RNG.uniform(0.5, 2.0, (500, 200)) * _RNG.choice([-1.0, 1.0], (500, 200))).astype(np.float32)

_DROPOUT_PROBES = {"_probe_stats": _probe_stats, "_probe_eval": _probe_eval}
_DROPOUT_PROBES["_probe_no_key"] = _probe_no_key

dropout_exercise = Exercise(
    id="02.dropout",
    name="dropout",
    points=3,
    cases=(
        Case(
            (_XS, 0.3), {"key": Key(0)}, probe="_probe_stats", note="x of shape (500, 200), p = 0.3"
        ),
        Case((_X, 0.5), probe="_probe_eval", note="train=False"),
        Case((_ONES[:10], 1.0), {"key": Key(0)}, note="p = 1.0 is not allowed"),
        Case((_ONES[:10], -0.1), {"key": Key(0)}, note="p = -0.1 is not allowed"),
    ),
    hidden=(
        Case((_XS * 2.5, 0.5), {"key": Key(1)}, probe="_probe_stats", note="x * 2.5, p = 0.5"),
        Case((_XS, 0.1), {"key": Key(2)}, probe="_probe_stats", note="p = 0.1"),
        Case((_XS * -1.5, 0.8), {"key": Key(3)}, probe="_probe_stats", note="x * -1.5, p = 0.8"),
        Case((_ONES, 0.3), {"key": Key(6)}, probe="_probe_stats", note="a 1-D x, p = 0.3"),
        Case((_X, 0.0), {"key": Key(4)}, probe="_probe_stats", note="p = 0 returns x"),
        Case((_X, 0.9), probe="_probe_eval", note="train=False, p = 0.9"),
        Case((_X, 0.5), probe="_probe_no_key", note="train=True without a key"),
        Case((_ONES[:10], -0.5), {"key": Key(5)}, note="p = -0.5 is not allowed"),
        Case((_ONES[:10], 1.5), {"key": Key(5)}, note="p = 1.5 is not allowed"),
    ),
    reference=_dropout_reference,
    judge=_judge_dropout,
    hint="Keep each unit with probability 1-p (uniform(key) >= p), divide the survivors by 1-p, "
    "return x when train=False or p == 0, and raise ValueError for a bad rate or a missing key.",
    probes=_DROPOUT_PROBES,
)


# --------------------------------------------------------------------------- 02.fixed_dropout


def _book_fix_reference(x, dropout_prob, is_training, *, key):
    import jax

    if is_training:
        mask = jax.random.bernoulli(key, 1 - dropout_prob, x.shape)
        return x * mask.astype(x.dtype) / (1 - dropout_prob)
    return x


def _probe_fix(fn, x, p, *, key):
    import jax

    k1, k2 = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    return {
        "a": fn(x, p, True, key=k1),
        "b": fn(x, p, True, key=k2),
        "a_again": fn(x, p, True, key=k1),
        "eval": fn(x, p, False, key=k1),
    }


def _judge_fix(case: Case, outcome: Outcome) -> str | None:
    if outcome.error is not None:
        return outcome.error
    x, p = np.asarray(case.args[0]), float(case.args[1])
    value = outcome.value
    if not np.array_equal(np.asarray(value["eval"]), x):
        return "with is_training=False the layer must return x unchanged"
    verdict = _dropout_stats_verdict(x, value, p, what="fixed_dropout(x)")
    if verdict:
        return verdict
    # the fix keeps the book's structure: x * bernoulli(key, 1 - p) / (1 - p), bit for bit
    import jax

    key = jax.random.key(case.kwargs["key"].seed)
    want = np.asarray(_book_fix_reference(x, p, True, key=jax.random.fold_in(key, 1)))
    if not np.allclose(np.asarray(value["a"]), want, rtol=1e-6):
        return (
            "statistics are right but the mask differs from jax.random.bernoulli(key, 1 - p, "
            "x.shape): keep the book's structure and change only the key and the probability"
        )
    return None


fixed_dropout_exercise = Exercise(
    id="02.fixed_dropout",
    name="fixed_dropout",
    points=2,
    cases=(
        Case(
            (_XS, 0.3), {"key": Key(10)}, probe="_probe_fix", note="x of shape (500, 200), p = 0.3"
        ),
    ),
    hidden=(
        Case((_XS * 3.0, 0.5), {"key": Key(11)}, probe="_probe_fix", note="x * 3, p = 0.5"),
        Case((_XS, 0.8), {"key": Key(12)}, probe="_probe_fix", note="p = 0.8"),
    ),
    judge=_judge_fix,
    hint="Two bugs: the key is fixed (PRNGKey(0) gives one mask forever) and bernoulli(key, q) "
    "KEEPS units with probability q, so the keep probability must be 1 - dropout_prob.",
    probes={"_probe_fix": _probe_fix},
)


# --------------------------------------------------------------------------- 02.mc_predict


def _toy_forward():
    """A fixed 6-16-3 network with dropout 0.5 on its hidden layer: forward(x, key) -> logits."""
    import jax
    import jax.numpy as jnp

    from lessonlib.layers import dropout

    k1, k2 = jax.random.split(jax.random.key(123))
    w1 = jax.random.normal(k1, (6, 16), jnp.float32)
    w2 = jax.random.normal(k2, (16, 3), jnp.float32)

    def forward(x, key):
        h = jax.nn.relu(x @ w1)
        return dropout(h, 0.5, key=key, train=True) @ w2

    return forward


def _mc_reference(forward, x, *, key, passes):
    import jax
    import jax.numpy as jnp

    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    probs = [jax.nn.softmax(forward(x, jax.random.fold_in(key, t)), axis=-1) for t in range(passes)]
    return jnp.mean(jnp.stack(probs), axis=0)


def _probe_mc(fn, x, *, key, passes):
    return fn(_toy_forward(), x, key=key, passes=passes)


def _mc_alternatives(x, key, passes) -> dict[str, np.ndarray]:
    import jax
    import jax.numpy as jnp

    forward = _toy_forward()
    keys = [jax.random.fold_in(key, t) for t in range(passes)]
    logits = jnp.stack([forward(x, k) for k in keys])
    return {
        "right": np.asarray(jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)),
        "mean_logits": np.asarray(jax.nn.softmax(jnp.mean(logits, axis=0), axis=-1)),
        "one_key": np.asarray(jax.nn.softmax(forward(x, key), axis=-1)),
        "first_key": np.asarray(jax.nn.softmax(logits[0], axis=-1)),
    }


def _judge_mc(case: Case, outcome: Outcome) -> str | None:
    import jax

    x = np.asarray(case.args[0])
    passes = int(case.kwargs["passes"])
    if passes < 1:
        if outcome.error is None or not outcome.error.startswith("ValueError"):
            return f"passes = {passes}: expected ValueError"
        return None
    if outcome.error is not None:
        return outcome.error
    got = np.asarray(outcome.value, np.float64)
    alt = _mc_alternatives(x, jax.random.key(case.kwargs["key"].seed), passes)
    if got.shape != alt["right"].shape:
        return f"expected probabilities of shape {alt['right'].shape} (n, classes), got {got.shape}"
    if np.allclose(got, alt["right"], rtol=1e-4, atol=1e-6):
        return None
    if not np.allclose(got.sum(-1), 1.0, atol=1e-4):
        return "rows must be probabilities that sum to 1: average softmax(logits), not logits"
    if np.allclose(got, alt["mean_logits"], rtol=1e-4, atol=1e-6):
        return "you averaged the logits and then took the softmax: average the probabilities"
    if passes > 1 and (
        np.allclose(got, alt["one_key"], rtol=1e-4, atol=1e-6)
        or np.allclose(got, alt["first_key"], rtol=1e-4, atol=1e-6)
    ):
        return (
            "all passes used the same key, so they are one prediction repeated: use fold_in(key, t)"
        )
    return (
        "probabilities differ from the mean over t = 0..passes-1 of softmax(forward(x, "
        "fold_in(key, t))); pass t must use jax.random.fold_in(key, t)"
    )


_XM = np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(5, 6)

mc_predict_exercise = Exercise(
    id="02.mc_predict",
    name="mc_predict",
    points=2,
    cases=(
        Case((_XM,), {"key": Key(20), "passes": 10}, probe="_probe_mc", note="5 inputs, 10 passes"),
        Case((_XM,), {"key": Key(24), "passes": 0}, probe="_probe_mc", note="passes = 0"),
    ),
    hidden=(
        Case((_XM * 2,), {"key": Key(21), "passes": 30}, probe="_probe_mc", note="30 passes"),
        Case((_XM[:2],), {"key": Key(22), "passes": 1}, probe="_probe_mc", note="1 pass"),
        Case((_XM,), {"key": Key(23), "passes": -2}, probe="_probe_mc", note="passes = -2"),
    ),
    reference=_mc_reference,
    judge=_judge_mc,
    hint="Average softmax(forward(x, jax.random.fold_in(key, t))) over t = 0 .. passes-1; "
    "raise ValueError when passes < 1.",
    probes={"_probe_mc": _probe_mc},
)


def _pick_p_reference(ps, val_acc, test_acc):
    ps, val_acc, test_acc = (np.asarray(a, np.float64) for a in (ps, val_acc, test_acc))
    if not (len(ps) == len(val_acc) == len(test_acc)) or len(ps) == 0:
        raise ValueError(
            f"ps, val_acc and test_acc must have one entry per rate, got lengths "
            f"{len(ps)}, {len(val_acc)}, {len(test_acc)}"
        )
    return float(ps[int(np.argmax(val_acc))])  # argmax: the first (smallest p) of a tie


def _judge_pick_p(case: Case, outcome: Outcome) -> str | None:
    ps, val, test = (np.asarray(a, np.float64) for a in case.args)
    try:
        want = _pick_p_reference(ps, val, test)
    except ValueError as e:
        if outcome.error is None:
            return f"expected ValueError ({e}), but it returned normally"
        return None if outcome.error.startswith("ValueError") else f"raised {outcome.error}"
    if outcome.error:
        return f"raised {outcome.error}"
    try:
        got = float(np.asarray(outcome.value))
    except (TypeError, ValueError):
        return f"returned {outcome.value!r}; return the rate p itself, a float"
    if np.isclose(got, want):
        return None
    if np.isclose(got, ps[np.argmax(test)]):
        return "you chose on the test split: choose on validation, then report the test score once"
    if np.isclose(got, ps[np.argmin(val)]):
        return "that p has the LOWEST validation accuracy: take the argmax"
    if got == int(np.argmax(val)):
        return (
            f"returned the index {int(got)} of the best rate; return the rate p = {want:g} itself"
        )
    ties = np.flatnonzero(val == val.max())
    if len(ties) > 1 and np.isclose(got, ps[ties[-1]]):
        return "on a tie take the first (smallest) p, as np.argmax does: less dropout, same score"
    return f"returned {got:g}, expected the p with the best validation accuracy, {want:g}"


_PS = np.round(np.arange(10) * 0.1, 1)

pick_p_exercise = Exercise(
    id="02.pick_p",
    name="pick_p",
    points=1,
    cases=(
        Case(
            (
                _PS,
                np.linspace(0.60, 0.69, 10)[[0, 3, 6, 9, 8, 7, 5, 4, 2, 1]],
                np.linspace(0.60, 0.69, 10)[[0, 3, 6, 8, 9, 7, 5, 4, 2, 1]],
            ),
            note="validation prefers p = 0.3, the test split p = 0.4",
        ),
        Case((_PS[:3], np.array([0.5, 0.6, 0.7]), np.array([0.5, 0.6])), note="lengths differ"),
    ),
    hidden=(
        Case((_PS[:5], np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([0.1, 0.2, 0.3, 0.4, 0.5]))),
        Case((_PS[:5], np.array([0.6, 0.7, 0.7, 0.5, 0.4]), np.array([0.6, 0.6, 0.5, 0.8, 0.4]))),
        Case((_PS[2:7], np.array([0.5, 0.4, 0.3, 0.8, 0.2]), np.array([0.9, 0.4, 0.3, 0.8, 0.2]))),
    ),
    reference=_pick_p_reference,
    judge=_judge_pick_p,
    hint="Return ps[argmax(val_acc)] (the first one on a tie); test_acc is reported, never used "
    "to choose; ValueError when the three lengths differ.",
)


EXERCISES = [dropout_exercise, fixed_dropout_exercise, mc_predict_exercise, pick_p_exercise]
