"""Tests of ``lessonlib.layers.batch_norm`` and the batch-norm MLPs of ``lessonlib.models``.

References: closed forms (numpy, float64), Flax's ``flax.linen.BatchNorm`` (same keep-rate
momentum convention) and central finite differences for the gradients.
"""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import layers, models


def _rand(seed, shape, *, loc=0.0, scale=1.0, dtype=jnp.float32):
    return (loc + scale * jax.random.normal(jax.random.key(seed), shape)).astype(dtype)


def _params_state(f, seed=0):
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    params = {
        "gamma": 1.0 + 0.3 * jax.random.normal(k1, (f,)),
        "beta": 0.5 * jax.random.normal(k2, (f,)),
    }
    state = {
        "mean": jax.random.normal(k3, (f,)),
        "var": 0.5 + jax.random.uniform(k4, (f,)),
    }
    return params, state


# --------------------------------------------------------------------------- train mode


def test_init_values():
    params, state = layers.batch_norm_init(5)
    np.testing.assert_array_equal(params["gamma"], np.ones(5))
    np.testing.assert_array_equal(params["beta"], np.zeros(5))
    np.testing.assert_array_equal(state["mean"], np.zeros(5))
    np.testing.assert_array_equal(state["var"], np.ones(5))
    assert all(v.dtype == jnp.float32 for v in (*params.values(), *state.values()))


def test_train_mode_standardizes_each_feature():
    x = _rand(1, (64, 7), loc=3.0, scale=5.0) * jnp.arange(1, 8, dtype=jnp.float32)[None, :]
    params, state = layers.batch_norm_init(7)
    y, _ = layers.batch_norm(params, state, x, train=True)
    np.testing.assert_allclose(np.mean(y, axis=0), 0.0, atol=1e-5)
    # biased variance of the output is var/(var+eps), i.e. 1 up to eps
    np.testing.assert_allclose(np.var(np.asarray(y, np.float64), axis=0), 1.0, rtol=1e-4)


def test_train_mode_matches_closed_form_with_gamma_beta():
    x = _rand(2, (32, 4), loc=-1.0, scale=2.0)
    params, state = _params_state(4)
    y, _ = layers.batch_norm(params, state, x, train=True, eps=1e-3)
    xn = np.asarray(x, np.float64)
    mu, var = xn.mean(0), xn.var(0)  # numpy's var is the biased one (ddof=0)
    want = np.asarray(params["gamma"]) * (xn - mu) / np.sqrt(var + 1e-3) + np.asarray(
        params["beta"]
    )
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.mean(y, 0), params["beta"], atol=1e-5)
    np.testing.assert_allclose(
        np.std(np.asarray(y, np.float64), 0), np.abs(params["gamma"]), rtol=1e-3
    )


def test_statistics_over_all_leading_axes():
    x = _rand(3, (4, 5, 3), scale=2.0)
    params, state = _params_state(3)
    y, new = layers.batch_norm(params, state, x, train=True)
    y_flat, new_flat = layers.batch_norm(params, state, x.reshape(20, 3), train=True)
    np.testing.assert_allclose(y.reshape(20, 3), y_flat, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new["mean"], new_flat["mean"], rtol=1e-6)
    np.testing.assert_allclose(new["var"], new_flat["var"], rtol=1e-6)


# --------------------------------------------------------------------------- running averages


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_running_averages_follow_keep_rate_formula(momentum):
    x = _rand(4, (50, 6), loc=2.0, scale=3.0)
    params, state = _params_state(6, seed=4)
    _, new = layers.batch_norm(params, state, x, train=True, momentum=momentum)
    xn = np.asarray(x, np.float64)
    want_mean = momentum * np.asarray(state["mean"]) + (1 - momentum) * xn.mean(0)
    want_var = momentum * np.asarray(state["var"]) + (1 - momentum) * xn.var(0)  # biased
    np.testing.assert_allclose(new["mean"], want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["var"], want_var, rtol=1e-5, atol=1e-6)


def test_running_mean_after_k_steps_closed_form():
    # constant batches: mean_k = m^k mean_0 + (1 - m^k) mu
    x = _rand(5, (16, 3), loc=4.0)
    params, state = layers.batch_norm_init(3)
    step = jax.jit(lambda s: layers.batch_norm(params, s, x, train=True, momentum=0.9)[1])
    for _ in range(25):
        state = step(state)
    mu = np.asarray(x, np.float64).mean(0)
    np.testing.assert_allclose(state["mean"], (1 - 0.9**25) * mu, rtol=1e-5)


def test_running_stats_carry_no_gradient():
    x = _rand(6, (10, 2))
    params, state = _params_state(2)

    def f(x):
        _, new = layers.batch_norm(params, state, x, train=True)
        return jnp.sum(new["mean"]) + jnp.sum(new["var"])

    np.testing.assert_array_equal(jax.grad(f)(x), np.zeros((10, 2)))


# --------------------------------------------------------------------------- eval mode


def test_eval_mode_uses_running_statistics_and_keeps_state():
    x = _rand(7, (9, 4), loc=1.0, scale=2.0)
    params, state = _params_state(4, seed=7)
    y, new = layers.batch_norm(params, state, x, train=False, eps=1e-5)
    want = (np.asarray(x, np.float64) - np.asarray(state["mean"])) / np.sqrt(
        np.asarray(state["var"], np.float64) + 1e-5
    ) * np.asarray(params["gamma"]) + np.asarray(params["beta"])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert new is state


def test_eval_mode_is_per_example_and_deterministic():
    x = _rand(8, (12, 3), scale=3.0)
    params, state = _params_state(3, seed=8)
    y_all, _ = layers.batch_norm(params, state, x, train=False)
    y_again, _ = layers.batch_norm(params, state, x, train=False)
    np.testing.assert_array_equal(y_all, y_again)
    # one example alone (even a 1-D vector) gives the same output as inside the batch
    y_one, _ = layers.batch_norm(params, state, x[5], train=False)
    np.testing.assert_allclose(y_one, y_all[5], rtol=1e-6)
    y_sub, _ = layers.batch_norm(params, state, x[:2], train=False)
    np.testing.assert_allclose(y_sub, y_all[:2], rtol=1e-6)


def test_train_mode_output_depends_on_the_rest_of_the_batch():
    x = _rand(9, (12, 3))
    params, state = _params_state(3)
    y_all, _ = layers.batch_norm(params, state, x, train=True)
    y_half, _ = layers.batch_norm(params, state, x[:6], train=True)
    assert not np.allclose(y_all[:6], y_half)


# --------------------------------------------------------------------------- Flax reference


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_agrees_with_flax_batchnorm(momentum):
    f = 5
    params, state = _params_state(f, seed=10)
    variables = {
        "params": {"scale": params["gamma"], "bias": params["beta"]},
        "batch_stats": {"mean": state["mean"], "var": state["var"]},
    }
    ref_train = fnn.BatchNorm(use_running_average=False, momentum=momentum, epsilon=1e-5)
    ref_eval = fnn.BatchNorm(use_running_average=True, momentum=momentum, epsilon=1e-5)
    ours_state = state
    for step in range(4):  # several steps so the running averages compound
        x = _rand(20 + step, (32, f), loc=float(step), scale=1.0 + step)
        y_ref, mutated = ref_train.apply(variables, x, mutable=["batch_stats"])
        y, ours_state = layers.batch_norm(params, ours_state, x, train=True, momentum=momentum)
        np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
        variables = {"params": variables["params"], "batch_stats": mutated["batch_stats"]}
        np.testing.assert_allclose(ours_state["mean"], mutated["batch_stats"]["mean"], rtol=1e-5)
        np.testing.assert_allclose(
            ours_state["var"], mutated["batch_stats"]["var"], rtol=1e-4, atol=1e-6
        )
    x = _rand(30, (7, f), scale=2.0)
    y_ref = ref_eval.apply(variables, x)
    y, _ = layers.batch_norm(params, ours_state, x, train=False, momentum=momentum)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- gradients


def _central_diff(f, x, h):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(jnp.asarray(x + e)) - f(jnp.asarray(x - e))) / (2 * h)
    return g


@pytest.mark.parametrize("train", [True, False])
def test_gradient_matches_finite_differences_float64(train):
    with jax.enable_x64(True):
        x = _rand(40, (6, 3), loc=1.0, scale=2.0, dtype=jnp.float64)
        p32, s32 = _params_state(3, seed=41)
        params = jax.tree.map(lambda v: v.astype(jnp.float64), p32)
        state = jax.tree.map(lambda v: v.astype(jnp.float64), s32)
        w = _rand(42, (6, 3), dtype=jnp.float64)  # a generic loss: sum(w * y**2) + sum(y)

        def loss(x, gamma, beta):
            y, _ = layers.batch_norm(
                {"gamma": gamma, "beta": beta}, state, x, train=train, eps=1e-3
            )
            return jnp.sum(w * y**2) + jnp.sum(jnp.sin(y))

        grads = jax.grad(loss, argnums=(0, 1, 2))(x, params["gamma"], params["beta"])
        fd = (
            _central_diff(lambda v: loss(v, params["gamma"], params["beta"]), x, 1e-6),
            _central_diff(lambda v: loss(x, v, params["beta"]), params["gamma"], 1e-6),
            _central_diff(lambda v: loss(x, params["gamma"], v), params["beta"], 1e-6),
        )
        for g, want in zip(grads, fd, strict=True):
            assert g.dtype == jnp.float64
            np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)


def test_gradient_wrt_x_sums_to_zero_per_feature_in_train_mode():
    # y is invariant to shifting a feature by a constant, so dL/dx sums to 0 over the batch
    x = _rand(43, (16, 4), scale=2.0)
    params, state = _params_state(4)
    g = jax.grad(lambda x: jnp.sum(layers.batch_norm(params, state, x, train=True)[0] ** 3))(x)
    np.testing.assert_allclose(np.sum(np.asarray(g, np.float64), axis=0), 0.0, atol=1e-3)


# --------------------------------------------------------------------------- errors and tracing


def test_batch_of_one_in_train_mode_raises():
    params, state = layers.batch_norm_init(3)
    with pytest.raises(ValueError, match="at least 2 examples"):
        layers.batch_norm(params, state, jnp.ones((1, 3)), train=True)
    with pytest.raises(ValueError, match="at least 2 examples"):
        layers.batch_norm(params, state, jnp.ones(3), train=True)
    y, _ = layers.batch_norm(params, state, jnp.ones((1, 3)), train=False)  # eval: fine
    assert y.shape == (1, 3)


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"gamma": jnp.ones(4)}, "params['gamma']"),
        ({"beta": jnp.zeros((3, 1))}, "params['beta']"),
        ({"mean": jnp.zeros(2)}, "state['mean']"),
        ({"var": jnp.ones(5)}, "state['var']"),
    ],
)
def test_shape_mismatch_raises_naming_the_argument(bad, name):
    params, state = layers.batch_norm_init(3)
    params = {k: bad.get(k, v) for k, v in params.items()}
    state = {k: bad.get(k, v) for k, v in state.items()}
    for train in (True, False):
        with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
            layers.batch_norm(params, state, jnp.ones((8, 3)), train=train)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"momentum": 1.5}, "momentum"), ({"momentum": -0.1}, "momentum"), ({"eps": 0.0}, "eps")],
)
def test_bad_hyperparameters_raise(kwargs, name):
    params, state = layers.batch_norm_init(3)
    with pytest.raises(ValueError, match=name):
        layers.batch_norm(params, state, jnp.ones((8, 3)), train=True, **kwargs)


def test_traced_momentum_under_jit_matches_python_float():
    x = _rand(50, (10, 2), loc=1.0)
    params, state = _params_state(2)
    f = jax.jit(lambda m: layers.batch_norm(params, state, x, train=True, momentum=m)[1])
    got = f(jnp.float32(0.7))
    want = layers.batch_norm(params, state, x, train=True, momentum=0.7)[1]
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-6)
    np.testing.assert_allclose(got["var"], want["var"], rtol=1e-6)


# --------------------------------------------------------------------------- in the MLP


@pytest.mark.parametrize("where", ["before", "after"])
def test_mlp_batch_norm_structure_and_state(where):
    model = models.mlp([5, 8, 6, 3], batch_norm=where)
    params, state = model.init(jax.random.key(0))
    assert [p["gamma"].shape for p in params["bn"]] == [(8,), (6,)]
    assert [s["mean"].shape for s in state["bn"]] == [(8,), (6,)]
    # no bias before BN (BN's beta replaces it); the output layer keeps its bias
    has_bias = ["b" in layer for layer in params["dense"]]
    assert has_bias == ([False, False, True] if where == "before" else [True, True, True])
    x = _rand(60, (16, 5), loc=2.0)
    out, new = model.apply(params, state, x, train=True, hp={"bn_momentum": 0.8})
    assert out.shape == (16, 3)
    # the first BN layer's running mean follows the formula with the hp momentum
    h = np.asarray(x @ params["dense"][0]["w"], np.float64)
    if where == "after":
        h = np.maximum(h + np.asarray(params["dense"][0]["b"]), 0.0)
    np.testing.assert_allclose(new["bn"][0]["mean"], 0.2 * h.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new["bn"][0]["var"], 0.8 + 0.2 * h.var(0), rtol=1e-4, atol=1e-6)
    # eval mode: state unchanged, outputs per example
    out_eval, same = model.apply(params, new, x, train=False)
    one, _ = model.apply(params, new, x[:1], train=False)
    np.testing.assert_allclose(one, out_eval[:1], rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mlp_before_matches_manual_composition():
    model = models.mlp([4, 6, 2], batch_norm="before")
    params, state = model.init(jax.random.key(1))
    x = _rand(61, (10, 4))
    out, _ = model.apply(params, state, x, train=True)
    h, _ = layers.batch_norm(
        params["bn"][0], state["bn"][0], x @ params["dense"][0]["w"], train=True
    )
    want = jax.nn.relu(h) @ params["dense"][1]["w"] + params["dense"][1]["b"][None, :]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_integer_input_keeps_the_momentum():
    # integer data must not truncate momentum 0.9 to 0 (which would replace the running averages)
    params, state = layers.batch_norm_init(2)
    x = jnp.array([[1, 2], [3, 8]], jnp.int32)
    y, new = layers.batch_norm(params, state, x, train=True, momentum=0.9)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(new["mean"], [0.2, 0.5], rtol=1e-6)
    np.testing.assert_allclose(new["var"], [0.9 + 0.1 * 1.0, 0.9 + 0.1 * 9.0], rtol=1e-6)
    y_float, _ = layers.batch_norm(params, state, x.astype(jnp.float32), train=True)
    np.testing.assert_allclose(y, y_float, rtol=1e-6)


@pytest.mark.parametrize("n", [0, -2, 2.5, True])
def test_init_rejects_a_feature_count_that_is_not_a_positive_int(n):
    with pytest.raises(ValueError, match="num_features"):
        layers.batch_norm_init(n)


@pytest.mark.parametrize("shape", [(), (4, 0)])
def test_x_without_features_is_a_value_error(shape):
    params, state = layers.batch_norm_init(3)
    with pytest.raises(ValueError, match="feature"):
        layers.batch_norm(params, state, jnp.zeros(shape, jnp.float32), train=True)
