"""Chapter 03's demo code (lessonlib.demos.ch03_batch_norm) and exercise specs (lessonlib.exercises.ch03)."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import layers
from lessonlib.demos import ch03_batch_norm as bn_demo
from lessonlib.exercises import CheckFailed, ch03, check

# --------------------------------------------------------------------------- momentum conventions


def test_pytorch_update_rate_equals_keep_rate_complement():
    values = [1.0, 3.0, -2.0, 0.5]
    torch_style = bn_demo.running_average(values, momentum=0.1, convention="update")
    keep_style = bn_demo.running_average(values, momentum=0.9, convention="keep")
    np.testing.assert_allclose(torch_style, keep_style, rtol=1e-12)
    # hand-unrolled: 0.1, 0.1*0.9 + 0.3 = 0.39, ...
    np.testing.assert_allclose(torch_style[:2], [0.1, 0.39], rtol=1e-12)


def test_keep_rate_matches_flax_running_mean():
    bn = fnn.BatchNorm(use_running_average=False, momentum=0.99)
    x = jnp.stack([jnp.full((4,), v) + jnp.arange(4.0) for v in (2.0, 5.0, -1.0)])  # (steps, 4)
    variables = bn.init(jax.random.key(0), x[0][:, None])
    ref = []
    for row in x:
        _, upd = bn.apply(variables, row[:, None], mutable=["batch_stats"])
        variables = {"params": variables["params"], "batch_stats": upd["batch_stats"]}
        ref.append(float(upd["batch_stats"]["mean"][0]))
    ours = bn_demo.running_average(np.asarray(x).mean(axis=1), momentum=0.99)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_running_average_validates_arguments():
    with pytest.raises(ValueError, match="convention"):
        bn_demo.running_average([1.0], momentum=0.9, convention="torch")
    with pytest.raises(ValueError, match="momentum"):
        bn_demo.running_average([1.0], momentum=1.1)


# --------------------------------------------------------------------------- ghost batch norm


def test_ghost_bn_with_whole_batch_equals_batch_norm():
    x = jax.random.normal(jax.random.key(0), (16, 3)) * 2.0 + 1.0
    params, state = layers.batch_norm_init(3)
    y, s = bn_demo.ghost_batch_norm(params, state, x, group=16, train=True, momentum=0.8)
    y_ref, s_ref = layers.batch_norm(params, state, x, train=True, momentum=0.8)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s["mean"], s_ref["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["var"], s_ref["var"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("group", [2, 4, 8])
def test_ghost_bn_groups_equal_separate_batches(group):
    x = jax.random.normal(jax.random.key(1), (16, 3)) * 3.0 - 1.0
    params = {"gamma": jnp.array([1.0, 2.0, 0.5]), "beta": jnp.array([0.0, 1.0, -1.0])}
    _, state = layers.batch_norm_init(3)
    y, s = jax.jit(
        lambda g: bn_demo.ghost_batch_norm(params, state, x, group=g, train=True, momentum=0.5)
    )(jnp.float32(group))
    parts = [
        layers.batch_norm(params, state, x[i : i + group], train=True, momentum=0.5)
        for i in range(0, 16, group)
    ]
    np.testing.assert_allclose(y, jnp.concatenate([p[0] for p in parts]), rtol=1e-4, atol=1e-5)
    # running stats move towards the average of the group statistics
    want_mean = np.mean([p[1]["mean"] for p in parts], axis=0)
    want_var = np.mean([p[1]["var"] for p in parts], axis=0)
    np.testing.assert_allclose(s["mean"], want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["var"], want_var, rtol=1e-5, atol=1e-6)


def test_ghost_bn_rejects_bad_group():
    params, state = layers.batch_norm_init(2)
    x = jnp.ones((12, 2))
    for g in (1, 5, 2.5):
        with pytest.raises(ValueError, match="group"):
            bn_demo.ghost_batch_norm(params, state, x, group=g, train=True)


def test_ghost_mlp_eval_is_plain_mlp_eval():
    from lessonlib import models

    sizes = (6, 8, 3)
    ghost, plain = bn_demo.ghost_bn_mlp(sizes), models.mlp(sizes, batch_norm="before")
    params, state = ghost.init(jax.random.key(2))
    x = jax.random.normal(jax.random.key(3), (8, 6))
    a, _ = ghost.apply(params, state, x, train=False, hp={"group": 4.0})
    b, _ = plain.apply(params, state, x, train=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    c, _ = ghost.apply(params, state, x, train=True, hp={"group": 8.0})
    d, _ = plain.apply(params, state, x, train=True)
    np.testing.assert_allclose(c, d, rtol=1e-5, atol=1e-5)
    assert bn_demo.ghost_bn_mlp(sizes) is ghost  # cached: the sweep never recompiles


# --------------------------------------------------------------------------- exercise specs


def _ref_batch_norm(params, state, x, train, momentum=0.9, eps=1e-5):
    return layers.batch_norm(params, state, x, train=train, momentum=momentum, eps=eps)


def test_library_batch_norm_passes_the_exercise():
    check("03.batch_norm", _ref_batch_norm, hidden=True)


def _unbiased(params, state, x, train, momentum=0.9, eps=1e-5):
    if not train:
        return _ref_batch_norm(params, state, x, train, momentum, eps)
    mean, var = jnp.mean(x, 0), jnp.var(x, 0, ddof=1)
    y = params["gamma"][None] * (x - mean[None]) / jnp.sqrt(var[None] + eps) + params["beta"][None]
    return y, {
        "mean": momentum * state["mean"] + (1 - momentum) * mean,
        "var": momentum * state["var"] + (1 - momentum) * var,
    }


def _eval_with_batch_stats(params, state, x, train, momentum=0.9, eps=1e-5):
    y, new = _ref_batch_norm(params, state, x, True, momentum, eps)
    return y, (new if train else state)


def _torch_convention(params, state, x, train, momentum=0.9, eps=1e-5):
    return _ref_batch_norm(params, state, x, train, 1 - momentum, eps)


@pytest.mark.parametrize("wrong", [_unbiased, _eval_with_batch_stats, _torch_convention])
def test_wrong_batch_norms_fail(wrong):
    with pytest.raises(CheckFailed):
        check("03.batch_norm", wrong)


def test_apply_batch_norm_spec():
    def fixed(x, rm, rv, is_training, gamma, beta, momentum=0.9, epsilon=1e-5):
        y, s = layers.batch_norm(
            {"gamma": gamma, "beta": beta},
            {"mean": rm, "var": rv},
            x,
            train=is_training,
            momentum=momentum,
            eps=epsilon,
        )
        return y, s["mean"], s["var"]

    check("03.apply_batch_norm", fixed, hidden=True)

    def book_batch_norm(x, rm, rv, is_training, gamma, beta, momentum=0.9, epsilon=1e-5):
        mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
        if is_training:
            rm = momentum * rm + (1 - momentum) * mean
            rv = momentum * rv + (1 - momentum) * var
        return gamma * (x - mean) / jnp.sqrt(var + epsilon) + beta, rm, rv

    with pytest.raises(CheckFailed, match="inference"):
        check("03.apply_batch_norm", book_batch_norm)


def test_running_mean_after_spec():
    def closed(k, m0, mu, momentum):
        if k < 0 or not 0 <= momentum <= 1:
            raise ValueError("k or momentum")
        return momentum**k * m0 + (1 - momentum**k) * mu

    check("03.running_mean_after", closed, hidden=True)
    # agrees with stepping the library's update k times
    np.testing.assert_allclose(
        bn_demo.running_average([-1.0] * 10, momentum=0.9, start=2.0)[-1],
        ch03._running_mean_after_reference(10, 2.0, -1.0, 0.9),
        rtol=1e-12,
    )
    with pytest.raises(CheckFailed):  # the update-rate convention is a different answer
        check("03.running_mean_after", lambda k, m0, mu, m: closed(k, m0, mu, 1 - m))


def test_steps_to_90_spec():
    avg = bn_demo.running_average([1.0] * 400, momentum=0.99)
    first = int(np.argmax(avg >= 0.9)) + 1
    assert first == ch03._steps_to_90_reference()
    check("03.steps_to_90", first)
    with pytest.raises(CheckFailed):
        check("03.steps_to_90", first - 1)


# --------------------------------------------------------------------------- keys


def test_batch_size_sweep_splits_its_key(monkeypatch):
    """Initial weights and the training key come from split(key(seed)), not key(seed), key(seed+1)."""
    from lessonlib import data, train

    captured = {}

    def fake_sweep(model, params, ds, *, key, **kwargs):
        captured.update(model=model, params=params, key=key)
        return None

    monkeypatch.setattr(train, "sweep", fake_sweep)
    ds = data.digits(seed=0)
    bn_demo.batch_size_sweep(ds, [2, 4], hidden=(8,), batch=8, seed=3)
    init_key, fit_key = jax.random.split(jax.random.key(3))
    want, _ = captured["model"].init(init_key)
    jax.tree.map(np.testing.assert_array_equal, captured["params"], want)
    np.testing.assert_array_equal(
        jax.random.key_data(captured["key"]), jax.random.key_data(fit_key)
    )
    with pytest.raises(ValueError, match="sizes"):
        bn_demo.batch_size_sweep(ds, [3], batch=8)
