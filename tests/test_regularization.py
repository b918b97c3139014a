import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import models
from lessonlib import regularization as reg


def _params():
    return {
        "dense": [{"w": jnp.array([[1.0, -2.0], [3.0, 0.0]]), "b": jnp.array([5.0, 5.0])}],
        "bn": [{"gamma": jnp.ones(2), "beta": jnp.ones(2)}],
    }


def test_penalties_skip_biases_and_bn():
    p = _params()
    np.testing.assert_allclose(reg.l2_penalty(p, 2.0), 2.0 / 2 * 14.0)
    np.testing.assert_allclose(reg.l1_penalty(p, 0.5), 0.5 * 6.0)
    np.testing.assert_allclose(reg.weight_norm(p), np.sqrt(14.0))


def test_penalty_of_a_bare_array():
    np.testing.assert_allclose(reg.l2_penalty(jnp.array([3.0, 4.0]), 1.0), 12.5)


def test_l2_gradient_is_weight_decay():
    p = _params()
    g = jax.grad(reg.l2_penalty)(p, 3.0)
    np.testing.assert_allclose(g["dense"][0]["w"], 3.0 * p["dense"][0]["w"])
    np.testing.assert_allclose(g["dense"][0]["b"], 0.0)


def test_mask_matches_mlp_structure():
    params, _ = models.mlp([3, 4, 2], batch_norm="before").init(jax.random.key(0))
    mask = reg.weight_mask(params)
    assert mask["dense"][0] == {"w": True} and mask["dense"][1] == {"w": True, "b": False}
    assert mask["bn"][0] == {"gamma": False, "beta": False}


def test_max_norm_projects_columns():
    w = jnp.array([[3.0, 0.1], [4.0, 0.1]])
    out = reg.max_norm({"w": w, "b": jnp.array([10.0, 10.0])}, 1.0)
    np.testing.assert_allclose(
        jnp.linalg.norm(out["w"], axis=0), [1.0, np.hypot(0.1, 0.1)], rtol=1e-6
    )
    np.testing.assert_allclose(out["b"], 10.0)
    with pytest.raises(ValueError, match="max_value"):
        reg.max_norm(w, 0.0)
