"""lessonlib.demos.ch06_optimizers: the test functions, trajectories against closed forms, no recompilation."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import optim
from lessonlib.demos import ch06_optimizers as surfaces

HP = {"lr": 0.003, "beta": 0.9, "lr_adaptive": 0.05, "b1": 0.9}


def test_surfaces_have_their_minimum_where_they_say():
    for s in surfaces.SURFACES.values():
        p = jnp.array(s.minimum)
        assert float(s.f(p)) == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(jax.grad(s.f)(p), [0.0, 0.0], atol=1e-6)
        assert s.xlim[0] < s.minimum[0] < s.xlim[1] and s.ylim[0] < s.minimum[1] < s.ylim[1]
        assert s.xlim[0] <= s.start[0] <= s.xlim[1] and s.ylim[0] <= s.start[1] <= s.ylim[1]


def test_quadratic_hessian_is_the_stated_curvatures():
    hess = jax.hessian(surfaces.quadratic)(jnp.array([0.3, -0.2]))
    np.testing.assert_allclose(hess, np.diag(surfaces.QUAD_CURVATURES), rtol=1e-6)


def test_grid_matches_pointwise_evaluation():
    s = surfaces.SURFACES["rosenbrock"]
    X, Y, Z = surfaces.grid(s, n=7)
    assert X.shape == Y.shape == Z.shape == (7, 7)
    i, j = 3, 5
    np.testing.assert_allclose(Z[i, j], s.f(jnp.array([X[i, j], Y[i, j]])), rtol=1e-6)


def test_gd_trajectory_matches_closed_form():
    """On the quadratic, GD multiplies each coordinate by (1 - lr * curvature) per step."""
    lr, steps = 0.0045, 30
    x0 = jnp.array([-1.8, 0.12])
    path, losses = surfaces.trajectory(optim.sgd(lr), surfaces.quadratic, x0, steps)
    k = np.arange(steps + 1)[:, None]
    factors = 1 - lr * np.array(surfaces.QUAD_CURVATURES)
    np.testing.assert_allclose(path, factors**k * np.asarray(x0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(losses, jax.vmap(surfaces.quadratic)(path), rtol=1e-5)
    assert path.shape == (steps + 1, 2) and losses.shape == (steps + 1,)


def test_diverging_run_is_frozen_with_infinite_loss():
    lr = 1.02 * 2 / surfaces.QUAD_CURVATURES[1]  # just past GD's edge of stability
    path, losses = surfaces.trajectory(
        optim.sgd(lr), surfaces.quadratic, jnp.array([0.0, 0.1]), 400
    )
    assert np.isinf(losses[-1])
    assert np.all(np.isfinite(path))
    assert np.abs(path).max() < surfaces.BLOWUP
    first_bad = int(np.argmax(np.isinf(losses)))
    np.testing.assert_array_equal(
        path[first_bad:], np.broadcast_to(path[first_bad], path[first_bad:].shape)
    )


def test_trajectories_match_single_runs_and_optax_convention():
    out = surfaces.trajectories("quadratic", HP, steps=50)
    assert set(out) == set(surfaces.OPTIMIZERS)
    x0 = jnp.array(surfaces.SURFACES["quadratic"].start)
    single, _ = surfaces.trajectory(optim.adam(0.05), surfaces.quadratic, x0, 50)
    np.testing.assert_allclose(out["Adam"][0], single, rtol=1e-5, atol=1e-7)


def test_sliders_do_not_recompile():
    surfaces.trajectories("rosenbrock", HP, steps=40)
    before = surfaces.compile_count()
    for lr, beta in [(0.001, 0.0), (0.006, 0.99), (0.0, 0.5)]:
        out = surfaces.trajectories("rosenbrock", {**HP, "lr": lr, "beta": beta}, steps=40)
        assert out["GD"][0].shape == (41, 2)
    assert surfaces.compile_count() == before


def test_zero_learning_rate_stays_put():
    out = surfaces.trajectories("rosenbrock", {**HP, "lr": 0.0, "lr_adaptive": 0.0}, steps=10)
    start = np.array(surfaces.SURFACES["rosenbrock"].start, np.float32)
    for path, _ in out.values():
        np.testing.assert_array_equal(path, np.broadcast_to(start, path.shape))


def test_docstring_examples_run():
    failures, tried = doctest.testmod(surfaces, verbose=False)
    assert tried > 0 and failures == 0


# --------------------------------------------------------------------------- panels


def test_panels_move_without_recompiling():
    momentum = surfaces.momentum_panel(HP, steps=30)
    paths = surfaces.paths_panel(HP, steps=30)
    assert list(momentum.controls) == ["lr", "beta"]
    assert list(paths.controls) == ["surface", "lr", "beta", "lr_adaptive", "b1"]
    paths.update(surface="rosenbrock")  # compiles the Rosenbrock trajectories once
    before = surfaces.compile_count()
    momentum.update(lr=0.005, beta=0.5)
    paths.update(lr=0.001, lr_adaptive=0.3)
    paths.update(surface="quadratic")
    assert surfaces.compile_count() == before
    assert "η = 0.0050, μ = 0.50" in momentum.fig.axes[0].title.get_text()


def test_trajectories_reject_unknown_names():
    with pytest.raises(ValueError, match="surface must be one of"):
        surfaces.trajectories("bowl", HP)
    with pytest.raises(ValueError, match="must be one of"):
        surfaces.trajectories("quadratic", HP, names=("SGDR",))


def test_rotation_leaves_gd_and_momentum_unchanged_but_not_adam():
    angles = [0.0, np.pi / 6, np.pi / 4]
    outs = [jax.device_get(surfaces.rotated_trajectories(a, HP, steps=200)) for a in angles]
    for name in ("GD", "momentum"):
        for out in outs[1:]:
            np.testing.assert_allclose(out[name][0], outs[0][name][0], atol=1e-4)
    for name in ("RMSProp", "Adam"):
        assert not np.allclose(outs[1][name][0], outs[0][name][0], atol=1e-2)
    axis_aligned = jax.device_get(surfaces.trajectories("quadratic", HP, steps=200))
    np.testing.assert_allclose(outs[0]["Adam"][0], axis_aligned["Adam"][0], atol=1e-5)


def test_rotation_panel_moves_without_compiling():
    panel = surfaces.rotation_panel(HP, steps=50)
    before = surfaces.compile_count()
    panel.update(angle=30.0)
    panel.update(angle=60.0)
    assert surfaces.compile_count() == before


def test_surface_switch_restores_a_kept_background_without_a_full_redraw(monkeypatch):
    """Both surfaces' backgrounds are kept (drawn while the panel warmed itself): a switch draws
    no contour set and no axes, and switching back brings back the very same image."""
    from lessonlib import viz

    paths = surfaces.paths_panel(HP, steps=30)
    start = viz.to_png(paths.fig, draw=False)
    redraws = []
    real_draw = paths.fig.canvas.draw
    monkeypatch.setattr(paths.fig.canvas, "draw", lambda: redraws.append(1) or real_draw())
    paths.update(surface="rosenbrock")
    rosen = viz.to_png(paths.fig, draw=False)
    paths.update(surface="quadratic")
    assert redraws == [] and rosen != start
    assert viz.to_png(paths.fig, draw=False) == start
    # the kept background is what a full redraw of the static figure shows now (same layout, the
    # Rosenbrock level sets and limits)
    paths.update(surface="rosenbrock")
    monkeypatch.undo()
    paths.fig.canvas.draw()  # draws everything but the animated artists
    fresh = np.asarray(paths.fig.canvas.buffer_rgba())
    np.testing.assert_array_equal(np.asarray(paths._backgrounds["rosenbrock"]), fresh)
    assert not np.array_equal(np.asarray(paths._backgrounds["quadratic"]), fresh)
