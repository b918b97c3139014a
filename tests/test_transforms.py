"""masked, multi_transform and set_to_zero against optax (the independent reference).

The parameter tree is an MLP's (three dense layers and a batch-norm layer); every case runs 60
optimizer steps inside one jitted ``lax.scan`` and compares the whole path of the parameters and
the final optimizer state, leaf by leaf and key path by key path, with optax's.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lessonlib import optim

STEPS = 60


@functools.cache
def _params():
    keys = jax.random.split(jax.random.key(0), 4)
    dense = [
        {"w": jax.random.normal(k, (fi, fo)), "b": jnp.full((fo,), 0.1)}
        for k, fi, fo in zip(keys[:3], (4, 6, 5), (6, 5, 3), strict=True)
    ]
    bn = [{"gamma": jnp.ones(6), "beta": jax.random.normal(keys[3], (6,))}]
    return {"dense": dense, "bn": bn}


def _loss(params, noise):
    terms = jax.tree.map(lambda p, n: jnp.sum(jnp.cos(p) + 0.5 * p**2 + n * p), params, noise)
    return sum(jax.tree.leaves(terms))


@functools.cache
def _noise():
    params = _params()
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    return jax.tree.unflatten(
        treedef,
        [jax.random.normal(k, (STEPS, *p.shape)) for k, p in zip(keys, leaves, strict=True)],
    )


def _run(opt, apply_updates):
    """STEPS steps in one jitted scan: the parameters after every step and the final state."""

    @jax.jit
    def run(params, noise):
        def step(carry, noise_t):
            params, state = carry
            grads = jax.grad(_loss)(params, noise_t)
            updates, state = opt.update(grads, state, params)
            params = apply_updates(params, updates)
            return (params, state), params

        (_, state), path = jax.lax.scan(step, (params, opt.init(params)), noise)
        return path, state

    return run(_params(), _noise())


def _run_optax(opt):
    with jax.numpy_dtype_promotion("standard"):  # optax is not written for strict promotion
        return _run(opt, optax.apply_updates)


def _paths(tree):
    """Key path of every leaf, e.g. ".inner_states['new'].inner_state[0].trace['dense'][2]['w']"."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _assert_same(ours, ref, rtol=2e-5, atol=2e-5):
    (path, state), (ref_path, ref_state) = ours, ref
    assert _paths(path) == _paths(ref_path)
    for x, y in zip(jax.tree.leaves(path), jax.tree.leaves(ref_path), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
    # the state: same leaves at the same key paths (masked-out leaves hold no state in either)
    assert _paths(state) == _paths(ref_state)
    for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _per_leaf_mask():
    """Weights of layers 0 and 2 and the BN scale: an irregular mask, one bool per leaf."""
    return {
        "dense": [{"w": True, "b": False}, {"w": False, "b": False}, {"w": True, "b": True}],
        "bn": [{"gamma": True, "beta": False}],
    }


PREFIX_MASK = {"dense": [True, False, True], "bn": False}  # one bool per layer


def _matrices(tree):
    return jax.tree.map(lambda x: x.ndim == 2, tree)


LABELS = {  # B-on-A: two reused layers (and the BN after the first), a new head
    "dense": [
        {"w": "reused", "b": "reused"},
        {"w": "reused", "b": "reused"},
        {"w": "new", "b": "new"},
    ],
    "bn": [{"gamma": "reused", "beta": "reused"}],
}
PREFIX_LABELS = {"dense": ["layer0", "layer1", "layer2"], "bn": "layer0"}


def _layer_of(tree):
    """Labels from a function: the layer of every leaf, as optax's label_fn examples do."""
    return {
        "dense": [
            jax.tree.map(lambda _, i=i: f"layer{i}", layer) for i, layer in enumerate(tree["dense"])
        ],
        "bn": [jax.tree.map(lambda _: "layer0", tree["bn"][0])],
    }


def _per_layer(lib):
    return {
        "layer0": lib.sgd(0.01),
        "layer1": lib.sgd(0.03, momentum=0.9),
        "layer2": lib.adam(0.02),
    }


CASES = [
    (
        "masked_momentum_per_leaf",
        optim.masked(optim.sgd(0.05, momentum=0.9), _per_leaf_mask()),
        optax.masked(optax.sgd(0.05, momentum=0.9), _per_leaf_mask()),
    ),
    (
        "masked_adam_prefix",
        optim.masked(optim.adam(0.01), PREFIX_MASK),
        optax.masked(optax.adam(0.01), PREFIX_MASK),
    ),
    (
        "masked_callable",
        optim.masked(optim.add_decayed_weights(0.1), _matrices),
        optax.masked(optax.add_decayed_weights(0.1), _matrices),
    ),
    (
        "masked_weight_decay_in_chain",
        optim.chain(
            optim.masked(optim.add_decayed_weights(0.1), _matrices), optim.sgd(0.05, momentum=0.9)
        ),
        optax.chain(
            optax.masked(optax.add_decayed_weights(0.1), _matrices), optax.sgd(0.05, momentum=0.9)
        ),
    ),
    (
        "freeze_by_zeroing_last",
        optim.chain(
            optim.adamw(0.01, weight_decay=0.1),
            optim.masked(optim.set_to_zero(), jax.tree.map(lambda s: s == "reused", LABELS)),
        ),
        optax.chain(
            optax.adamw(0.01, weight_decay=0.1),
            optax.masked(optax.set_to_zero(), jax.tree.map(lambda s: s == "reused", LABELS)),
        ),
    ),
    (
        "multi_transform_freeze",
        optim.multi_transform(
            {"reused": optim.set_to_zero(), "new": optim.sgd(0.05, momentum=0.9)}, LABELS
        ),
        optax.multi_transform(
            {"reused": optax.set_to_zero(), "new": optax.sgd(0.05, momentum=0.9)}, LABELS
        ),
    ),
    (
        "multi_transform_fine_tune",
        optim.multi_transform({"reused": optim.sgd(0.005), "new": optim.adam(0.01)}, LABELS),
        optax.multi_transform({"reused": optax.sgd(0.005), "new": optax.adam(0.01)}, LABELS),
    ),
    (
        "multi_transform_prefix_labels",
        optim.multi_transform(_per_layer(optim), PREFIX_LABELS),
        optax.multi_transform(_per_layer(optax), PREFIX_LABELS),
    ),
    (
        "multi_transform_label_function",
        optim.multi_transform(_per_layer(optim), _layer_of),
        optax.multi_transform(_per_layer(optax), _layer_of),
    ),
    (
        "multi_transform_unused_label",
        optim.multi_transform(
            {"reused": optim.set_to_zero(), "new": optim.sgd(0.05), "spare": optim.adam(1.0)},
            LABELS,
        ),
        optax.multi_transform(
            {"reused": optax.set_to_zero(), "new": optax.sgd(0.05), "spare": optax.adam(1.0)},
            LABELS,
        ),
    ),
    (
        "multi_transform_of_masked",
        optim.multi_transform(
            {"reused": optim.set_to_zero(), "new": optim.masked(optim.sgd(0.05), _matrices)},
            LABELS,
        ),
        optax.multi_transform(
            {"reused": optax.set_to_zero(), "new": optax.masked(optax.sgd(0.05), _matrices)},
            LABELS,
        ),
    ),
]


@pytest.mark.parametrize("name, ours, ref", CASES, ids=[c[0] for c in CASES])
def test_matches_optax(name, ours, ref):
    _assert_same(_run(ours, optim.apply_updates), _run_optax(ref))


def test_state_layout_is_optaxs():
    """MaskedState(inner_state) with MaskedNode() where a leaf is masked out;
    MultiTransformState(inner_states={label: MaskedState})."""
    params = _params()
    state = optim.masked(optim.sgd(0.1, momentum=0.9), PREFIX_MASK).init(params)
    assert isinstance(state, optim.MaskedState)
    trace = state.inner_state[0].trace
    assert trace["bn"] == optim.MaskedNode() and trace["dense"][1] == optim.MaskedNode()
    assert trace["dense"][0]["w"].shape == (4, 6)
    multi = optim.multi_transform({"reused": optim.set_to_zero(), "new": optim.sgd(0.1)}, LABELS)
    state = multi.init(params)
    assert isinstance(state, optim.MultiTransformState) and set(state.inner_states) == {
        "reused",
        "new",
    }
    assert all(isinstance(s, optim.MaskedState) for s in state.inner_states.values())
    ref = optax.multi_transform({"reused": optax.set_to_zero(), "new": optax.sgd(0.1)}, LABELS)
    assert type(state).__name__ == "MultiTransformState" and type(ref.init(params)).__name__ in (
        "PartitionState",
        "MultiTransformState",
    )


def test_masked_out_updates_pass_through_unchanged():
    """Not frozen: the raw gradient comes out, and apply_updates adds it (one step uphill)."""
    grads = jax.tree.map(lambda p: jnp.full_like(p, 2.0), _params())
    tx = optim.masked(optim.sgd(0.1), PREFIX_MASK)
    updates, _ = tx.update(grads, tx.init(_params()), _params())
    np.testing.assert_array_equal(updates["dense"][1]["w"], grads["dense"][1]["w"])
    np.testing.assert_array_equal(updates["bn"][0]["gamma"], grads["bn"][0]["gamma"])
    np.testing.assert_allclose(updates["dense"][0]["w"], -0.2 * np.ones((4, 6)))


def test_frozen_parameters_do_not_move_at_all():
    frozen = jax.tree.map(lambda s: s == "reused", LABELS)
    for tx in (
        optim.multi_transform({"reused": optim.set_to_zero(), "new": optim.adam(0.05)}, LABELS),
        optim.chain(optim.adamw(0.05, weight_decay=0.5), optim.masked(optim.set_to_zero(), frozen)),
    ):
        path, _ = _run(tx, optim.apply_updates)
        for p0, p, f in zip(
            jax.tree.leaves(_params()), jax.tree.leaves(path), jax.tree.leaves(frozen), strict=True
        ):
            moved = bool(jnp.any(p[-1] != p0))
            assert moved != f, "frozen leaves must stay exactly, the others must train"


def test_zeroing_the_gradient_first_lets_weight_decay_move_frozen_leaves():
    """The order matters: set_to_zero before a decaying optimizer only zeroes the gradient."""
    frozen = jax.tree.map(lambda s: s == "reused", LABELS)
    tx = optim.chain(optim.masked(optim.set_to_zero(), frozen), optim.adamw(0.05, weight_decay=0.5))
    path, _ = _run(tx, optim.apply_updates)
    w0, w = _params()["dense"][0]["w"], path["dense"][0]["w"][-1]
    assert bool(jnp.all(jnp.abs(w) < jnp.abs(w0)))  # decayed towards 0 though "frozen"


def test_update_jits_and_matches_eager():
    tx = optim.multi_transform({"reused": optim.set_to_zero(), "new": optim.adam(0.01)}, LABELS)
    params = _params()
    grads = jax.tree.map(jnp.ones_like, params)
    eager = tx.update(grads, tx.init(params), params)
    jitted = jax.jit(tx.update)(grads, jax.jit(tx.init)(params), params)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_wraps_optax_transforms_too():
    ours = optim.multi_transform({"reused": optax.set_to_zero(), "new": optax.sgd(0.05)}, LABELS)
    ref = optax.multi_transform({"reused": optax.set_to_zero(), "new": optax.sgd(0.05)}, LABELS)
    a, b = _run_optax(ours)[0], _run_optax(ref)[0]
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6)


def test_a_label_without_a_transform_is_named():
    tx = optim.multi_transform({"reused": optim.set_to_zero(), "head": optim.sgd(0.1)}, LABELS)
    with pytest.raises(ValueError, match=r"'new'.*transforms has"):
        tx.init(_params())


def test_a_mask_of_the_wrong_structure_is_named():
    tx = optim.masked(optim.sgd(0.1), {"dense": [True, False], "bn": False})  # 2 of 3 layers
    with pytest.raises(ValueError, match="mask must have the structure of the parameters"):
        tx.init(_params())


def test_a_mask_must_be_static_bools():
    params = _params()
    tx = optim.masked(optim.sgd(0.1), jax.tree.map(lambda p: jnp.array(True), params))
    with pytest.raises(TypeError, match="mask leaves must be True or False"):
        tx.init(params)


@pytest.mark.parametrize("bad", [{}, [optim.sgd(0.1)], None])
def test_transforms_must_be_a_dict(bad):
    with pytest.raises(TypeError, match="transforms must be a non-empty dict"):
        optim.multi_transform(bad, LABELS)


def test_set_to_zero_matches_optax():
    grads = jax.tree.map(jnp.ones_like, _params())
    ours, _ = optim.set_to_zero().update(grads, optim.set_to_zero().init(grads))
    ref, _ = optax.set_to_zero().update(grads, optax.set_to_zero().init(grads))
    assert jax.tree.structure(ours) == jax.tree.structure(ref)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(ours))
