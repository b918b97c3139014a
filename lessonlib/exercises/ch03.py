"""Exercise specs of chapter 03 (batch normalization).

1. ``batch_norm``: the forward pass in train and eval mode, returning the new running statistics.
2. ``apply_batch_norm``: the JAX book chapter's function with its bugs fixed (spot the bug).
3. ``running_mean_after``: the running mean after k steps of a constant batch mean (closed form).
4. ``steps_to_90``: how many steps Keras' default momentum needs to get 90% of the way.
5. ``batch_norm_backward``: the backward pass of train-mode BN, checked against the gradient JAX
   computes (and, in the chapter, against finite differences).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lessonlib.exercises import Case, Exercise, Outcome, judge_with_mistakes


def _f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


# --------------------------------------------------------------------------- 1. batch_norm


def _batch_norm_reference(params, state, x, *, train, momentum=0.9, eps=1e-5):
    x = _f64(x)
    gamma, beta = _f64(params["gamma"]), _f64(params["beta"])
    if x.shape[-1:] != gamma.shape:
        raise ValueError(f"params['gamma'] has shape {gamma.shape}, x has shape {x.shape}")
    if train:
        if x.reshape(-1, x.shape[-1]).shape[0] < 2:
            raise ValueError("batch_norm in train mode needs at least 2 examples")
        axes = tuple(range(x.ndim - 1))
        mean, var = x.mean(axis=axes), x.var(axis=axes)  # biased variance
        new_state = {
            "mean": momentum * _f64(state["mean"]) + (1 - momentum) * mean,
            "var": momentum * _f64(state["var"]) + (1 - momentum) * var,
        }
    else:
        mean, var = _f64(state["mean"]), _f64(state["var"])
        new_state = {"mean": mean, "var": var}
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta
    return y, new_state


def _bn_variant(*, var_ddof=0, state_ddof=0, update_rate=False, eval_batch=False):
    """A wrong batch norm, for naming the learner's mistake in the feedback."""

    def fn(params, state, x, *, train, momentum=0.9, eps=1e-5):
        x = _f64(x)
        gamma, beta = _f64(params["gamma"]), _f64(params["beta"])
        m = 1 - momentum if update_rate else momentum
        if train and x.shape[0] < 2:
            raise ValueError("a batch of one")
        if train or eval_batch:
            mean, var = x.mean(0), x.var(0, ddof=var_ddof)
        else:
            mean, var = _f64(state["mean"]), _f64(state["var"])
        if train:
            new_state = {
                "mean": m * _f64(state["mean"]) + (1 - m) * mean,
                "var": m * _f64(state["var"]) + (1 - m) * x.var(0, ddof=state_ddof or var_ddof),
            }
        else:
            new_state = {"mean": _f64(state["mean"]), "var": _f64(state["var"])}
        return gamma * (x - mean) / np.sqrt(var + eps) + beta, new_state

    return fn


_BN_MISTAKES = {
    "the running variance stores the UNBIASED batch variance (divided by B-1, as PyTorch's "
    "buffer does); store the biased one (jnp.var)": _bn_variant(state_ddof=1),
    "the batch is normalized with the UNBIASED variance (B-1); BN uses the biased one, jnp.var": (
        _bn_variant(var_ddof=1)
    ),
    "momentum is used as the update rate (PyTorch's convention, mean <- (1-m)*mean + m*batch); "
    "here it is the keep rate, mean <- m*mean + (1-m)*batch": _bn_variant(update_rate=True),
    "eval mode normalizes with the batch's statistics; it must use state['mean'] and "
    "state['var']": _bn_variant(eval_batch=True),
}


def _arr(*values, shape=None) -> np.ndarray:
    a = np.asarray(values, np.float32)
    return a.reshape(shape) if shape else a


_X = _arr(1.0, 2.0, 0.0, 3.0, -1.0, 4.0, 5.0, 0.5, 2.0, -2.0, 1.5, 6.0, shape=(4, 3))
_P = {"gamma": _arr(1.0, 2.0, 0.5), "beta": _arr(0.0, -1.0, 3.0)}
_S = {"mean": _arr(0.5, 0.0, 2.0), "var": _arr(1.0, 4.0, 0.25)}
_RNG = np.random.default_rng(3)
_XH = (_RNG.normal(size=(32, 5)) * 3 + 1).astype(np.float32)
_PH = {
    "gamma": _RNG.uniform(0.5, 2, 5).astype(np.float32),
    "beta": _RNG.normal(size=5).astype(np.float32),
}
_SH = {
    "mean": _RNG.normal(size=5).astype(np.float32),
    "var": _RNG.uniform(0.5, 2, 5).astype(np.float32),
}

BATCH_NORM = Exercise(
    id="03.batch_norm",
    name="batch_norm",
    points=3,
    cases=(
        Case((_P, _S, _X), {"train": True}, note="train mode, x of shape (4, 3), momentum 0.9"),
        Case((_P, _S, _X), {"train": False}, note="eval mode: the running statistics"),
        Case((_P, _S, _X[:1]), {"train": True}, note="a batch of one in train mode"),
    ),
    hidden=(
        Case((_PH, _SH, _XH), {"train": True, "momentum": 0.5, "eps": 1e-3}),
        Case((_PH, _SH, _XH[:1]), {"train": False}),
        Case((_PH, _SH, _XH), {"train": False, "momentum": 0.99}),
        Case((_P, _S, _X[:2]), {"train": True, "momentum": 0.0}),
    ),
    reference=_batch_norm_reference,
    judge=judge_with_mistakes(_batch_norm_reference, _BN_MISTAKES, rtol=1e-4, atol=1e-5),
    rtol=1e-4,
    atol=1e-5,
    hint=(
        "Train: normalize with the batch mean and the BIASED variance (jnp.var), update "
        "mean <- momentum*mean + (1-momentum)*batch_mean; eval: use state['mean'], state['var'] "
        "and return state unchanged; a batch of one in train mode raises ValueError."
    ),
)


# --------------------------------------------------------------------------- 2. spot the bug


def _apply_batch_norm_reference(
    x, running_mean, running_var, is_training, gamma, beta, momentum=0.9, epsilon=1e-5
):
    y, new = _batch_norm_reference(
        {"gamma": gamma, "beta": beta},
        {"mean": running_mean, "var": running_var},
        x,
        train=bool(is_training),
        momentum=momentum,
        eps=epsilon,
    )
    return y, new["mean"], new["var"]


_G, _B = _arr(1.5, 1.0, 0.5), _arr(0.1, 0.0, -0.2)

APPLY_BATCH_NORM = Exercise(
    id="03.apply_batch_norm",
    name="apply_batch_norm",
    points=2,
    cases=(
        Case(
            (_X, _S["mean"], _S["var"], True, _G, _B), note="training: returns updated statistics"
        ),
        Case((_X, _S["mean"], _S["var"], False, _G, _B), note="inference on a batch of 4"),
        Case((_X[2:3], _S["mean"], _S["var"], False, _G, _B), note="inference on ONE example"),
    ),
    hidden=(
        Case((_XH, _SH["mean"], _SH["var"], True, _PH["gamma"], _PH["beta"]), {"momentum": 0.8}),
        Case((_XH[:1], _SH["mean"], _SH["var"], False, _PH["gamma"], _PH["beta"])),
        Case((_XH, _SH["mean"], _SH["var"], False, _PH["gamma"], _PH["beta"]), {"epsilon": 0.1}),
    ),
    reference=_apply_batch_norm_reference,
    rtol=1e-4,
    atol=1e-5,
    hint=(
        "At inference normalize with running_mean/running_var (not the batch's statistics), and "
        "return (y, running_mean, running_var) so the updated averages are not lost."
    ),
)


# --------------------------------------------------------------------------- 3. running mean


def _running_mean_after_reference(k, m0, mu, momentum):
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum!r}")
    return momentum**k * m0 + (1 - momentum**k) * mu


RUNNING_MEAN_AFTER = Exercise(
    id="03.running_mean_after",
    name="running_mean_after",
    points=2,
    cases=(
        Case((0, 0.0, 1.0, 0.9), note="k = 0: nothing has happened yet"),
        Case((1, 0.0, 1.0, 0.9), note="one step from 0 towards 1 with momentum 0.9"),
        Case((10, 2.0, -1.0, 0.9), note="k = 10, m0 = 2, mu = -1"),
        Case((-1, 0.0, 1.0, 0.9), note="k = -1"),
        Case((3, 1.0, 0.0, 1.2), note="momentum = 1.2 is outside [0, 1]"),
    ),
    hidden=(
        Case((230, 0.0, 1.0, 0.99)),
        Case((5, 3.0, 3.0, 0.5)),
        Case((7, 1.0, 0.0, 0.0)),
        Case((4, 1.0, 0.0, 1.5)),
        Case((2, 1.0, 0.0, -0.1)),
    ),
    reference=_running_mean_after_reference,
    rtol=1e-6,
    atol=1e-9,
    hint=(
        "Unroll mean <- m*mean + (1-m)*mu: after k steps the old value keeps weight m**k and mu "
        "gets the rest, 1 - m**k. Raise ValueError for k < 0 or momentum outside [0, 1]."
    ),
)


# --------------------------------------------------------------------------- 4. a value


def _steps_to_90_reference():
    # smallest k with 1 - 0.99**k >= 0.9, i.e. 0.99**k <= 0.1
    return math.ceil(math.log(0.1) / math.log(0.99))


def _judge_steps_to_90(case: Case, outcome: Outcome) -> str | None:
    del case
    if outcome.error:
        return outcome.error
    want, got = _steps_to_90_reference(), outcome.value
    if isinstance(got, bool) or not isinstance(got, int | float):
        return f"steps_to_90 must be a number of steps, got {got!r}"
    if got == want - 1 or got == want + 1:
        return f"got {got}: off by one — after k steps the running mean is 1 - 0.99**k; find the FIRST k with 1 - 0.99**k >= 0.9"
    if got == math.ceil(math.log(0.1) / math.log(0.9)):
        return f"got {got}: that is for keep rate 0.9 (PyTorch's momentum=0.1); Keras/Flax's 0.99 keeps 99% per step"
    if got != want:
        return f"got {got}: count the steps until 0.99**k drops to 0.1 or below"
    return None


STEPS_TO_90 = Exercise(
    id="03.steps_to_90",
    name="steps_to_90",
    points=1,
    kind="value",
    cases=(Case(note="steps_to_90"),),
    judge=_judge_steps_to_90,
    hint="The running mean is 1 - 0.99**k after k steps from 0 towards 1; solve 0.99**k <= 0.1.",
)

# --------------------------------------------------------------------------- 5. the backward pass


def _bn_backward(dy, x, gamma, eps=1e-5, *, ddof=0, through_stats=True, through_var=True):
    """Backward pass of y = gamma * xhat + beta, xhat = (x - mean) / sqrt(var + eps), float64.

    ``dx = gamma / (B sqrt(var + eps)) * (B dy - sum(dy) - xhat * sum(dy * xhat))`` (Ioffe &
    Szegedy 2015, section 3); the keyword flags build the usual wrong answers.
    """
    dy, x, gamma = _f64(dy), _f64(x), _f64(gamma)
    if x.shape[0] < 2:
        raise ValueError("the backward pass of train-mode batch norm needs at least 2 examples")
    b = x.shape[0]
    var = x.var(0, ddof=ddof)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - x.mean(0)) * inv
    dbeta, dgamma = dy.sum(0), (dy * xhat).sum(0)
    if not through_stats:
        dx = gamma * inv * dy
    elif not through_var:
        dx = gamma * inv * (dy - dy.mean(0))
    else:
        dx = gamma * inv / b * (b * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


_DY = _arr(0.5, -1.0, 2.0, 1.0, 0.0, -0.5, -2.0, 1.5, 0.25, 0.3, 0.7, -1.2, shape=(4, 3))
_DYH = (_RNG.normal(size=(32, 5))).astype(np.float32)

BATCH_NORM_BACKWARD = Exercise(
    id="03.batch_norm_backward",
    name="batch_norm_backward",
    points=2,
    cases=(
        Case((_DY, _X, _P["gamma"]), note="x and dy of shape (4, 3)"),
        Case((_DY[:1], _X[:1], _P["gamma"]), note="a batch of one must raise ValueError"),
    ),
    hidden=(
        Case((_DYH, _XH, _PH["gamma"]), {"eps": 1e-3}, note="(32, 5), eps = 1e-3"),
        Case((_DY[:2], _X[:2], _P["gamma"]), note="a batch of two"),
    ),
    judge=judge_with_mistakes(
        _bn_backward,
        {
            "the batch mean and variance are treated as constants (dx = gamma*dy/sqrt(var+eps)): "
            "they depend on x too": functools.partial(_bn_backward, through_stats=False),
            "only the mean's dependence on x is kept: the variance depends on x too": (
                functools.partial(_bn_backward, through_var=False)
            ),
            "the unbiased variance (B-1) is used; the forward pass uses the biased one": (
                functools.partial(_bn_backward, ddof=1)
            ),
        },
        rtol=1e-4,
        atol=1e-5,
    ),
    hint=(
        "With xhat = (x - mean)/sqrt(var + eps): dbeta = sum(dy), dgamma = sum(dy*xhat) over the "
        "batch, and dx = gamma/(B*sqrt(var+eps)) * (B*dy - dbeta - xhat*dgamma), because the mean "
        "and the variance depend on every x_i. Raise ValueError for a batch of one."
    ),
)

EXERCISES = [BATCH_NORM, APPLY_BATCH_NORM, RUNNING_MEAN_AFTER, STEPS_TO_90, BATCH_NORM_BACKWARD]
