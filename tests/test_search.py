"""lessonlib.search: samplers against their distributions (KS tests), populations against separate
fits, successive halving on a hand-worked table, Hyperband against Li et al.'s table, the genetic
search on a known function, and the optuna glue (storage, resuming, failed trials)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lessonlib import _buckets, data, models, optim, regularization, search, train

N = 20_000


# ----------------------------------------------------------------------------------- spaces


def test_uniform_and_log_uniform_follow_their_distributions():
    u = np.asarray(search.Uniform(-2.0, 3.0).sample(jax.random.key(0), N), np.float64)
    assert stats.kstest(u, stats.uniform(-2.0, 5.0).cdf).pvalue > 1e-3
    x = np.asarray(search.LogUniform(1e-4, 1.0).sample(jax.random.key(1), N), np.float64)
    assert x.min() >= 1e-4 and x.max() <= 1.0
    assert stats.kstest(np.log(x), stats.uniform(np.log(1e-4), -np.log(1e-4)).cdf).pvalue > 1e-3
    assert stats.kstest(x, stats.loguniform(1e-4, 1.0).cdf).pvalue > 1e-3
    # the test has power: uniform samples on the same range are rejected at once
    assert stats.kstest(u / 5 + 0.4, stats.loguniform(1e-4, 1.0).cdf).pvalue < 1e-10
    # each decade gets a quarter of the samples
    counts = np.histogram(np.log10(x), bins=[-4, -3, -2, -1, 0])[0] / N
    np.testing.assert_allclose(counts, 0.25, atol=0.015)


def test_integer_and_choice_are_uniform_over_their_values():
    k = np.asarray(search.IntUniform(3, 7).sample(jax.random.key(2), N))
    assert set(np.unique(k).tolist()) == {3.0, 4.0, 5.0, 6.0, 7.0}  # both ends included
    assert stats.chisquare(np.bincount(k.astype(int))[3:]).pvalue > 1e-3
    c = np.asarray(search.Choice((0.001, 0.01, 0.1)).sample(jax.random.key(3), N))
    assert stats.chisquare([np.sum(np.isclose(c, v)) for v in (0.001, 0.01, 0.1)]).pvalue > 1e-3


def test_sample_uses_one_key_per_dimension_and_is_reproducible():
    space = {"a": search.Uniform(0.0, 1.0), "b": search.Uniform(0.0, 1.0)}
    one = search.sample(space, key=jax.random.key(0), n=50)
    again = search.sample(space, key=jax.random.key(0), n=50)
    other = search.sample(space, key=jax.random.key(1), n=50)
    np.testing.assert_array_equal(one["a"], again["a"])
    assert not np.allclose(one["a"], one["b"])  # two dimensions, two streams
    assert not np.allclose(one["a"], other["a"])
    assert one["a"].dtype == np.float32 and one["a"].shape == (50,)


@pytest.mark.parametrize(
    "dist", [search.Uniform(-1.0, 2.0), search.LogUniform(1e-3, 10.0), search.IntUniform(2, 9)]
)
def test_unit_coordinates_round_trip(dist):
    x = np.asarray(dist.sample(jax.random.key(4), 100), np.float64)
    u = dist.to_unit(x)
    assert np.all((u >= 0) & (u <= 1))
    np.testing.assert_allclose(dist.from_unit(u), x, rtol=1e-5)


def test_grid_is_the_cartesian_product():
    g = search.grid(
        {
            "lr": search.LogUniform(1e-3, 1e-1),
            "w": search.IntUniform(8, 64),
            "c": search.Choice((1, 2)),
        },
        {"lr": 3, "w": 4, "c": 99},
    )
    assert len(g["lr"]) == 3 * 4 * 2
    np.testing.assert_allclose(np.unique(g["lr"]), [1e-3, 1e-2, 1e-1], rtol=1e-6)
    assert np.unique(g["w"]).tolist() == [8.0, 27.0, 45.0, 64.0]
    assert len({(a, b, c) for a, b, c in zip(g["lr"], g["w"], g["c"], strict=True)}) == 24


@pytest.mark.parametrize(
    "space, error, match",
    [
        ({"lr": search.LogUniform(0.0, 1.0)}, ValueError, "lr low must be > 0"),
        ({"lr": search.Uniform(1.0, 0.5)}, ValueError, "lr high must be > low"),
        ({"w": search.IntUniform(2.5, 4)}, ValueError, "w low"),
        ({"w": search.IntUniform(5, 4)}, ValueError, "w high"),
        ({"c": search.Choice(())}, ValueError, "at least one"),
        ({"x": (0, 1)}, TypeError, "x must be Uniform"),
        ({}, ValueError, "non-empty"),
    ],
)
def test_bad_spaces_name_the_dimension(space, error, match):
    with pytest.raises(error, match=match):
        search.sample(space, key=jax.random.key(0), n=3)


def test_sample_checks_key_and_n():
    with pytest.raises(ValueError, match="key is required"):
        search.sample({"a": search.Uniform(0.0, 1.0)}, key=None, n=3)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        search.sample({"a": search.Uniform(0.0, 1.0)}, key=jax.random.key(0), n=0)


# ----------------------------------------------------------------------------------- populations


@pytest.fixture(scope="module")
def small():
    ds = data.toy_2d("moons", 160, seed=0, noise=0.2)
    ds = search.validation_split(ds, 40, key=jax.random.key(9))
    model = models.mlp([2, 16, 2], masked_width=True, dropout=True)
    return search.Setup(model, ds, batch_size=20, hp={"dropout": 0.1})


def test_validation_split_holds_out_training_examples():
    full = data.digits(seed=0)
    ds = search.validation_split(full, 100, key=jax.random.key(0))
    assert ds.x_test.shape == (100, 64) and ds.x_train.shape == (full.x_train.shape[0] - 100, 64)
    rows = {tuple(r) for r in np.asarray(full.x_train).round(4).tolist()}
    assert all(tuple(r) in rows for r in np.asarray(ds.x_test).round(4).tolist())
    with pytest.raises(ValueError, match="n_val"):
        search.validation_split(full, full.x_train.shape[0], key=jax.random.key(0))


def test_population_equals_separate_fits(small):
    hp = {"lr": np.array([0.05, 0.2, 0.5], np.float32), "width": np.array([3, 16, 9], np.float32)}
    pop = search.train_to(small, search.population(small, hp, key=jax.random.key(1)), 4)
    init_key, train_key = jax.random.split(jax.random.key(1))
    for i in range(3):
        params, _ = small.model.init(jax.random.fold_in(init_key, i))
        one = train.fit(
            small.model,
            params,
            small.data,
            key=train_key,
            hp={"lr": hp["lr"][i], "width": hp["width"][i], "dropout": 0.1},
            epochs=4,
            batch_size=20,
        )
        for name in ("train_loss", "test_loss", "test_acc"):
            np.testing.assert_allclose(pop.history[name][i], one.history[name], rtol=1e-5)
        np.testing.assert_allclose(
            pop.params["dense"][0]["w"][i], one.params["dense"][0]["w"], rtol=1e-5, atol=1e-6
        )


def test_population_rows_are_the_per_row_inits(small):
    """Rows are initialized 16 per vmapped call; each must be init(fold_in(init_key, i)) exactly,
    the padded last block included (17 rows: a full block and one row)."""
    hp = {"lr": np.linspace(0.1, 0.5, 17, dtype=np.float32), "width": np.full(17, 8, np.float32)}
    pop = search.population(small, hp, key=jax.random.key(3))
    init_key, _ = jax.random.split(jax.random.key(3))
    init = jax.jit(small.model.init)
    assert pop.params["dense"][0]["w"].shape == (17, 2, 16)
    for i in (0, 15, 16):
        params, _ = init(jax.random.fold_in(init_key, i))
        for got, want in zip(jax.tree.leaves(pop.params), jax.tree.leaves(params), strict=True):
            np.testing.assert_array_equal(got[i], want)


def test_train_to_resumes_and_take_keeps_rows(small):
    hp = {"lr": np.array([0.1, 0.3, 0.6], np.float32), "width": np.array([4, 8, 16], np.float32)}
    start = search.population(small, hp, key=jax.random.key(2))
    straight = search.train_to(small, start, 6)
    halfway = search.train_to(small, start, 2)
    kept = search.take(halfway, [2, 0])
    assert kept.ids.tolist() == [2, 0] and kept.hp["width"].tolist() == [16.0, 4.0]
    resumed = search.train_to(small, kept, 6)
    assert resumed.epochs == 6 and resumed.history["test_loss"].shape == (2, 6)
    np.testing.assert_allclose(
        resumed.history["test_loss"], straight.history["test_loss"][[2, 0]], rtol=1e-5
    )
    with pytest.raises(ValueError, match="epochs"):
        search.train_to(small, resumed, 6)  # already there


def momentum(hp):
    return optim.sgd(hp["lr"], momentum=0.9)


def l2(params, hp):
    return regularization.l2_penalty(params, hp["lam"])


@pytest.fixture(scope="module")
def wide():
    """A masked MLP wide enough for three buckets (16, 32, 48 units), with dropout, momentum and
    an L2 penalty (which shrinks a member's masked units only where they are computed)."""
    ds = data.toy_2d("moons", 160, seed=0, noise=0.2)
    ds = search.validation_split(ds, 40, key=jax.random.key(9))
    model = models.mlp([2, 48, 2], masked_width=True, dropout=True)
    return search.Setup(
        model, ds, batch_size=20, hp={"dropout": 0.1}, optimizer=momentum, penalty=l2
    )


def _count_sweeps(monkeypatch):
    calls = []
    real = train.sweep

    def counting(model, *args, **kwargs):
        calls.append(jax.eval_shape(model.init, jax.random.key(0))[0]["dense"][0]["w"].shape[1])
        return real(model, *args, **kwargs)

    monkeypatch.setattr(train, "sweep", counting)
    real_chunks = _buckets._run_chunks

    def counting_buckets(statics, chunks, *args):  # one program: the units of every bucket
        calls.append([part[0]["dense"][0]["w"].shape[-1] for part in chunks[0]])
        return real_chunks(statics, chunks, *args)

    monkeypatch.setattr(_buckets, "_run_chunks", counting_buckets)
    return calls


def test_bucketed_population_equals_the_full_width_one(wide, monkeypatch):
    """Buckets change no output: histories and the used units' parameters equal those of one
    full-width call (a model without the ``narrow`` hook), through take, resume and stack."""
    widths = np.tile(np.array([3, 9, 15, 20, 27, 31, 40, 47], np.float32), 3)
    k = len(widths)
    hp = {
        "lr": np.geomspace(0.02, 0.3, k).astype(np.float32),
        "lam": np.geomspace(1e-4, 3e-2, k).astype(np.float32)[::-1].copy(),
        "width": widths,
    }
    plain = wide._replace(model=models.Model(wide.model.init, wide.model.apply, "xent"))
    calls = _count_sweeps(monkeypatch)
    search.train_to(wide, search.population(wide, hp, key=jax.random.key(0)), 1)
    assert calls == [48]  # fewer than MIN_POPULATION rows: one full-width call
    calls.clear()
    monkeypatch.setattr(_buckets, "MIN_POPULATION", 2)
    pops = {}
    for name, setup in (("buckets", wide), ("plain", plain)):
        halves = [
            search.population(setup, {n: v[i::2] for n, v in hp.items()}, key=jax.random.key(i))
            for i in (0, 1)
        ]
        pop = search.train_to(setup, search.stack(halves), 2)  # a key per row
        kept = search.take(pop, [5, 0, 22, 13, 7, 18, 2, 9, 11, 20])  # rows from every bucket
        pops[name] = (pop, search.train_to(setup, kept, 4))
    # rung 1: buckets of 16, 32 and 48 units (9, 9, 6 rows), one program; rung 2: fewer than 8
    # rows each join the next wider bucket; the plain model: one full-width call per rung
    assert calls == [[16, 32, 48], [32, 48], 48, 48]  # the hidden units each call computes
    for got, want in zip(pops["buckets"], pops["plain"], strict=True):
        for name in ("train_loss", "test_loss", "train_acc", "test_acc"):
            np.testing.assert_allclose(got.history[name], want.history[name], rtol=1e-5)
        assert got.ids.tolist() == want.ids.tolist() and got.epochs == want.epochs
        for i, w in enumerate(got.hp["width"].astype(int)):
            d, e = got.params["dense"], want.params["dense"]
            for a, b in (
                (d[0]["w"][i][:, :w], e[0]["w"][i][:, :w]),
                (d[0]["b"][i][:w], e[0]["b"][i][:w]),
                (d[1]["w"][i][:w], e[1]["w"][i][:w]),
                (d[1]["b"][i], e[1]["b"][i]),
            ):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        # the full-width shapes are kept, and in the widest bucket (48 = all units) even the
        # norm of the unused units' weights, which a narrower bucket does not compute
        assert got.params["dense"][0]["w"].shape == want.params["dense"][0]["w"].shape
        full = got.hp["width"] > 32
        np.testing.assert_allclose(
            got.history["w_norm"][full], want.history["w_norm"][full], rtol=1e-5
        )
        assert not np.allclose(got.history["w_norm"], want.history["w_norm"], rtol=1e-5)


def test_bucketed_population_with_a_shared_key_equals_the_full_width_one(wide, monkeypatch):
    """A fresh population shares one key: its buckets read the shuffles drawn once for all of
    them (``train.epoch_indices``), also when resumed, and train as the full-width call does."""
    widths = np.tile(np.array([3, 9, 15, 20, 27, 31, 40, 47], np.float32), 2)
    k = len(widths)
    hp = {
        "lr": np.geomspace(0.02, 0.3, k).astype(np.float32),
        "lam": np.geomspace(1e-4, 3e-2, k).astype(np.float32),
        "width": widths,
    }
    plain = wide._replace(model=models.Model(wide.model.init, wide.model.apply, "xent"))
    monkeypatch.setattr(_buckets, "MIN_POPULATION", 2)
    monkeypatch.setattr(_buckets, "MIN_ROWS", 2)
    calls = _count_sweeps(monkeypatch)
    got, want = (
        search.train_to(
            s, search.train_to(s, search.population(s, hp, key=jax.random.key(3)), 1), 3
        )
        for s in (wide, plain)
    )
    assert calls == [[16, 32, 48], [16, 32, 48], 48, 48]
    for name in ("train_loss", "test_loss", "train_acc", "test_acc"):
        np.testing.assert_allclose(got.history[name], want.history[name], rtol=1e-5)


def test_scores_negate_losses(small):
    hist = {"test_acc": np.array([[0.5, 0.7]]), "test_loss": np.array([[2.0, 1.5]])}
    assert search.scores(small, hist).tolist() == [0.7]
    assert search.scores(small._replace(metric="test_loss"), hist).tolist() == [-1.5]


# ----------------------------------------------------------------------------------- halving


def test_keep_best():
    assert search.keep_best([0.5, 0.9, np.nan, 0.7, 0.1], 2).tolist() == [1, 3]
    assert search.keep_best([0.1, 0.2], 3).tolist() == [1]  # never fewer than one
    assert search.keep_best([0.3, 0.3, 0.1, 0.3], 2).tolist() == [0, 1]  # ties: lower index
    assert search.keep_best([np.nan, np.nan, 0.0], 3).tolist() == [2]
    assert len(search.keep_best(np.arange(10.0), 3)) == 3  # floor(10 / 3)
    with pytest.raises(ValueError, match="eta"):
        search.keep_best([1.0, 2.0], 1)


# Scores of 9 configurations at 1, 3 and 9 epochs, worked by hand: the ranking changes on the way.
TABLE = {
    1: [0.50, 0.62, 0.30, 0.71, 0.55, 0.68, np.nan, 0.40, 0.60],
    3: [0.70, 0.80, 0.35, 0.74, 0.90, 0.79, 0.99, 0.41, 0.95],
    9: [0.71, 0.85, 0.36, 0.99, 0.91, 0.80, 0.99, 0.42, 0.97],
}


def test_successive_halving_keeps_the_right_configurations():
    calls = []

    def evaluate(state, ids, epochs):
        calls.append((ids.tolist(), epochs))
        return state + 1, np.asarray(TABLE[epochs])[ids]

    log, state = search.successive_halving(evaluate, 0, 9, min_epochs=1, eta=3)
    # rung 0: all 9 for 1 epoch; 3 (0.71), 5 (0.68), 1 (0.62) go on; the NaN (6) never does
    # rung 1: to 3 epochs; 1 (0.80) beats 5 (0.79) and 3 (0.74), though 3 would win at 9 epochs
    # rung 2: 1 alone to 9 epochs
    assert calls == [(list(range(9)), 1), ([3, 5, 1], 3), ([1], 9)]
    assert state == 3
    assert log.config.tolist() == list(range(9)) + [3, 5, 1, 1]
    assert log.epochs.tolist() == [1] * 9 + [3, 3, 3, 9]
    assert log.cost.tolist() == [1] * 9 + [2, 2, 2, 6]  # resumed: only the new epochs cost
    assert log.best() == 1
    budget, best = search.budget_curve(log)
    assert budget[-1] == 9 + 6 + 6
    np.testing.assert_allclose(best[[0, 3, 8, 9, 12]], [0.50, 0.71, 0.71, 0.74, 0.85])


def test_successive_halving_stops_at_max_epochs():
    log, _ = search.successive_halving(
        lambda s, ids, e: (s, np.asarray(TABLE[e])[ids]), None, 9, min_epochs=1, eta=3, max_epochs=3
    )
    assert log.epochs.max() == 3 and len(log.config) == 9 + 3


def test_hyperband_brackets_match_li_et_al_table_1():
    """Li et al. 2017, Table 1 (R = 81, eta = 3): n_i of each bracket's first rung and r_i."""
    assert search.hyperband_brackets(81, 3) == [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]
    assert search.hyperband_brackets(27, 3) == [(27, 1), (12, 3), (6, 9), (4, 27)]


def test_sh_search_resumes_the_kept_configurations(small):
    """The winner's score after each rung equals one straight run of it at those epochs."""
    hp = search.sample(
        {"lr": search.LogUniform(0.01, 1.0), "width": search.IntUniform(2, 16)},
        key=jax.random.key(5),
        n=4,
    )
    log = search.sh_search(small, hp, key=jax.random.key(6), min_epochs=1, eta=2)
    assert log.epochs.tolist() == [1, 1, 1, 1, 2, 2, 4]
    winner = log.best()
    straight = search.train_to(small, search.population(small, hp, key=jax.random.key(6)), 4)
    mine = log.score[log.config == winner]
    np.testing.assert_allclose(mine, straight.history["test_acc"][winner, [0, 1, 3]], rtol=1e-5)


# ----------------------------------------------------------------------------------- genetic


def test_genetic_search_improves_a_known_function():
    space = {"lr": search.LogUniform(1e-4, 1.0), "p": search.Uniform(0.0, 1.0)}
    target = np.array([0.8, 0.2])  # unit coordinates: lr = 1e-4 * 1e4**0.8 = 10**-0.8, p = 0.2

    def fitness(hp):
        u = np.stack([space["lr"].to_unit(hp["lr"]), space["p"].to_unit(hp["p"])], axis=1)
        return -np.sum((u - target) ** 2, axis=1)

    log = search.genetic(fitness, space, key=jax.random.key(0), size=16, generations=15)
    by_gen = log.score.reshape(15, 16)
    assert by_gen[-1].max() >= by_gen[0].max()  # elitism: the best never gets worse
    assert np.all(np.diff(by_gen.max(axis=1)) >= 0)
    assert by_gen[-1].mean() > by_gen[0].mean() + 0.05
    assert by_gen.max() > -0.005  # within ~0.07 of the optimum in unit coordinates
    best = log.best()
    assert abs(math.log10(log.hp["lr"][best]) + 0.8) < 0.3 and abs(log.hp["p"][best] - 0.2) < 0.08
    again = search.genetic(fitness, space, key=jax.random.key(0), size=16, generations=15)
    np.testing.assert_array_equal(log.score, again.score)


def test_genetic_checks_its_arguments():
    space = {"p": search.Uniform(0.0, 1.0)}
    with pytest.raises(ValueError, match="tournament"):
        search.genetic(
            lambda hp: hp["p"], space, key=jax.random.key(0), size=4, generations=1, tournament=5
        )
    with pytest.raises(ValueError, match="mutation"):
        search.genetic(
            lambda hp: hp["p"], space, key=jax.random.key(0), size=4, generations=1, mutation=2.0
        )


# ----------------------------------------------------------------------------------- optuna


def test_optuna_storage_defaults_to_sqlite_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path / "cache"))
    assert search.default_storage() == f"sqlite:///{tmp_path / 'cache' / 'optuna.db'}"
    study = search.create_study("quadratic", seed=0)
    space = {
        "x": search.LogUniform(1e-3, 10.0),
        "k": search.IntUniform(1, 4),
        "c": search.Choice((0.5, 2.0)),
    }
    calls = []

    def fitness(hp):
        calls.append(len(hp["x"]))
        return -((np.log10(hp["x"]) - 0.0) ** 2) - hp["k"] * hp["c"]

    log = search.tpe_search(fitness, space, study=study, trials=10, batch=4)
    assert calls == [4, 4, 2] and len(log.score) == 10
    assert (tmp_path / "cache" / "optuna.db").exists()
    assert set(np.unique(log.hp["c"]).tolist()) <= {0.5, 2.0}
    assert np.all((log.hp["k"] >= 1) & (log.hp["k"] <= 4))
    np.testing.assert_allclose(log.score, fitness(log.hp), rtol=1e-5)
    calls.clear()
    # a rerun loads the stored study and trains nothing
    again = search.tpe_search(
        fitness, space, study=search.create_study("quadratic"), trials=10, batch=4
    )
    assert calls == [] and np.array_equal(again.score, log.score)
    params = study.trials[0].distributions
    assert params["x"].log and not params["k"].log


def test_diverged_trials_are_recorded_as_failed(tmp_path):
    study = search.create_study("nan", storage=f"sqlite:///{tmp_path / 's.db'}")
    log = search.tpe_search(
        lambda hp: np.where(hp["x"] > 0.5, np.nan, hp["x"]),
        {"x": search.Uniform(0.0, 1.0)},
        study=study,
        trials=8,
        batch=8,
    )
    failed = np.isnan(log.score)
    assert failed.sum() == np.sum(log.hp["x"] > 0.5) and len(log.score) == 8
    assert log.best() == int(np.nanargmax(np.where(failed, -np.inf, log.score)))


def test_tpe_beats_its_own_start_on_a_smooth_function(tmp_path):
    study = search.create_study("smooth", storage=f"sqlite:///{tmp_path / 's.db'}", seed=1)
    log = search.tpe_search(
        lambda hp: -((np.log10(hp["x"]) + 2.0) ** 2),
        {"x": search.LogUniform(1e-5, 1.0)},
        study=study,
        trials=30,
        batch=5,
    )
    # TPE starts with 10 random trials; the later ones concentrate near x = 1e-2
    assert np.median(log.score[20:]) > np.median(log.score[:10])
    assert abs(np.log10(log.hp["x"][log.best()]) + 2.0) < 0.3


def test_jnp_scores_are_accepted(small):
    log = search.evaluate_all(
        small,
        {"lr": jnp.array([0.1, 0.5]), "width": jnp.array([4.0, 16.0])},
        key=jax.random.key(0),
        epochs=2,
    )
    assert log.cost.tolist() == [2, 2] and log.score.shape == (2,)


def test_stack_keeps_each_populations_key(small):
    """Two seeds of the same configurations as one population == each seed on its own."""
    hp = {"lr": np.array([0.1, 0.4], np.float32), "width": np.array([8.0, 16.0], np.float32)}
    a = search.population(small, hp, key=jax.random.key(11))
    b = search.population(small, hp, key=jax.random.key(12))
    both = search.train_to(small, search.stack([a, b]), 3)
    assert both.ids.tolist() == [0, 1, 2, 3] and both.key.shape == (4,)
    alone = [search.train_to(small, p, 3) for p in (a, b)]
    want = np.concatenate([p.history["test_loss"] for p in alone])
    np.testing.assert_allclose(both.history["test_loss"], want, rtol=1e-5)
    assert not np.allclose(want[:2], want[2:])  # the seeds differ
    kept = search.train_to(small, search.take(both, [3, 0]), 5)  # rows keep their own keys
    longer = [search.train_to(small, p, 5) for p in (b, a)]
    np.testing.assert_allclose(
        kept.history["test_loss"][0], longer[0].history["test_loss"][1], rtol=1e-5
    )
    np.testing.assert_allclose(
        kept.history["test_loss"][1], longer[1].history["test_loss"][0], rtol=1e-5
    )


def test_scores_at_a_per_row_epoch(small):
    hist = {"test_acc": np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])}
    assert search.scores(small, hist, np.array([0, 2])).tolist() == [0.1, 0.6]
    assert search.scores(small, hist, 1).tolist() == [0.2, 0.5]


def test_storage_url_picks_an_installed_postgresql_driver(monkeypatch):
    import importlib.util

    have_psycopg3 = importlib.util.find_spec("psycopg") is not None
    url = search.storage_url("postgresql://u@h:5432/db")
    assert url == (
        "postgresql://u@h:5432/db" if have_psycopg3 else "postgresql+psycopg2://u@h:5432/db"
    )
    assert search.storage_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("LESSONLIB_CACHE", "/tmp/somewhere")
    assert search.storage_url(None) == "sqlite:////tmp/somewhere/optuna.db"
