"""Tests for lessonlib._checks, and that every core module uses it: one verdict, one message.

The same bad value — a Python float, a NumPy scalar or a concrete JAX scalar — gets the same
ValueError text from every public function that takes it, and a traced value is skipped
everywhere (a tracer has no value to compare with a bound).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import (
    _checks,
    data,
    layers,
    lr_finder,
    models,
    optim,
    regularization,
    schedules,
    transforms,
)

# The three ways a learner writes -0.1.
MINUS_POINT_ONE = [-0.1, np.float32(-0.1), jnp.float32(-0.1)]


# --------------------------------------------------------------------------- the validators
@pytest.mark.parametrize("value", MINUS_POINT_ONE)
def test_positive_reports_name_bound_and_value(value):
    with pytest.raises(ValueError, match=r"^lr must be > 0, got -0\.1$"):
        _checks.positive("lr", value)


@pytest.mark.parametrize("value", [0.0, np.inf, np.nan])
def test_positive_rejects_zero_inf_and_nan(value):
    with pytest.raises(ValueError, match="lr must be > 0"):
        _checks.positive("lr", value)


def test_bounds_accept_their_edges():
    assert _checks.non_negative("x", 0) == 0
    assert _checks.in_range("p", 0.0, 0.0, 1.0, hi_open=True) == 0.0
    assert _checks.in_range("p", 1.0, 0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\), got 1$"):
        _checks.in_range("p", 1.0, 0.0, 1.0, hi_open=True)
    with pytest.raises(ValueError, match=r"^p must be in \(0, 1\], got 0$"):
        _checks.in_range("p", 0, 0.0, 1.0, lo_open=True)
    with pytest.raises(ValueError, match=r"^x must be >= 0, got -1$"):
        _checks.non_negative("x", -1)
    with pytest.raises(ValueError, match=r"^w must be a finite number, got inf$"):
        _checks.finite("w", np.inf)


@pytest.mark.parametrize("value", [True, "0.1", None, object()])
def test_non_numbers_raise_type_error(value):
    with pytest.raises(TypeError, match="^lr must be a real number"):
        _checks.positive("lr", value)


def test_arrays_with_more_than_one_value_are_not_scalars():
    with pytest.raises(ValueError, match=r"lr must be a scalar, got an array of shape \(2,\)"):
        _checks.positive("lr", jnp.ones(2))
    assert _checks.positive("lr", jnp.ones(())) is not None  # a 0-d array is a scalar


def test_integer_accepts_integers_of_every_kind_and_nothing_else():
    for v in (3, np.int64(3), jnp.int32(3), np.array(3)):
        assert _checks.integer("n", v) == 3 and type(_checks.integer("n", v)) is int
    for v, msg in [
        (2.0, "n must be an integer, got 2"),
        (True, "n must be an integer, got True"),
        ("3", "n must be an integer, got '3'"),
    ]:
        with pytest.raises(ValueError, match=f"^{msg}$"):
            _checks.integer("n", v)
    with pytest.raises(ValueError, match="^n must be a positive integer, got 0$"):
        _checks.positive_int("n", 0)
    with pytest.raises(ValueError, match="^k must be an integer >= 2, got 1$"):
        _checks.integer("k", 1, min_value=2)


def test_integer_needs_a_concrete_value():
    with pytest.raises(TypeError, match="n must be a concrete Python integer"):
        jax.jit(lambda n: _checks.integer("n", n))(3)


def test_whole_accepts_whole_floats_and_skips_tracers():
    assert _checks.whole("patience", 2.0, min_value=0) == 2.0
    assert _checks.whole("patience", jnp.int32(0), min_value=0) is not None
    for bad in (-1, 1.5, np.inf):
        with pytest.raises(ValueError, match="patience must be an integer >= 0"):
            _checks.whole("patience", bad, min_value=0)
    out = jax.jit(lambda n: _checks.whole("total_steps", n, min_value=1) * 1.0)(-2.5)
    assert float(out) == -2.5  # traced: not checked


def test_ordered():
    _checks.ordered("a", 1, "b", 2)
    _checks.ordered("a", 2, "b", 2, strict=False)
    with pytest.raises(ValueError, match=r"^a must be < b \(= 2\), got 2$"):
        _checks.ordered("a", 2, "b", 2)
    with pytest.raises(ValueError, match=r"^a must be <= b \(= 1\), got 2$"):
        _checks.ordered("a", 2.0, "b", np.float32(1.0), strict=False)
    jax.jit(lambda a: _checks.ordered("a", a, "b", 0.0) or a)(5.0)  # traced: skipped


def test_one_of():
    assert _checks.one_of("kind", "he", ["he", "lecun"]) == "he"
    with pytest.raises(ValueError, match=r"^kind must be one of \['he', 'lecun'\], got 'xavier'$"):
        _checks.one_of("kind", "xavier", ["he", "lecun"])
    with pytest.raises(ValueError, match="kind must be one of"):
        _checks.one_of("kind", ["he"], ["he", "lecun"])  # unhashable: a clear error, not a crash


def test_prng_key():
    for key in (jax.random.key(0), jax.random.PRNGKey(0)):
        assert _checks.prng_key("key", key) is key
    with pytest.raises(ValueError, match="key is required"):
        _checks.prng_key("key", None)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        _checks.prng_key("key", 0)


def test_traced_values_are_skipped_by_every_bound():
    @jax.jit
    def everything(v):
        _checks.positive("a", v)
        _checks.non_negative("b", v)
        _checks.finite("c", v)
        _checks.in_range("d", v, 0.0, 1.0)
        _checks.check("e", v, lambda x: False, "never")
        return v

    assert float(everything(-5.0)) == -5.0
    assert _checks.is_traced(jnp.float32(1)) is False


# --------------------------------------------------------------------------- every core module
# (function, argument name, the message for -0.1): one row per public function and argument.
BAD_MINUS_POINT_ONE = [
    (lambda v: optim.sgd(v), "learning_rate must be >= 0, got -0.1"),
    (lambda v: optim.adam(0.1, b1=v), r"b1 must be in \[0, 1\), got -0.1"),
    (lambda v: transforms.clip(v), "max_delta must be >= 0, got -0.1"),
    (lambda v: transforms.add_decayed_weights(v), "weight_decay must be >= 0, got -0.1"),
    (lambda v: schedules.power_decay(v, s=1), "init_value must be > 0, got -0.1"),
    (lambda v: schedules.exponential_decay(0.1, s=v), "s must be > 0, got -0.1"),
    (lambda v: schedules.one_cycle(100, v), "max_value must be > 0, got -0.1"),
    (lambda v: schedules.plateau_init(v), "lr must be > 0, got -0.1"),
    (lambda v: schedules.plateau_update(schedules.plateau_init(0.1), 1.0, min_delta=v), "min_delta must be >= 0, got -0.1"),
    (lambda v: lr_finder.pick_lr(jnp.ones(3), jnp.ones(3), beta=v), r"beta must be in \[0, 1\), got -0.1"),
    (lambda v: layers.dropout(jnp.ones(3), v, key=jax.random.key(0)), r"rate must be in \[0, 1\), got -0.1"),
    (lambda v: layers.batch_norm(*layers.batch_norm_init(2), jnp.ones((4, 2)), train=True, eps=v), "eps must be > 0, got -0.1"),
    (lambda v: data.synthetic_linear(5, 2, seed=0, noise=v), "noise must be >= 0, got -0.1"),
    (lambda v: data.two_moons(10, seed=0, noise=v), "noise must be >= 0, got -0.1"),
    (lambda v: data.spiral(10, seed=0, turns=v), "turns must be > 0, got -0.1"),
    (lambda v: data.toy_2d("moons", 10, seed=0, train_share=v), r"train_share must be in \(0, 1\), got -0.1"),
    (lambda v: regularization.l2_penalty({"w": jnp.ones(2)}, v), "lam must be >= 0, got -0.1"),
    (lambda v: regularization.l1_penalty({"w": jnp.ones(2)}, v), "alpha must be >= 0, got -0.1"),
    (lambda v: regularization.max_norm({"w": jnp.ones((2, 2))}, v), "max_value must be > 0, got -0.1"),
    (lambda v: layers.gaussian_noise(jnp.ones(2), v, key=jax.random.key(0)), "std must be >= 0, got -0.1"),
]  # fmt: skip


@pytest.mark.parametrize("build, message", BAD_MINUS_POINT_ONE)
@pytest.mark.parametrize("value", MINUS_POINT_ONE, ids=["float", "np.float32", "jnp.float32"])
def test_same_bad_value_same_message_in_every_module(build, message, value):
    with pytest.raises(ValueError, match=f"^{message}$"):
        build(value)


@pytest.mark.parametrize(
    "build, message",
    [row for row in BAD_MINUS_POINT_ONE if not row[1].startswith("train_share")],  # fixes a shape
)
def test_traced_bad_value_is_skipped_in_every_module(build, message):
    del message

    @jax.jit
    def traced(v):
        build(v)
        return v

    traced(jnp.float32(-0.1))  # builds under jit without a ValueError


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: models.linear_regression(0), "^d must be a positive integer, got 0$"),
        (lambda: models.mlp([2, 2.5]), r"^sizes\[1\] must be a positive integer, got 2.5$"),
        (lambda: models.mlp([2]), r"^len\(sizes\) must be >= 2"),
        (lambda: models.mlp([2, 2], init="xavier"), "^init must be one of"),
        (lambda: models.variance_scaling(jax.random.key(0), 0, 2), "^fan_in must be a positive"),
        (lambda: layers.batch_norm_init(0), "^num_features must be a positive integer, got 0$"),
        (lambda: data.epoch_batches(jax.random.key(0), 4, 5), r"^batch_size must be <= the number of examples \(= 4\), got 5$"),
        (lambda: data.digits(n_test=5000), r"^n_test must be < the number of images \(= 1797\), got 5000$"),
        (lambda: data.mnist1d(seed=1.5), "^seed must be an integer >= 0, got 1.5$"),
        (lambda: optim.sgd(0.1, momentum=1.0), r"^momentum must be in \[0, 1\), got 1$"),
        (lambda: optim.rmsprop(0.1, initial_scale=-1), "^initial_scale must be >= 0, got -1$"),
        (lambda: optim.switch(2, [optim.identity()] * 2), r"^index must be < len\(transforms\) \(= 2\), got 2$"),
        (lambda: optim.switch(0.5, [optim.identity()] * 2), "^index must be an integer >= 0, got 0.5$"),
        (lambda: lr_finder.smooth_losses(jnp.ones(3), beta=1.0), r"^beta must be in \[0, 1\), got 1$"),
    ],
)  # fmt: skip
def test_other_arguments_use_the_same_message_style(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_schedule_as_learning_rate_is_not_checked_as_a_number():
    opt = optim.sgd(schedules.exponential_decay(0.1, s=10))
    updates, _ = opt.update(jnp.ones(1), opt.init(jnp.zeros(1)))
    assert float(updates[0]) == pytest.approx(-0.1)
