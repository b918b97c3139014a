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
