import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lessonlib import models

FAN_IN, FAN_OUT = 300, 500  # fan_avg = 400: every mode gives a different variance
N = FAN_IN * FAN_OUT


def _var_tolerance(var: float) -> float:
    """5 standard errors of a sample variance of N draws (kurtosis <= 3 for these distributions)."""
    return 5 * var * math.sqrt((3 - 1) / N)


@pytest.mark.parametrize("dist", models.DISTRIBUTIONS)
@pytest.mark.parametrize("kind", list(models.KINDS))
def test_every_kind_and_distribution_has_variance_scale_over_fan(kind, dist):
    w = models.variance_scaling(jax.random.key(0), FAN_IN, FAN_OUT, kind=kind, dist=dist)
    assert w.shape == (FAN_IN, FAN_OUT) and w.dtype == jnp.float32
    mode, scale = models.KINDS[kind]
    fan = {"fan_in": FAN_IN, "fan_out": FAN_OUT, "fan_avg": (FAN_IN + FAN_OUT) / 2}[mode]
    var = np.var(np.asarray(w, np.float64))
    assert abs(var - scale / fan) < _var_tolerance(scale / fan)
    assert abs(float(jnp.mean(w))) < 5 * math.sqrt(scale / fan / N)


@pytest.mark.parametrize("dist", models.DISTRIBUTIONS)
@pytest.mark.parametrize("mode", models.MODES)
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_scale_and_mode_overrides(dist, mode, scale):
    w = models.variance_scaling(
        jax.random.key(1), FAN_IN, FAN_OUT, dist=dist, scale=scale, mode=mode
    )
    fan = {"fan_in": FAN_IN, "fan_out": FAN_OUT, "fan_avg": (FAN_IN + FAN_OUT) / 2}[mode]
    var = np.var(np.asarray(w, np.float64))
    assert abs(var - scale / fan) < _var_tolerance(scale / fan)


def test_bounds_of_truncated_normal_and_uniform():
    var = 2.0 / FAN_IN  # He
    t = models.variance_scaling(jax.random.key(2), FAN_IN, FAN_OUT, dist="truncated_normal")
    cut = 2 * math.sqrt(var) / models.TRUNCATED_STD
    assert float(jnp.abs(t).max()) <= cut * (1 + 1e-6)
    assert float(jnp.abs(t).max()) > 0.99 * cut  # the cut is reached, not a narrower one
    u = models.variance_scaling(jax.random.key(2), FAN_IN, FAN_OUT, dist="uniform")
    a = math.sqrt(3 * var)
    assert float(jnp.abs(u).max()) <= a * (1 + 1e-6) and float(jnp.abs(u).max()) > 0.999 * a
    n = models.variance_scaling(jax.random.key(2), FAN_IN, FAN_OUT, dist="normal")
    assert float(jnp.abs(n).max()) > cut  # an untruncated normal goes past 2.27 sd


def test_truncated_std_constant_is_the_truncated_normals_std():
    assert models.TRUNCATED_STD == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-12)
    phi, big_phi = stats.norm.pdf(2), stats.norm.cdf(2)
    closed = math.sqrt(1 - 4 * phi / (2 * big_phi - 1))
    assert models.TRUNCATED_STD == pytest.approx(closed, rel=1e-12)


@pytest.mark.parametrize("dist", models.DISTRIBUTIONS)
@pytest.mark.parametrize("mode", models.MODES)
def test_same_draws_as_jax_nn_initializers(dist, mode):
    ref = jax.nn.initializers.variance_scaling(2.0, mode, dist)
    key = jax.random.key(7)
    ours = models.variance_scaling(key, 40, 70, dist=dist, scale=2.0, mode=mode)
    np.testing.assert_allclose(ours, ref(key, (40, 70), jnp.float32), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dist", models.DISTRIBUTIONS)
def test_same_distribution_as_jax_nn_initializers(dist):
    """Independent keys: the two-sample Kolmogorov-Smirnov statistic stays below its 0.1%
    critical value c(0.001) * sqrt((n + m) / (n m)) = 1.95 * sqrt(2 / n)."""
    ours = models.variance_scaling(jax.random.key(3), FAN_IN, FAN_OUT, kind="glorot", dist=dist)
    ref = jax.nn.initializers.variance_scaling(1.0, "fan_avg", dist)
    theirs = ref(jax.random.key(4), (FAN_IN, FAN_OUT), jnp.float32)
    d = stats.ks_2samp(np.ravel(ours), np.ravel(theirs)).statistic
    assert d < 1.95 * math.sqrt(2 / N)
    # and the test has power: a normal vs its truncated version with the same variance differ
    other = "normal" if dist != "normal" else "truncated_normal"
    wrong = jax.nn.initializers.variance_scaling(1.0, "fan_avg", other)
    d_wrong = stats.ks_2samp(np.ravel(ours), np.ravel(wrong(jax.random.key(4), (FAN_IN, FAN_OUT))))
    assert d_wrong.statistic > 1.95 * math.sqrt(2 / N)


def test_keras_he_avg_uniform_from_the_notes():
    """VarianceScaling(scale=2., mode="fan_avg", distribution="uniform"): U(-a, a) with
    a = sqrt(3 * 2 / fan_avg) (Keras's documented rule)."""
    w = models.variance_scaling(
        jax.random.key(5), FAN_IN, FAN_OUT, scale=2.0, mode="fan_avg", dist="uniform"
    )
    a = math.sqrt(6 / 400)
    assert float(w.min()) >= -a and float(w.max()) <= a
    hist, _ = np.histogram(np.asarray(w), bins=10, range=(-a, a))
    assert np.abs(hist / N - 0.1).max() < 5 * math.sqrt(0.1 * 0.9 / N)  # flat


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"kind": "xavier"}, ValueError, "kind must be one of"),
        ({"dist": "cauchy"}, ValueError, "dist must be one of"),
        ({"mode": "fan_sum"}, ValueError, "mode must be one of"),
        ({"scale": 0.0}, ValueError, "scale must be > 0"),
        ({"scale": -2.0}, ValueError, "scale must be > 0"),
        ({"fan_in": 0}, ValueError, "fan_in must be a positive integer"),
        ({"fan_out": 2.5}, ValueError, "fan_out must be a positive integer"),
        ({"key": 0}, TypeError, "key must be a JAX PRNG key"),
        ({"key": None}, ValueError, "key is required"),
    ],
)
def test_variance_scaling_bad_arguments(kwargs, err, match):
    args = {"key": jax.random.key(0), "fan_in": 2, "fan_out": 3} | kwargs
    key, fan_in, fan_out = args.pop("key"), args.pop("fan_in"), args.pop("fan_out")
    with pytest.raises(err, match=match):
        models.variance_scaling(key, fan_in, fan_out, **args)


def test_mlp_init_accepts_a_kind_or_a_function():
    he = models.mlp([30, 40, 10], init="he").init(jax.random.key(0))[0]
    uni = models.mlp(
        [30, 40, 10], init=functools.partial(models.variance_scaling, kind="he", dist="uniform")
    ).init(jax.random.key(0))[0]
    a = math.sqrt(3 * 2 / 30)
    assert (
        float(jnp.abs(uni["dense"][0]["w"]).max()) <= a < float(jnp.abs(he["dense"][0]["w"]).max())
    )
    with pytest.raises(ValueError, match="init must be one of"):
        models.mlp([3, 2], init="xavier")


def test_mlp_gelu_is_jax_nns_default_tanh_form():
    net = models.mlp([4, 5, 2], activation="gelu")
    params, state = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3, 4))
    _, _, (h,) = net.forward(params, state, x)
    z = x @ params["dense"][0]["w"] + params["dense"][0]["b"][None]
    np.testing.assert_allclose(h, jax.nn.gelu(z), rtol=1e-6, atol=1e-7)


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


@pytest.mark.parametrize(
    "kwargs", [{}, {"dropout": True}, {"batch_norm": "before"}, {"batch_norm": "after"}]
)
def test_narrow_computes_the_masked_model_from_the_leading_corners(kwargs):
    """``narrow(units)`` on ``corner(params)`` = the masked full model while width <= units, in
    training mode too (same dropout masks, same batch-norm statistics of the used units)."""
    wide = models.mlp([4, 16, 12, 3], masked_width=True, **kwargs)
    params, state = wide.init(jax.random.key(0))
    if "b" in params["dense"][0]:  # nonzero biases of the masked units too
        params["dense"][0]["b"] = jnp.linspace(-1.0, 1.0, 16)
    narrow = wide.narrow(8)
    assert wide.narrow(8) is narrow and wide.narrow(99) is wide  # one object: one compilation
    shapes = jax.eval_shape(narrow.init, jax.random.key(0))
    small, small_state = models.corner((params, state), shapes)
    assert small["dense"][0]["w"].shape == (4, 8) and small["dense"][1]["w"].shape == (8, 8)
    assert small["dense"][2]["w"].shape == (8, 3)
    x = jax.random.normal(jax.random.key(1), (6, 4))
    hp = {"width": jnp.float32(5.5)} | (
        {"dropout": jnp.float32(0.5)} if "dropout" in kwargs else {}
    )
    for train in (False, True):
        key = jax.random.key(2)
        out_w, st_w = wide.apply(params, state, x, key=key, train=train, hp=hp)
        out_n, st_n = narrow.apply(small, small_state, x, key=key, train=train, hp=hp)
        np.testing.assert_allclose(out_n, out_w, rtol=1e-5, atol=1e-6)
        for a, b in zip(jax.tree.leaves(st_n), jax.tree.leaves(st_w), strict=True):
            np.testing.assert_allclose(a, b[: a.shape[0]], rtol=1e-5, atol=1e-6)
    if kwargs.get("dropout"):  # the dropout mask is drawn at the full width, then cut
        plain = models.mlp([4, 8, 8, 3], masked_width=True, dropout=True)
        out_p, _ = plain.apply(small, {}, x, key=key, train=True, hp=hp)
        assert not np.allclose(out_p, out_n)  # a narrow mlp of its own draws other masks


def test_narrow_is_only_on_masked_models():
    assert models.mlp([4, 8, 2]).narrow is None
    with pytest.raises(ValueError, match="units"):
        models.mlp([4, 8, 2], masked_width=True).narrow(0)


def test_masked_width_is_traced():
    model = models.mlp([4, 8, 2], masked_width=True)
    params, _ = model.init(jax.random.key(0))
    f = jax.jit(lambda w: model.apply(params, {}, jnp.ones((1, 4)), hp={"width": w})[0])
    f(jnp.float32(2.0))
    f(jnp.float32(7.0))
    assert f._cache_size() == 1


# --------------------------------------------------------------------------- layer_stats


def _numpy_backprop(params, x, y):
    """Hidden outputs and dL/dh of a 2-hidden-layer ReLU MLP with mean cross-entropy, by hand."""
    w = [np.asarray(d["w"], np.float64) for d in params["dense"]]
    b = [np.asarray(d["b"], np.float64) for d in params["dense"]]
    x = np.asarray(x, np.float64)
    z1 = x @ w[0] + b[0]
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w[1] + b[1]
    h2 = np.maximum(z2, 0)
    out = h2 @ w[2] + b[2]
    p = np.exp(out - out.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(out.shape[1])[np.asarray(y)]
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    d_out = (p - onehot) / len(y)
    d_h2 = d_out @ w[2].T
    d_h1 = (d_h2 * (z2 > 0)) @ w[1].T
    return loss, [h1, h2], [d_h1, d_h2]


def test_layer_stats_match_a_hand_written_backward_pass():
    net = models.mlp([6, 12, 9, 4])
    params, _ = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (50, 6))
    y = jax.random.randint(jax.random.key(2), (50,), 0, 4)
    stats_ = models.layer_stats(net, params, x, y)
    loss, hs, grads = _numpy_backprop(params, x, y)
    np.testing.assert_allclose(stats_["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(stats_["act_mean"], [h.mean() for h in hs], rtol=1e-5)
    np.testing.assert_allclose(stats_["act_std"], [h.std() for h in hs], rtol=1e-5)
    np.testing.assert_allclose(stats_["grad_std"], [g.std() for g in grads], rtol=1e-4)


def test_layer_stats_do_not_change_the_model_and_do_not_recompile():
    net = models.mlp([6, 8, 8, 3], dropout=True)
    params, state = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (16, 6))
    y = jnp.zeros(16, jnp.int32)
    out, _ = net.apply(params, state, x, hp={"dropout": 0.0})
    out2, _, hidden = net.forward(params, state, x, hp={"dropout": 0.0})
    np.testing.assert_array_equal(out, out2)
    assert [h.shape for h in hidden] == [(16, 8), (16, 8)]
    kw = dict(key=jax.random.key(3), train=True)
    models.layer_stats(net, params, x, y, hp={"dropout": jnp.float32(0.1)}, **kw)
    before = models.layer_stats._cache_size()
    for p in (0.0, 0.3, 0.6):
        s = models.layer_stats(net, params, x, y, hp={"dropout": jnp.float32(p)}, **kw)
    assert models.layer_stats._cache_size() == before
    assert s["act_std"].shape == (2,)


def test_layer_stats_needs_a_forward_and_a_hidden_layer():
    lin = models.linear_regression(3)
    params, _ = lin.init(jax.random.key(0))
    with pytest.raises(TypeError, match="forward"):
        models.layer_stats(lin, params, jnp.ones((2, 3)), jnp.ones(2))
    net = models.mlp([3, 2])
    params, _ = net.init(jax.random.key(0))
    with pytest.raises(ValueError, match="hidden layer"):
        models.layer_stats(net, params, jnp.ones((2, 3)), jnp.zeros(2, jnp.int32))


def test_deep_relu_net_vanishes_with_glorot_and_not_with_he():
    """The chapter's first observation, as a test: 30 ReLU layers of width 64."""
    x = jax.random.normal(jax.random.key(0), (256, 64))
    y = jax.random.randint(jax.random.key(1), (256,), 0, 10)
    std = {}
    for kind in ("glorot", "he"):
        net = models.mlp([64] + [64] * 30 + [10], init=kind)
        params, _ = net.init(jax.random.key(2))
        std[kind] = models.layer_stats(net, params, x, y)["act_std"]
    assert float(std["glorot"][-1] / std["glorot"][0]) < 1e-3  # halves in variance every layer
    assert 0.2 < float(std["he"][-1] / std["he"][0]) < 5


def test_mlp_activation_chosen_by_a_traced_index():
    """activation=(names...): hp["activation"] picks one at run time, one compiled program."""
    names = ("relu", "elu", "tanh")
    multi = models.mlp([5, 7, 7, 3], activation=names)
    params, state = multi.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 5))
    fwd = jax.jit(lambda a: multi.apply(params, state, x, hp={"activation": a})[0])
    for i, name in enumerate(names):
        single = models.mlp([5, 7, 7, 3], activation=name)
        want, _ = single.apply(params, state, x)
        np.testing.assert_allclose(fwd(jnp.float32(i)), want, rtol=1e-6, atol=1e-6)
    assert fwd._cache_size() == 1
    with pytest.raises(ValueError, match="activation"):
        models.mlp([5, 3], activation=("relu", "swish2"))
