"""Chapter 08 demos: the study notes' bugs are real and the fixes work (gradients against jax.grad),
the stored-result functions agree with separate runs, the panel only looks numbers up, and two
worker processes share one optuna study in a real PostgreSQL server, every trial recorded once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lessonlib import search, train
from lessonlib.demos import ch08_search as demo


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    raw = load_digits()
    return raw.data / 16.0, raw.target.astype(int)


# ----------------------------------------------------------------------------- the notes' script


def test_the_notes_bugs_are_real(digits):
    X, y = digits
    with pytest.raises(AttributeError, match="int"):
        demo.source_labels(y)
    assert not hasattr(demo.SourceNetwork, "fit")  # nested inside backward
    from sklearn.base import clone

    net = clone(demo.SourceNetwork(64)).set_params(hidden_size=73)
    assert net.W1.shape == (64, 128)  # the searched width never reaches the weights
    z = np.array([[2.0, 1.0, 0.1], [120.0, 119.0, 118.1]], np.float32)
    with np.errstate(invalid="ignore"):
        assert np.isnan(demo.global_max_softmax(z)[0]).all()
    np.testing.assert_allclose(demo.row_max_softmax(z), jax.nn.softmax(z, axis=1), rtol=1e-5)


def test_fixed_network_gradients_match_jax(digits):
    """One SGD step of FixedNetwork moves every weight by -lr * (the gradient jax.grad computes)."""
    X, y = digits
    net = demo.FixedNetwork(64, 16, 10, learning_rate=0.5, epochs=1, batch_size=2000).fit(X, y)
    before = {k: getattr(net, k).copy() for k in ("W1_", "b1_", "W2_", "b2_")}
    xb, yb = X[:32], y[:32]
    net._step(xb, yb)

    def loss(p):
        h = jax.nn.relu(xb @ p["W1_"] + p["b1_"])
        logits = h @ p["W2_"] + p["b2_"]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(32), yb])

    grads = jax.grad(loss)({k: jnp.asarray(v, jnp.float32) for k, v in before.items()})
    for k, v in before.items():
        np.testing.assert_allclose((v - getattr(net, k)) / 0.5, grads[k], rtol=1e-3, atol=1e-5)


def test_fixed_network_searches_the_width(digits):
    from sklearn.base import clone

    X, y = digits
    net = clone(demo.FixedNetwork(64)).set_params(hidden_size=24, epochs=10, learning_rate=0.1)
    net.fit(X[:1400], y[:1400])
    assert net.W1_.shape == (64, 24)
    assert net.score(X[1400:], y[1400:]) > 0.85
    again = clone(net).fit(X[:1400], y[:1400])
    np.testing.assert_array_equal(again.W1_, net.W1_)  # random_state: repeatable


# ----------------------------------------------------------------------------- stored results


def test_source_study_reads_epochs_off_the_history():
    """Each configuration's score is the run of its own length: the baseline equals a 20-epoch fit."""
    out = demo.source_study([3], n_configs=1)
    assert out["val"].shape == (1, 2) and out["epochs"][0, -1] == 20
    _, test_data = demo.search_data()
    init_key, train_key = jax.random.split(jax.random.key(3))
    params, _ = jax.jit(demo.MODEL.init)(jax.random.fold_in(init_key, 1))
    run = train.fit(
        demo.MODEL,
        params,
        test_data,
        key=train_key,
        hp={"lr": demo.BASELINE["lr"], "width": demo.BASELINE["width"]},
        epochs=20,
        batch_size=demo.BATCH,
    )
    assert abs(run.history["test_acc"][-1] - out["test"][0, -1]) < 1e-6


def test_search_data_shares_the_training_part():
    val, test = demo.search_data()
    np.testing.assert_array_equal(val.x_train, test.x_train)
    assert val.x_test.shape == test.x_test.shape == (360, 64)
    assert not np.array_equal(np.asarray(val.x_test), np.asarray(test.x_test))


def test_paired_interval_matches_scipy():
    b = np.array([0.61, 0.58, 0.66, 0.52, 0.63])
    s = np.array([0.93, 0.96, 0.92, 0.95, 0.90])
    mean, lo, hi = demo.paired_interval(b, s, confidence=0.9)
    ci = stats.ttest_1samp(s - b, 0.0).confidence_interval(0.9)
    np.testing.assert_allclose([mean, lo, hi], [(s - b).mean(), ci.low, ci.high])


def test_grid_vs_random_toy():
    toy = demo.grid_vs_random_toy(ks=(3, 5), repeats=500)
    assert toy["grid_distinct_x"].tolist() == [3, 5] and toy["random_distinct_x"].tolist() == [
        9,
        25,
    ]
    assert np.all(toy["random_mean"] > toy["grid_best"])
    assert np.all(toy["random_q10"] <= toy["random_mean"]) and np.all(
        toy["random_mean"] <= toy["random_q90"]
    )
    assert toy["grid_best"].max() <= toy["optimum"] + 1e-9


def _fake_results():
    out = {}
    for seed in (0, 1):
        r = {}
        for i, m in enumerate(demo.METHODS):
            r[f"{m}.budget"] = np.array([27.0, 54.0, 81.0]) * (1 + i % 2)
            r[f"{m}.best"] = np.array([0.6, 0.8, 0.9]) + 0.01 * i + 0.02 * seed
        out[seed] = r
    return out


def test_best_at_looks_up_the_budget_curve():
    r = _fake_results()[0]
    got = demo.best_at(r, "grid", [0, 26, 27, 60, 1000])
    np.testing.assert_allclose(got, [np.nan, np.nan, 0.6, 0.8, 0.9])


def test_budget_panel_only_looks_up(monkeypatch):
    results = _fake_results()

    def no_training(*args, **kwargs):
        raise AssertionError("the panel must not train")

    monkeypatch.setattr(train, "sweep", no_training)
    monkeypatch.setattr(train, "fit", no_training)
    panel = demo.budget_panel(results)
    panel.update(budget=54, seed=1)
    bars = [a for a in panel.fig.axes[1].patches]
    want = [demo.best_at(results[1], m, [54])[0] for m in demo.METHODS]
    np.testing.assert_allclose([b.get_height() for b in bars], np.nan_to_num(want))
    assert "seed 1, budget 54" in panel.fig.axes[0].get_title()


# ----------------------------------------------------------------------------- shared studies


def _worker(url, name, seed, tmp_path):
    env = {**os.environ, "LESSONLIB_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "lessonlib.demos.ch08_search", "worker", "--storage", url]
    cmd += ["--study", "shared", "--trials", "6", "--batch", "3", "--epochs", "2"]
    cmd += ["--seed", str(seed), "--name", name]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_workers_share_one_study_in_postgresql(postgres_url, tmp_path):
    import optuna
    import psycopg2

    con = psycopg2.connect(postgres_url)
    con.autocommit = True
    con.cursor().execute("CREATE DATABASE optuna_ch08")
    con.close()
    url = postgres_url.rsplit("/", 1)[0] + "/optuna_ch08"
    search.create_study("shared", storage=url)  # the tables and the study exist before the workers

    workers = [_worker(url, f"w{i}", i, tmp_path) for i in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-2000:]
    reports = [
        json.loads(line) for out, _ in outputs for line in out.splitlines() if line.startswith("{")
    ]

    trials = optuna.load_study(study_name="shared", storage=search.storage_url(url)).trials
    assert len(trials) == 12
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(12))  # every number handed out once
    assert sorted(r["number"] for r in reports) == list(range(12))  # every trial reported once
    assert Counter(r["worker"] for r in reports) == {"w0": 6, "w1": 6}
    stored = {t.number: t for t in trials}
    for r in reports:  # what each worker trained is what the database holds
        t = stored[r["number"]]
        assert t.user_attrs["worker"] == r["worker"]
        assert t.value == pytest.approx(r["value"], rel=1e-9)
        assert {k: float(v) for k, v in t.params.items()} == pytest.approx(r["params"], rel=1e-6)
        assert 0.0 <= t.value <= 1.0
    assert set(stored[0].params) == set(demo.SPACE)


def test_worker_defaults_to_sqlite_in_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path))
    assert (
        demo.main(["worker", "--study", "local", "--trials", "2", "--batch", "2", "--epochs", "1"])
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["number"] for r in lines] == [0, 1] and (tmp_path / "optuna.db").exists()
