"""Chapter 03's graders name the likely mistake and state every requirement in a visible case."""

import pytest

from lessonlib.exercises import evaluate, get
from lessonlib.exercises.ch03 import _BN_MISTAKES, _batch_norm_reference, _bn_variant


def _as_learner(fn):
    def batch_norm(params, state, x, train, momentum=0.9, eps=1e-5):
        return fn(params, state, x, train=train, momentum=momentum, eps=eps)

    return batch_norm


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (_bn_variant(state_ddof=1), "running variance stores the UNBIASED"),
        (_bn_variant(var_ddof=1), "normalized with the UNBIASED"),
        (_bn_variant(update_rate=True), "update rate (PyTorch's convention"),
        (_bn_variant(eval_batch=True), "eval mode normalizes with the batch"),
    ],
)
def test_batch_norm_feedback_names_the_mistake(wrong, named):
    report = evaluate(get("03.batch_norm"), _as_learner(wrong))
    assert not report.passed and named in report.message(), report.message()


def test_batch_norm_reference_passes():
    assert evaluate(get("03.batch_norm"), _as_learner(_batch_norm_reference), hidden=True).passed
    assert len(_BN_MISTAKES) == 4


def test_running_mean_after_momentum_range_is_visible():
    def no_momentum_check(k, m0, mu, momentum):
        if k < 0:
            raise ValueError("k")
        return momentum**k * m0 + (1 - momentum**k) * mu

    report = evaluate(get("03.running_mean_after"), no_momentum_check)
    assert not report.passed and "momentum = 1.2" in report.message()


def _bn_backward_by_jax(dy, x, gamma, eps=1e-5):
    """The reference the spec is tested against: jax.vjp of the library's train-mode batch norm."""
    import jax
    import jax.numpy as jnp

    from lessonlib import layers

    x, gamma, dy = (jnp.asarray(a, jnp.float32) for a in (x, gamma, dy))
    if x.shape[0] < 2:
        raise ValueError("batch of one")
    state = {"mean": jnp.zeros_like(gamma), "var": jnp.ones_like(gamma)}

    def forward(x, gamma, beta):
        return layers.batch_norm({"gamma": gamma, "beta": beta}, state, x, train=True, eps=eps)[0]

    _, vjp = jax.vjp(forward, x, gamma, jnp.zeros_like(gamma))
    return vjp(dy)


def test_batch_norm_backward_spec_agrees_with_jax_and_finite_differences():
    import numpy as np

    from lessonlib.exercises.ch03 import _bn_backward

    assert evaluate(get("03.batch_norm_backward"), _bn_backward_by_jax, hidden=True).passed
    rng = np.random.default_rng(0)
    x, dy, gamma = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)), rng.uniform(0.5, 2, 3)

    def f(x):  # <dy, y(x)> in float64
        xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
        return np.sum(dy * gamma * xhat)

    h, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (f(x + e) - f(x - e)) / (2 * h)
    np.testing.assert_allclose(_bn_backward(dy, x, gamma)[0], fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"through_stats": False}, "treated as constants"),
        ({"through_var": False}, "only the mean's dependence"),
        ({"ddof": 1}, "unbiased variance"),
    ],
)
def test_wrong_backward_passes_fail_with_the_mistake_named(flags, named):
    from lessonlib.exercises.ch03 import _bn_backward

    def wrong(dy, x, gamma, eps=1e-5):
        return _bn_backward(dy, x, gamma, eps, **flags)

    report = evaluate(get("03.batch_norm_backward"), wrong)
    assert not report.passed and named in report.message(), report.message()
