import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lessonlib import models, optim, transfer


def _xent(model, params, state, x, y):
    logits, _ = model.apply(params, state, x, train=False, hp={})
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def test_layer_index_and_labels_follow_the_layer_lists():
    params, _ = models.mlp([3, 4, 4, 2], batch_norm="after").init(jax.random.key(0))
    index = transfer.layer_index(params)
    assert [layer["w"] for layer in index["dense"]] == [0, 1, 2]
    assert [set(bn.values()) for bn in index["bn"]] == [{0}, {1}]
    labels = transfer.reuse_labels(params, 1)
    assert [layer["w"] for layer in labels["dense"]] == ["reused", "new", "new"]
    assert [set(bn.values()) for bn in labels["bn"]] == [{"reused"}, {"new"}]
    assert jax.tree.structure(labels) == jax.tree.structure(params)


@pytest.mark.parametrize("n", [-1, 3, 1.5])
def test_reuse_labels_rejects_reusing_the_output_layer_or_bad_counts(n):
    params, _ = models.mlp([3, 4, 4, 2]).init(jax.random.key(0))
    with pytest.raises((ValueError, TypeError), match="n_reused"):
        transfer.reuse_labels(params, n)


def test_reuse_layers_takes_the_first_k_and_changes_nothing():
    a, _ = models.mlp([3, 4, 5, 8]).init(jax.random.key(0))
    b, _ = models.mlp([3, 4, 5, 2]).init(jax.random.key(1))
    a_before = jax.tree.map(np.array, a)
    out = transfer.reuse_layers(a, b, 2)
    assert out["dense"][0]["w"] is a["dense"][0]["w"]
    assert out["dense"][1]["b"] is a["dense"][1]["b"]
    assert out["dense"][2]["w"] is b["dense"][2]["w"]
    assert out["dense"] is not a["dense"] and out["dense"] is not b["dense"]
    jax.tree.map(np.testing.assert_array_equal, a, a_before)
    with pytest.raises(ValueError, match="cannot be reused"):
        c, _ = models.mlp([3, 6, 5, 2]).init(jax.random.key(2))
        transfer.reuse_layers(a, c, 1)


def test_b_on_a_reuses_batch_norm_statistics_when_given():
    model_a = models.mlp([3, 4, 8], batch_norm="after")
    params_a, state_a = model_a.init(jax.random.key(0))
    state_a = jax.tree.map(lambda v: v + 1.0, state_a)
    model_b = models.mlp([3, 4, 2], batch_norm="after")
    params, state = transfer.b_on_a(model_b, params_a, 1, key=jax.random.key(1), state_a=state_a)
    assert params["dense"][0]["w"] is params_a["dense"][0]["w"]
    assert params["bn"][0] is params_a["bn"][0]
    jax.tree.map(np.testing.assert_array_equal, state, state_a)
    fresh, _ = model_b.init(jax.random.key(1))
    np.testing.assert_array_equal(params["dense"][1]["w"], fresh["dense"][1]["w"])
    with pytest.raises(TypeError, match="key"):
        transfer.b_on_a(model_b, params_a, 1, key=0)


def test_freezing_reused_layers_matches_optax_and_leaves_them_unchanged():
    """Training B-on-A with the reused layers in a set_to_zero group: our multi_transform and
    optax's give the same parameters, and the reused layers are bit-for-bit A's."""
    x = jax.random.normal(jax.random.key(3), (32, 3))
    y = (x[:, 0] > 0).astype(jnp.int32)
    model_a, model_b = models.mlp([3, 6, 6, 5]), models.mlp([3, 6, 6, 2])
    params_a, _ = model_a.init(jax.random.key(0))
    params, state = transfer.b_on_a(model_b, params_a, 2, key=jax.random.key(1))
    labels = transfer.reuse_labels(params, 2, reused="frozen", new="trainable")
    ours = optim.multi_transform(
        {"frozen": optim.set_to_zero(), "trainable": optim.adam(0.05)}, labels
    )
    ref = optax.multi_transform(
        {"frozen": optax.set_to_zero(), "trainable": optax.adam(0.05)}, labels
    )

    def train(tx, apply_updates):
        @jax.jit
        def step(p, s):
            g = jax.grad(lambda p: _xent(model_b, p, state, x, y))(p)
            u, s = tx.update(g, s, p)
            return apply_updates(p, u), s

        p, s = params, tx.init(params)
        for _ in range(20):
            p, s = step(p, s)
        return p

    p_ours = train(ours, optim.apply_updates)
    with jax.numpy_dtype_promotion("standard"):  # optax is not written for strict promotion
        p_ref = train(ref, optax.apply_updates)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p_ours, p_ref)
    for i in (0, 1):
        jax.tree.map(np.testing.assert_array_equal, p_ours["dense"][i], params_a["dense"][i])
    assert not np.allclose(p_ours["dense"][2]["w"], params["dense"][2]["w"])
    assert _xent(model_b, p_ours, state, x, y) < _xent(model_b, params, state, x, y)


def test_autoencoder_reconstructs_and_hands_its_encoder_to_a_classifier():
    ae = transfer.autoencoder([6, 4, 3])
    params, _ = ae.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (64, 6))
    # apply is the composition of the six dense layers
    h = x
    for i, layer in enumerate(params["dense"]):
        h = h @ layer["w"] + layer["b"][None, :]
        h = jax.nn.relu(h) if i < 3 else h
    np.testing.assert_allclose(ae.apply(params, {}, x)[0], h, rtol=1e-5, atol=1e-6)
    assert ae.loss == "mse"

    def loss(p):
        return 0.5 * jnp.mean((ae.apply(p, {}, x)[0] - x) ** 2)

    tx = optim.adam(1e-2)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return optim.apply_updates(p, u), s

    p, s = params, tx.init(params)
    for _ in range(200):
        p, s = step(p, s)
    assert loss(p) < 0.6 * loss(params)

    clf, _ = models.mlp([6, 4, 3, 2]).init(jax.random.key(2))
    out = transfer.reuse_layers(p, clf, 2)
    assert out["dense"][1]["w"] is p["dense"][1]["w"]
    assert out["dense"][2]["w"].shape == (3, 2)


def test_denoising_autoencoder_adds_noise_only_when_training():
    ae = transfer.autoencoder([5, 3], denoising=True)
    params, _ = ae.init(jax.random.key(0))
    x = jnp.ones((4, 5))
    hp = {"noise": jnp.float32(0.5)}
    clean, _ = ae.apply(params, {}, x, train=False, hp=hp)
    a, _ = ae.apply(params, {}, x, key=jax.random.key(1), train=True, hp=hp)
    b, _ = ae.apply(params, {}, x, key=jax.random.key(2), train=True, hp=hp)
    quiet, _ = ae.apply(
        params, {}, x, key=jax.random.key(1), train=True, hp={"noise": jnp.float32(0.0)}
    )
    assert not np.allclose(a, b) and not np.allclose(a, clean)
    np.testing.assert_allclose(quiet, clean, rtol=1e-6)
    with pytest.raises(ValueError, match="key"):
        ae.apply(params, {}, x, train=True, hp=hp)
