"""Chapter 05's demo module: the traced deep net against a plain forward pass, the helpers against
closed forms, and the panels (every slider value drawable, no recompilation)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import layers, optim, train
from lessonlib.demos import ch05_initialization as demo


def _plain_forward(params, x, depth, activation, init, gain):
    """The deep net written as a loop over the first ``depth`` layers (float64 NumPy)."""
    f = layers.ACTIVATIONS[activation]
    n_in, width = params["w_in"].shape
    std_in = np.asarray(demo.init_std(n_in, width))[demo.PANEL_INITS.index(init)] * gain
    std = np.asarray(demo.init_std(width, width))[demo.PANEL_INITS.index(init)] * gain
    h = np.asarray(f(jnp.asarray(np.asarray(x) @ (np.asarray(params["w_in"]) * std_in))))
    hidden = [h]
    for i in range(1, depth):
        h = np.asarray(f(jnp.asarray(h @ (np.asarray(params["w"][i - 1]) * std), jnp.float32)))
        hidden.append(h)
    return hidden


@pytest.mark.parametrize(
    "depth, activation, init, gain",
    [(1, "relu", "He", 1.0), (3, "tanh", "Glorot", 1.3), (5, "selu", "LeCun", 0.8)],
)
def test_deep_net_equals_a_plain_loop_and_skips_deeper_layers(depth, activation, init, gain):
    net = demo.deep_net(6, 3, depth=5, width=8)
    params, _ = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 6))
    hp = {
        "depth": jnp.int32(depth),
        "activation": jnp.int32(demo.PANEL_ACTIVATIONS.index(activation)),
        "init": jnp.int32(demo.PANEL_INITS.index(init)),
        "gain": jnp.float32(gain),
    }
    _, _, hidden = net.forward(params, {}, x, hp=hp)
    assert hidden.shape == (5, 4, 8)
    want = _plain_forward(params, x, depth, activation, init, gain)
    for i in range(depth):
        np.testing.assert_allclose(hidden[i], want[i], rtol=2e-5, atol=1e-6)
    for i in range(depth, 5):  # layers past the depth pass h through unchanged
        np.testing.assert_array_equal(hidden[i], hidden[depth - 1])


def test_init_std_table():
    std = np.asarray(demo.init_std(300, 100))
    np.testing.assert_allclose(
        std, [1.0, math.sqrt(1 / 300), math.sqrt(1 / 200), math.sqrt(2 / 300)], rtol=1e-6
    )


def test_deep_net_stats_never_recompiles():
    demo.deep_net_stats(30, "relu", "Glorot", 1.0)
    stats_fn = demo._panel_setup()
    before = stats_fn._cache_size()
    for depth, act, init, gain in [(1, "sigmoid", "He", 3.0), (50, "gelu", "N(0, 1)", 0.4)]:
        s = demo.deep_net_stats(depth, act, init, gain)
        assert s["act_std"].shape == (depth,) and s["grad_std"].shape == (depth,)
    assert stats_fn._cache_size() == before


def test_first_epoch_reaching():
    acc = np.array([[0.1, 0.95, 0.97], [0.1, 0.2, 0.3], [0.9, 0.8, 0.95]])
    np.testing.assert_array_equal(demo.first_epoch_reaching(acc, 0.9), [2, 0, 1])


def test_never_active_counts_units_off_on_every_example():
    h = jnp.array([[0.0, 1.0, 0.0, -0.5], [0.0, 0.0, 0.2, -1.0], [0.0, 0.0, 0.0, -2.0]])
    assert float(demo.never_active(h)) == 0.5  # units 0 and 3
    assert float(demo.never_active(jnp.zeros((5, 4)))) == 1.0


def test_experiment_sizes_fit_one_program():
    assert len(demo.RACE_INITIALIZERS) * demo.RACE_SEEDS == demo.DEEP["runs"]
    assert len(demo.THRESHOLDS) + 1 == demo.DEEP["runs"]  # + no clipping
    assert demo.deep_mlp() is demo.deep_mlp()  # the same object: the same compiled program


def test_sgd_clipped_with_inf_is_sgd_and_clips_otherwise():
    """The threshold arrives traced (an hp entry of a sweep), inf included."""
    g = {"w": jnp.array([0.9, 100.0])}
    plain, _ = optim.sgd(0.1).update(g, optim.sgd(0.1).init(g))

    @jax.jit
    def step(clip):
        opt = demo.sgd_clipped({"lr": jnp.float32(0.1), "clip": clip})
        return opt.update(g, opt.init(g))[0]

    np.testing.assert_allclose(step(jnp.float32(jnp.inf))["w"], plain["w"])
    np.testing.assert_allclose(float(jnp.linalg.norm(step(jnp.float32(1.0))["w"])), 0.1, rtol=1e-5)


def test_selu_moments_conditions_and_arguments():
    x = jax.random.normal(jax.random.key(0), (400, 16))
    m, s = demo.selu_moments(x)
    assert m.shape == s.shape == (demo.SELU_DEPTH,)
    assert np.abs(m).max() < 0.15 and np.abs(s - 1).max() < 0.15
    _, s_he = demo.selu_moments(x, init="he")
    assert s_he[-1] > 10
    _, s_alpha = demo.selu_moments(x, dropout="alpha_dropout", rate=0.2)
    assert np.abs(s_alpha - 1).max() < 0.15
    with pytest.raises(ValueError, match="init"):
        demo.selu_moments(x, init="glorot")
    with pytest.raises(ValueError, match="dropout"):
        demo.selu_moments(x, dropout="gaussian")


def test_angle_deg():
    assert demo.angle_deg([1.0, 0.0], [0.0, 2.0]) == pytest.approx(90.0)
    assert demo.angle_deg([0.9, 100.0], [0.9, 1.0]) == pytest.approx(
        math.degrees(math.atan2(100, 0.9) - math.atan2(1.0, 0.9)), rel=1e-9
    )


def test_counting_compilations():
    assert demo._counting_compilations(lambda a: a + 1, 1) == (2, 0)


# --------------------------------------------------------------------------- panels


def _values(widget):
    """Every position of a slider (what the browser tests and the benchmark may visit)."""
    if hasattr(widget, "options"):
        return list(widget.options)
    if type(widget).__name__ == "FloatLogSlider":
        n = round((widget.max - widget.min) / widget.step)
        return [widget.base ** (widget.min + i * widget.step) for i in range(n + 1)]
    return list(range(widget.min, widget.max + 1, max(1, (widget.max - widget.min) // 7)))


def test_vanishing_panel_moves_every_control_without_compiling():
    panel = demo.vanishing_panel(depth=10)
    before = demo._panel_setup()._cache_size()
    for name, control in panel.controls.items():
        for value in _values(control)[:4] + _values(control)[-2:]:
            panel.update(**{name: value})
    assert demo._panel_setup()._cache_size() == before
    assert len(panel.times_ms) > 10


def _fake_dead():
    acts, lrs = demo.DEAD["activations"], np.asarray(demo.DEAD["lrs"], np.float32)
    rng = np.random.default_rng(0)
    shape = (len(acts), len(lrs), demo.DEAD["epochs"] + 1)
    return {
        "activations": acts,
        "lrs": lrs,
        "dead": rng.random(shape),
        "test_acc": rng.random(shape),
    }


def test_dead_units_panel_shows_the_run_of_every_slider_value():
    result = _fake_dead()
    panel = demo.dead_units_panel(result, lr=0.1)
    values = _values(panel.controls["lr"])
    assert len(values) == len(result["lrs"])
    np.testing.assert_allclose(values, result["lrs"], rtol=2e-3)
    for j, value in enumerate(values):
        panel.update(lr=value)
        ys = panel.fig.axes[0].lines[0].get_ydata()
        np.testing.assert_allclose(ys, result["dead"][0, j])


def test_clipping_panel_shows_the_run_of_every_threshold():
    k, epochs, steps = demo.DEEP["runs"], 3, 5
    rng = np.random.default_rng(1)
    history = {
        "batch_loss": rng.random((k, epochs, steps)) + 0.1,
        "train_loss": rng.random((k, epochs)),
        "test_acc": rng.random((k, epochs)),
    }
    history["batch_loss"][-1, 0, 2:] = np.nan  # the unclipped run diverges
    panel = demo.clipping_panel(train.Run(None, None, history))
    values = _values(panel.controls["threshold"])
    np.testing.assert_allclose(values, demo.THRESHOLDS, rtol=2e-3)
    for j, value in enumerate(values):
        panel.update(threshold=value)
        assert f"{demo.THRESHOLDS[j]:.3g}" in panel.fig.axes[1].title.get_text()


def test_initializer_race_uses_every_initializer_once_per_seed(monkeypatch):
    """The race's bookkeeping on a stub of the training call (the real run is in the notebook)."""
    seen = {}

    def fake_train(ds, params, *, lr, clip, key):
        seen["w0"] = params["dense"][0]["w"]
        k = demo.DEEP["runs"]
        acc = np.tile(np.linspace(0.1, 1.0, demo.DEEP["epochs"]), (k, 1))
        acc[:3] = 0.1  # "random N(0, 1)" never learns
        return train.Run(params, {}, {"test_acc": acc, "train_loss": 1 - acc})

    monkeypatch.setattr(demo, "train_deep", fake_train)
    race = demo.initializer_race(demo.standardized_digits())
    w0 = np.asarray(seen["w0"])
    assert w0.shape == (demo.DEEP["runs"], 64, demo.DEEP["width"])
    stds = w0.std(axis=(1, 2)).reshape(len(demo.RACE_INITIALIZERS), demo.RACE_SEEDS)
    np.testing.assert_allclose(stds[0], 1.0, rtol=0.05)  # N(0, 1)
    np.testing.assert_allclose(stds[1], 0.05, rtol=0.05)  # N(0, 0.05^2)
    np.testing.assert_allclose(stds[2], math.sqrt(2 / (64 + 32)), rtol=0.05)  # Glorot
    np.testing.assert_allclose(stds[3], math.sqrt(2 / 64), rtol=0.05)  # He
    assert not np.allclose(w0[0], w0[1])  # different seeds
    assert (race["epochs_to_target"][0] == 0).all() and (race["epochs_to_target"][1:] > 0).all()


def test_start_experiments_runs_the_jobs_in_order_in_one_background_thread(monkeypatch):
    import threading

    calls = []

    def stub(name):
        def job(ds):
            calls.append((name, threading.current_thread().name))
            return name

        return job

    for name in ("initializer_race", "clipping_sweep", "dead_unit_sweep"):
        monkeypatch.setattr(demo, name, stub(name))
    jobs = demo.start_experiments(ds=None)
    assert jobs["race"].result() == "initializer_race"
    assert jobs["clipping"].result() == ("clipping_sweep", 0)
    assert jobs["dead"].result() == "dead_unit_sweep"
    assert [c[0] for c in calls] == ["initializer_race", "clipping_sweep", "dead_unit_sweep"]
    threads = {c[1] for c in calls}
    assert len(threads) == 1 and threading.current_thread().name not in threads


def test_the_first_image_comes_back_after_a_move_and_back(monkeypatch):
    """The image shown when the panel is built is drawn after its warm-up, the way every later one
    is: moving depth away and back brings back exactly that image (the browser test's check; it
    failed when the first image was drawn before warming)."""
    from lessonlib import viz

    shots = []
    monkeypatch.setattr(viz, "display", lambda image: shots.append(image.data))
    panel = demo.vanishing_panel(depth=30, activation="relu", init="Glorot")
    panel.update(depth=31)
    panel.update(depth=30)
    assert len(shots) == 3 and shots[0] == shots[2] and shots[0] != shots[1]
