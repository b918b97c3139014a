"""Chapter 04's demo code (lessonlib.demos.ch04_early_stopping) against independent references:
numpy's eigendecomposition for gradient descent's filter factors, scikit-learn's Ridge, lstsq for
noise-free least squares, and the panels' redraws (no compilation after the warm-up)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from lessonlib import stopping, train
from lessonlib.demos import ch04_early_stopping as demo


def _problem(n=12, d=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n)


def test_source1_rule_as_printed():
    assert demo.source1_early_stopping(0.3, 2, 0.4, 1) == (0.3, 0, False)
    assert demo.source1_early_stopping(0.4, 2, 0.4, 1) == (0.4, 2, True)  # a tie is no improvement
    assert demo.source1_stop_epoch([3.0, 2.0, 2.5, 2.2, 1.0], patience=2) == 3
    assert demo.source1_stop_epoch([3.0, 2.0, 1.0], patience=1) == -1


def test_source1_stops_where_keras_does_for_positive_patience():
    rng = np.random.default_rng(1)
    for _ in range(50):
        values = rng.integers(0, 8, 15) / 4
        p = int(rng.integers(1, 5))
        stop, _ = train.early_stopping(jnp.asarray(values), patience=p)
        assert demo.source1_stop_epoch(values, p) == int(stop)


def test_gradient_descent_filter_factors():
    X, y = _problem()
    s, U = np.linalg.eigh(X.T @ X / X.shape[0])
    w_star = np.linalg.pinv(X) @ y
    for eta, tau in [(0.01, 1), (0.01, 37), (0.002, 400)]:
        w = demo.gd_weights(X, y, eta=eta, tau=tau)
        np.testing.assert_allclose(w, U @ (demo.gd_filter(s, eta, tau) * (U.T @ w_star)), atol=1e-9)


def test_ridge_matches_scikit_learn():
    X, y = _problem()
    for lam in (0.1, 2.0, 30.0):
        ref = Ridge(alpha=lam * X.shape[0], fit_intercept=False).fit(X, y).coef_
        np.testing.assert_allclose(demo.ridge_weights(X, y, lam), ref, rtol=1e-8, atol=1e-10)
        s = np.linalg.eigvalsh(X.T @ X / X.shape[0])
        np.testing.assert_allclose(demo.ridge_filter(s, lam), s / (s + lam))


def test_noisy_least_squares():
    X, y = _problem(n=40, d=5)
    w0 = demo.noisy_least_squares(jax.random.key(0), X, y, 0.0, copies=3)
    np.testing.assert_allclose(w0, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8)
    sigma = 1.0
    w = demo.noisy_least_squares(jax.random.key(1), X, y, sigma, copies=4000)
    ridge_sq, ridge_lin = demo.ridge_weights(X, y, sigma**2), demo.ridge_weights(X, y, 0.3)
    assert np.linalg.norm(w - ridge_sq) < 0.2 * np.linalg.norm(w - ridge_lin)


def test_noisy_mlp_noise_only_in_training_and_needs_a_key():
    model = demo.noisy_mlp([4, 8, 3])
    params, state = model.init(jax.random.key(0))
    x = jnp.ones((5, 4))
    hp = {"noise": jnp.float32(0.7)}
    clean, _ = model.apply(params, state, x, hp=hp)
    quiet, _ = model.apply(params, state, x, key=jax.random.key(1), train=True, hp={"noise": 0.0})
    noisy, _ = model.apply(params, state, x, key=jax.random.key(1), train=True, hp=hp)
    np.testing.assert_allclose(quiet, clean, rtol=1e-6)
    assert not np.allclose(noisy, clean)
    with pytest.raises(ValueError, match="key"):
        model.apply(params, state, x, train=True, hp=hp)


def test_unit_norms_are_column_norms():
    w = np.array([[3.0, 0.0], [4.0, 1.0]])
    np.testing.assert_allclose(demo.unit_norms(w), [5.0, 1.0])


def _history(epochs=30):
    e = np.arange(epochs, dtype=np.float32)
    val = (e - 12) ** 2 / 100 + 1.0
    return {"val_loss": val, "test_loss": val + 0.1, "test_acc": 0.5 + e / 100}


def test_stopping_panel_follows_the_rule_and_compiles_nothing_after_warming():
    panel = demo.stopping_panel(_history(), patience=3)
    compiled = stopping._scan_jit._cache_size()
    for p, d in [(0, 0.0), (5, 0.01), (20, 0.05), (3, 0.0)]:
        panel.update(patience=p, min_delta=d)
        stop, best = stopping.early_stopping(_history()["val_loss"], patience=p, min_delta=d)
        where = f"stops after epoch {int(stop)}" if int(stop) >= 0 else "never stops"
        want = f"patience {p}, min_delta {d:.4f}: {where}; restores {int(best)}"
        assert panel.fig.axes[0].get_title() == want
    assert stopping._scan_jit._cache_size() == compiled


def test_live_fit_reads_every_strength_and_compiles_once():
    """Every strength changes the run, and no setting after the first compiles anything."""
    base = demo.live_fit()
    before = train.compile_count()
    runs = {
        "sigma_h": demo.live_fit(sigma_h=1.0),
        "shift": demo.live_fit(shift=6.0),
        "scale": demo.live_fit(scale=0.3),
        "r": demo.live_fit(r=0.5),
    }
    assert train.compile_count() == before
    for name, run in runs.items():
        assert not np.allclose(run.history["train_loss"], base.history["train_loss"]), name
    # a radius above every unit's norm is no constraint: the same run as none at all
    top = max(float(demo.unit_norms(w["w"]).max()) for w in base.params["dense"])
    loose = demo.live_fit(r=2 * top)
    np.testing.assert_allclose(loose.history["train_loss"], base.history["train_loss"], rtol=1e-5)
    capped = runs["r"].params["dense"]
    assert max(float(demo.unit_norms(w["w"]).max()) for w in capped) <= 0.5 * (1 + 1e-5)
    with pytest.raises(ValueError, match="scale"):
        demo.live_fit(scale=1.0)
    with pytest.raises(ValueError, match="sigma_h"):
        demo.live_fit(sigma_h=-0.1)


def test_live_fit_is_train_fit_with_the_augmentation_in_the_engine():
    """The panel's run is the engine's: shift 0 and scale 0 leave every batch as it is."""
    model, params = demo.live_model()
    ds = demo.live_data()
    plain = train.fit(
        model, params, ds, key=jax.random.key(demo.LIVE["seed"] + 1), hp={"lr": demo.LIVE["lr"],
        "noise": 0.0}, epochs=demo.LIVE["epochs"], batch_size=demo.LIVE["batch_size"],
        optimizer=demo.adam,
    )  # fmt: skip
    np.testing.assert_allclose(
        demo.live_fit().history["test_loss"], plain.history["test_loss"], rtol=1e-4
    )


def test_retrain_panel_shows_the_run_of_its_sliders_and_compiles_nothing():
    panel = demo.retrain_panel()
    before = train.compile_count()
    panel.update(sigma_h=1.0, max_shift=4.0, max_scale=0.2)
    run = demo.live_fit(sigma_h=1.0, shift=4.0, scale=0.2)
    assert panel.fig.axes[1].get_title() == (
        f"val acc {run.history['test_acc'][-1]:.3f}, gap train - val {demo.gap(run):.3f}"
    )
    line = [a for a in panel.fig.axes[0].get_lines() if a.get_label() == "validation"][0]
    np.testing.assert_allclose(line.get_ydata(), run.history["test_loss"], rtol=1e-6)
    assert train.compile_count() == before


def test_max_norm_panel_projects_the_trained_layer():
    panel = demo.max_norm_panel(r=1.0)
    norms = demo.unit_norms(demo.live_fit().params["dense"][0]["w"])
    for r in (0.5, 2.0):
        panel.update(r=r)
        want = f"r = {r:.3g}: {int(np.sum(norms > r))} of {norms.size} units rescaled"
        assert panel.fig.axes[0].get_title() == want
        after = [a for a in panel.fig.axes[0].get_lines() if a.get_label() == "projected"][0]
        np.testing.assert_allclose(
            after.get_ydata(), np.sort(np.minimum(norms, r))[::-1], rtol=1e-5
        )
