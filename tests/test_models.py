import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import models


@pytest.mark.parametrize(
    "kind, fan, scale", [("he", 400, 2.0), ("lecun", 400, 1.0), ("glorot", 500, 1.0)]
)
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_variance_scaling(kind, fan, scale, dist):
    w = models.variance_scaling(jax.random.key(0), 400, 600, kind=kind, dist=dist)
    assert w.shape == (400, 600)
    np.testing.assert_allclose(float(jnp.var(w)), scale / fan, rtol=0.03)


def test_variance_scaling_rejects_unknown():
    with pytest.raises(ValueError, match="kind"):
        models.variance_scaling(jax.random.key(0), 2, 2, kind="xavier2")
    with pytest.raises(ValueError, match="dist"):
        models.variance_scaling(jax.random.key(0), 2, 2, dist="cauchy")


def test_mlp_shapes_and_eval_is_deterministic():
    model = models.mlp([5, 8, 8, 3], dropout=True, batch_norm="after")
    params, state = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 5))
    hp = {"dropout": jnp.float32(0.5)}
    out, new_state = model.apply(params, state, x, key=None, train=False, hp=hp)
    assert out.shape == (4, 3)
    out2, _ = model.apply(params, state, x, key=None, train=False, hp=hp)
    np.testing.assert_array_equal(out, out2)
    jax.tree.map(np.testing.assert_array_equal, new_state, state)  # eval leaves buffers alone


def test_mlp_bias_before_bn_is_dropped():
    params, _ = models.mlp([3, 4, 4, 2], batch_norm="before").init(jax.random.key(0))
    assert [set(d) for d in params["dense"]] == [{"w"}, {"w"}, {"w", "b"}]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sizes": [3]}, "sizes"),
        ({"sizes": [3, 0, 2]}, "sizes"),
        ({"sizes": [3, 2], "activation": "relu6"}, "activation"),
        ({"sizes": [3, 2], "batch_norm": "middle"}, "batch_norm"),
    ],
)
def test_mlp_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.mlp(**kwargs)


def test_linear_regression_init_matches_d2l():
    params, state = models.linear_regression(1000).init(jax.random.key(0))
    assert abs(float(jnp.std(params["w"])) - 1.0) < 0.1 and float(params["b"]) == 0.0
    assert state == {}


@pytest.mark.parametrize("width", [1, 5, 16])
def test_masked_width_equals_the_narrow_network(width):
    """Masking units >= width of a 16-unit layer is the width-unit network with sliced weights."""
    wide = models.mlp([4, 16, 16, 3], masked_width=True)
    narrow = models.mlp([4, width, width, 3])
    params, _ = wide.init(jax.random.key(0))
    params["dense"][0]["b"] = jnp.linspace(-1.0, 1.0, 16)  # nonzero biases of masked units too
    d = params["dense"]
    sliced = {
        "dense": [
            {"w": d[0]["w"][:, :width], "b": d[0]["b"][:width]},
            {"w": d[1]["w"][:width, :width], "b": d[1]["b"][:width]},
            {"w": d[2]["w"][:width, :], "b": d[2]["b"]},
        ]
    }
    x = jax.random.normal(jax.random.key(1), (6, 4))
    out_wide, _ = wide.apply(params, {}, x, hp={"width": jnp.float32(width)})
    out_narrow, _ = narrow.apply(sliced, {}, x)
    np.testing.assert_allclose(out_wide, out_narrow, rtol=1e-5, atol=1e-6)

    def loss(p):
        return jnp.sum(wide.apply(p, {}, x, hp={"width": jnp.float32(width)})[0] ** 2)

    grads = jax.grad(loss)(params)
    assert not np.any(np.asarray(grads["dense"][0]["w"][:, width:]))  # masked units never learn
    assert not np.any(np.asarray(grads["dense"][2]["w"][width:, :]))


def test_masked_width_is_traced():
    model = models.mlp([4, 8, 2], masked_width=True)
    params, _ = model.init(jax.random.key(0))
    f = jax.jit(lambda w: model.apply(params, {}, jnp.ones((1, 4)), hp={"width": w})[0])
    f(jnp.float32(2.0))
    f(jnp.float32(7.0))
    assert f._cache_size() == 1
