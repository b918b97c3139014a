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
