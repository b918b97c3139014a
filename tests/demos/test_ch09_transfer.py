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
    assert f"helps in {np.mean(gain > 0):.0%}" in title
    variant = [line for line in panel.fig.axes[1].lines if line.get_label() == "chosen variant"]
    np.testing.assert_allclose(variant[0].get_ydata(), acc[:, 1, 1, 0].mean(-1))


def _write_idx(path, array):
    """An IDX file as (Fashion-)MNIST ships it: 0, 0, dtype 0x08 (uint8), rank, sizes, data."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    path.write_bytes(header + array.tobytes())


def _fake_fashion(folder, per_class_train=40, per_class_test=20):
    """Ten classes of 28x28 uint8 images: class c is bright in column band c, plus noise."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for split, per in (("train", per_class_train), ("t10k", per_class_test)):
        y = np.repeat(np.arange(10), per)
        rng.shuffle(y)
        x = rng.integers(0, 60, size=(y.size, 28, 28))
        for i, c in enumerate(y):
            x[i, :, 2 * c : 2 * c + 3] += 150
        _write_idx(folder / f"{split}-images-idx3-ubyte", x)
        _write_idx(folder / f"{split}-labels-idx1-ubyte", y)


def test_fashion_part_skips_with_a_message_when_the_files_are_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSONLIB_DATA", str(tmp_path))
    arrays, message = demo.fashion_experiment()
    assert arrays is None
    assert str(tmp_path / "fashion-mnist") in message and "skipped" in message
    assert "never downloads" in message


def test_fashion_part_runs_the_notes_split_on_idx_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LESSONLIB_DATA", str(tmp_path))
    _fake_fashion(tmp_path / "fashion-mnist")
    small = {
        "pair": (0, 2), "n": 50, "seeds": 2, "epochs": 1,
        "sizes": {"a_train": 256, "a_test": 128, "b_pool": 60, "b_test": 40},
    }  # fmt: skip
    arrays, message = demo.fashion_experiment(settings=small)
    assert "read from" in message
    acc = arrays["acc"]
    assert acc.shape == (len(demo.SOURCES), len(demo.HIDDEN) + 1, 2, 2)
    assert np.all((acc >= 0) & (acc <= 1)) and arrays["a_acc"].shape == (2,)
    # the two held-out classes are easy to tell apart (different bright columns) from 50 labels
    assert acc[0, 0, 0].mean() > 0.9
    again, _ = demo.fashion_experiment(settings=small)  # stored: read back, same numbers
    np.testing.assert_array_equal(again["acc"], acc)


def test_tiled_task_b_trains_like_the_untiled_full_batch():
    _, b = demo.split_tasks(Dataset(*demo._toy()), (3, 7))
    t = demo.tiled(b, 20)
    assert t.x_train.shape[0] == demo.TILE and demo.tiled(b, 50).x_train.shape == t.x_train.shape
    model = demo.classifier(2)
    params, _ = model.init(jax.random.key(0))

    def loss(p, x, y):
        from lessonlib import train

        return train.cross_entropy(model.apply(p, {}, x, train=False, hp={})[0], y)

    g_tiled = jax.grad(loss)(params, t.x_train, t.y_train)
    g_plain = jax.grad(loss)(params, b.x_train[:20], b.y_train[:20])
    for a, c in zip(jax.tree.leaves(g_tiled), jax.tree.leaves(g_plain), strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)


def test_advantage_ends_reads_the_curve():
    s = np.tile(np.array([[0.8], [0.9], [0.95]]), (1, 4)) + np.array([0.0, 0.01, -0.01, 0.02])
    helps = np.array([[0.1, 0.11, 0.09, 0.1], [0.05, 0.06, 0.04, 0.05], [0.0, 0.01, -0.01, 0.0]])
    assert demo.advantage_ends([5, 10, 20], s, s + helps) == 20
    assert demo.advantage_ends([5, 10, 20], s, s + helps[::-1]) is None  # still helps at 20
    assert demo.advantage_ends([5, 10, 20], s, s - helps) == 5
    with pytest.raises(ValueError, match="shape"):
        demo.advantage_ends([5, 10], s, s)
