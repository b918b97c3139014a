import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from lessonlib import models, optim
from lessonlib.data import Dataset
from lessonlib.demos import ch09_transfer as demo


def test_split_tasks_holds_out_the_pair_with_fixed_sizes():
    a, b = demo.split_tasks(Dataset(*demo._toy()), (3, 7))
    assert (
        a.x_train.shape == (demo.SIZES["a_train"], 64) and b.x_test.shape[0] == demo.SIZES["b_test"]
    )
    assert set(np.unique(a.y_train)) == set(range(8)) and set(np.unique(b.y_train)) == {0, 1}
    with pytest.raises(ValueError, match="pair"):
        demo.split_tasks(Dataset(*demo._toy()), (3, 3))


def test_layer_rates_freeze_only_reused_layers_during_warm_up():
    assert demo.layer_rates(0, True) == {"warm0": 1.0, "warm1": 1.0, "after0": 1.0, "after1": 1.0}
    r = demo.layer_rates(1, True)
    assert r["warm0"] == 0.0 and r["after0"] == demo.LOW and r["warm1"] == 1.0
    assert demo.layer_rates(2, False)["warm1"] == demo.LOW


def test_transfer_optimizer_freezes_during_warm_up_then_trains_at_the_low_rate():
    params, _ = models.mlp([4, 3, 3, 2]).init(jax.random.key(0))
    grads = jax.tree.map(jnp.ones_like, params)
    hp = {"lr": jnp.float32(0.01), "warm_steps": jnp.float32(2.0)}
    hp |= {k: jnp.float32(v) for k, v in demo.layer_rates(1, True).items()}
    tx = demo.transfer_optimizer(hp)
    state = tx.init(params)
    reference = optim.adam(0.01)  # Adam's first steps with gradient 1 move by the rate
    ref_u, _ = reference.update(grads, reference.init(params), params)
    for step in range(3):
        u, state = tx.update(grads, state, params)
        np.testing.assert_allclose(u["dense"][2]["w"], ref_u["dense"][2]["w"], rtol=1e-5)
        np.testing.assert_allclose(u["dense"][1]["w"], ref_u["dense"][1]["w"], rtol=1e-5)
        scale = 0.0 if step < 2 else demo.LOW
        np.testing.assert_allclose(u["dense"][0]["w"], scale * ref_u["dense"][0]["w"], rtol=1e-5)


def test_mean_ci_matches_the_normal_interval():
    v = np.random.default_rng(0).normal(size=30)
    mean, lo, hi = demo.mean_ci(v)
    ref = scipy.stats.norm.interval(0.95, loc=v.mean(), scale=scipy.stats.sem(v))
    np.testing.assert_allclose((lo, hi), ref, rtol=1e-3)
    assert mean == pytest.approx(v.mean())


def test_panel_looks_up_stored_results_and_titles_the_gain():
    rng = np.random.default_rng(1)
    acc = rng.uniform(0.6, 1.0, size=(len(demo.N_LABELS), 2, 3, 2, 5))
    panel = demo.panel_from(acc, demo.N_LABELS)
    panel.update(source=1, k=1, frozen=False, n=demo.N_LABELS[0])
    gain = acc[0, 1, 1, 0] - acc[0, 0, 0, 0]
    title = panel.fig.axes[0].title.get_text()
    assert f"{gain.mean():+.3f}" in title and f"n = {demo.N_LABELS[0]}" in title
    assert "1 layer(s) of AE, not frozen" in panel.fig.axes[1].title.get_text()
