"""The training engine against closed forms and a plain Python reference loop."""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import data, models, regularization, train


def l2(params, hp):
    return regularization.l2_penalty(params, hp["lam"])


@pytest.fixture(scope="module")
def d2l():
    ds = data.d2l_weight_decay_data(seed=0)
    model = models.linear_regression(200)
    params, _ = model.init(jax.random.key(1))
    return ds, model, params


def _python_reference(ds, params, lam, lr, epochs, batch_size, key):
    """The same run as ``fit`` written as a plain numpy loop (float64), step by step."""
    X, y = np.asarray(ds.x_train, np.float64), np.asarray(ds.y_train, np.float64)
    w, b = np.asarray(params["w"], np.float64), float(params["b"])
    n = len(X)
    for e in range(epochs):
        ekey = jax.random.fold_in(key, e)
        idx = np.asarray(data.epoch_batches(jax.random.fold_in(ekey, 0), n, batch_size))
        for batch in idx:
            err = X[batch] @ w + b - y[batch]
            gw = X[batch].T @ err / len(batch) + lam * w
            gb = err.mean()
            w, b = w - lr * gw, b - lr * gb
    return w, b


def test_epoch_indices_are_the_epochs_shuffles():
    key, epochs = jax.random.key(4), jnp.array([3, 4, 5])
    got = np.asarray(train.epoch_indices(key, epochs, 103, 10))
    for row, e in zip(got, [3, 4, 5], strict=True):
        ekey = jax.random.fold_in(key, e)
        np.testing.assert_array_equal(row, data.epoch_batches(jax.random.fold_in(ekey, 0), 103, 10))
    assert got.shape == (3, 10, 10)


def test_fit_matches_a_python_loop(d2l):
    ds, model, params = d2l
    key = jax.random.key(2)
    run = train.fit(
        model, params, ds, key=key, hp={"lr": 0.003, "lam": 3.0}, epochs=5, batch_size=5, penalty=l2
    )
    w, b = _python_reference(ds, params, 3.0, 0.003, 5, 5, key)
    np.testing.assert_allclose(run.params["w"], w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run.params["b"], b, rtol=1e-4, atol=1e-5)
    test_loss = np.mean(
        (np.asarray(ds.x_test, np.float64) @ w + b - np.asarray(ds.y_test)) ** 2 / 2
    )
    np.testing.assert_allclose(run.history["test_loss"][-1], test_loss, rtol=1e-4)


def test_an_unrolled_epoch_is_the_same_run_as_the_loop(d2l, monkeypatch):
    """The d2l demo's 4-step epochs are unrolled (``_MAX_UNROLLED``): bit for bit the run that a
    loop over the steps gives. Each setting traces a model of its own (runs are cached per model)."""
    ds, _, params = d2l
    kw = dict(key=jax.random.key(2), hp={"lr": 0.003, "lam": 3.0}, epochs=7, batch_size=5)
    runs = {}
    for limit in (0, train._MAX_UNROLLED):
        monkeypatch.setattr(train, "_MAX_UNROLLED", limit)
        runs[limit] = train.fit(models.linear_regression(200), params, ds, penalty=l2, **kw)
    assert ds.x_train.shape[0] // 5 <= train._MAX_UNROLLED  # the unrolled case is the d2l one
    loop, unrolled = runs[0], runs[train._MAX_UNROLLED]
    for a, b in zip(jax.tree.leaves(loop[:3]), jax.tree.leaves(unrolled[:3]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_d2l_weight_decay_numbers(d2l):
    """d2l v0.17 section 4.5: lambda=0 overfits, lambda=3 generalizes."""
    ds, model, params = d2l
    kw = dict(key=jax.random.key(2), epochs=100, batch_size=5, penalty=l2)
    plain = train.fit(model, params, ds, hp={"lr": 0.003, "lam": 0.0}, **kw).history
    decay = train.fit(model, params, ds, hp={"lr": 0.003, "lam": 3.0}, **kw).history
    assert plain["train_loss"][-1] < 1e-3
    assert plain["test_loss"][-1] > 10
    assert decay["test_loss"][-1] < 0.5
    assert decay["w_norm"][-1] < plain["w_norm"][-1] / 10


def test_changing_hyperparameters_does_not_recompile(d2l):
    ds, model, params = d2l
    kw = dict(key=jax.random.key(2), epochs=3, batch_size=5, penalty=l2)
    train.fit(model, params, ds, hp={"lr": 0.003, "lam": 0.0}, **kw)
    before = train.compile_count()
    for lam, lr in [(0.1, 0.003), (3.0, 0.01), (10.0, 0.0001)]:
        train.fit(model, params, ds, hp={"lr": lr, "lam": lam}, **kw)
    assert train.compile_count() == before


def test_sweep_equals_individual_runs(d2l):
    ds, model, params = d2l
    kw = dict(key=jax.random.key(2), epochs=10, batch_size=5, penalty=l2)
    lams = jnp.array([0.0, 0.5, 3.0], jnp.float32)
    swept = train.sweep(model, params, ds, hp={"lr": 0.003, "lam": lams}, **kw)
    assert swept.history["test_loss"].shape == (3, 10)
    for i, lam in enumerate(lams.tolist()):
        one = train.fit(model, params, ds, hp={"lr": 0.003, "lam": lam}, **kw)
        np.testing.assert_allclose(
            swept.history["test_loss"][i], one.history["test_loss"], rtol=1e-4
        )


def test_divergence_is_reported_not_raised(d2l):
    ds, model, params = d2l
    with pytest.warns(RuntimeWarning, match="diverged"):
        run = train.fit(
            model,
            params,
            ds,
            key=jax.random.key(2),
            hp={"lr": 5.0, "lam": 0.0},
            epochs=20,
            batch_size=5,
            penalty=l2,
        )
    assert 1 <= int(run.diverged_at()) <= 20
    assert not np.isfinite(run.history["train_loss"][-1])


def test_sweep_reports_which_runs_diverged(d2l):
    ds, model, params = d2l
    with pytest.warns(RuntimeWarning, match="run 1"):
        run = train.sweep(
            model,
            params,
            ds,
            key=jax.random.key(2),
            hp={"lr": jnp.array([0.003, 5.0]), "lam": 0.0},
            epochs=20,
            batch_size=5,
            penalty=l2,
        )
    first = run.diverged_at()
    assert first[0] == 0 and first[1] > 0


def test_no_warning_for_a_healthy_run(d2l):
    ds, model, params = d2l
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train.fit(
            model, params, ds, key=jax.random.key(2), hp={"lr": 0.003}, epochs=2, batch_size=5
        )


def test_classifier_with_dropout_and_batch_norm_learns():
    ds = data.toy_2d("circles", 400, seed=0, noise=0.05)
    model = models.mlp([2, 32, 32, 2], dropout=True, batch_norm="before")
    params, state = model.init(jax.random.key(0))
    run = train.fit(
        model,
        params,
        ds,
        key=jax.random.key(1),
        hp={"lr": 0.1, "dropout": 0.1},
        epochs=30,
        batch_size=20,
        state=state,
    )
    assert run.history["test_acc"][-1] > 0.9
    # The running statistics moved away from their initial values.
    assert not np.allclose(run.state["bn"][0]["mean"], 0.0)


def test_dropout_runs_are_reproducible_and_key_dependent():
    ds = data.toy_2d("moons", 200, seed=0)
    model = models.mlp([2, 16, 2], dropout=True)
    params, _ = model.init(jax.random.key(0))
    kw = dict(hp={"lr": 0.1, "dropout": 0.5}, epochs=3, batch_size=10)
    a = train.fit(model, params, ds, key=jax.random.key(1), **kw)
    b = train.fit(model, params, ds, key=jax.random.key(1), **kw)
    c = train.fit(model, params, ds, key=jax.random.key(2), **kw)
    np.testing.assert_array_equal(a.history["batch_loss"], b.history["batch_loss"])
    assert not np.array_equal(a.history["batch_loss"], c.history["batch_loss"])


def test_custom_optimizer_and_projection(d2l):
    ds, model, params = d2l

    class Scaled:
        def __init__(self, lr):
            self.lr = lr

        def init(self, params):
            return ()

        def update(self, grads, state, params=None):
            return jax.tree.map(lambda g: -self.lr * g, grads), state

    def optimizer(hp):
        return Scaled(hp["lr"])

    def project(p, hp):
        return regularization.max_norm(p, hp["r"], axis=0)

    run = train.fit(
        model,
        params,
        ds,
        key=jax.random.key(2),
        hp={"lr": 0.003, "r": 2.0},
        epochs=3,
        batch_size=5,
        optimizer=optimizer,
        project=project,
    )
    assert run.history["w_norm"][-1] <= 2.0 + 1e-5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 21}, "batch_size"),
        ({"epochs": 2.5}, "epochs"),
    ],
)
def test_bad_arguments(d2l, kwargs, match):
    ds, model, params = d2l
    kw = {"epochs": 2, "batch_size": 5} | kwargs
    with pytest.raises(ValueError, match=match):
        train.fit(model, params, ds, key=jax.random.key(0), hp={"lr": 0.1}, **kw)


def test_sweep_needs_a_vector(d2l):
    ds, model, params = d2l
    with pytest.raises(ValueError, match="1-D"):
        train.sweep(
            model, params, ds, key=jax.random.key(0), hp={"lr": 0.1}, epochs=1, batch_size=5
        )
    with pytest.raises(ValueError, match="equal lengths"):
        train.sweep(
            model,
            params,
            ds,
            key=jax.random.key(0),
            hp={"lr": jnp.ones(2), "lam": jnp.ones(3)},
            epochs=1,
            batch_size=5,
        )


def test_losses_against_closed_forms():
    logits = jnp.array([[2.0, 0.0], [0.0, 0.0]])
    labels = jnp.array([0, 1])
    want = -(np.log(np.exp(2) / (np.exp(2) + 1)) + np.log(0.5)) / 2
    np.testing.assert_allclose(train.cross_entropy(logits, labels), want, rtol=1e-6)
    np.testing.assert_allclose(
        train.squared_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0])), 2.5
    )
    np.testing.assert_allclose(train.accuracy(logits, labels), 0.5)


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_sweep_in_chunks_equals_one_chunk(d2l, monkeypatch, workers):
    """On a CPU the runs are split into one chunk per core; the split must not change any run."""
    ds, model, params = d2l
    kw = dict(key=jax.random.key(2), epochs=4, batch_size=5, penalty=l2)
    lams = jnp.array([0.0, 0.5, 1.0, 3.0, 10.0], jnp.float32)
    monkeypatch.setenv("LESSONLIB_SWEEP_WORKERS", workers)
    assert train.sweep_workers(len(lams)) == int(workers)
    chunked = train.sweep(model, params, ds, hp={"lr": 0.003, "lam": lams}, **kw)
    monkeypatch.setenv("LESSONLIB_SWEEP_WORKERS", "1")
    whole = train.sweep(model, params, ds, hp={"lr": 0.003, "lam": lams}, **kw)
    assert chunked.history["test_loss"].shape == (5, 4)
    assert chunked.params["w"].shape == (5, 200)
    np.testing.assert_allclose(chunked.history["test_loss"], whole.history["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(chunked.params["w"], whole.params["w"], rtol=1e-5, atol=1e-7)


def test_sweep_workers_never_exceed_the_runs(monkeypatch):
    monkeypatch.setenv("LESSONLIB_SWEEP_WORKERS", "8")
    assert train.sweep_workers(3) == 3
    monkeypatch.delenv("LESSONLIB_SWEEP_WORKERS")
    assert 1 <= train.sweep_workers(1000) <= (os.cpu_count() or 1)


def test_chunks_pad_with_the_last_value():
    hp = {"lam": jnp.arange(5, dtype=jnp.float32), "lr": jnp.float32(0.1)}
    chunks = train._chunk_hp(hp, ("lam",), 5, 2)
    assert [c["lam"].tolist() for c in chunks] == [[0, 1, 2], [3, 4, 4]]
    assert all(float(c["lr"]) == np.float32(0.1) for c in chunks)
    rows = train._chunk_rows({"w": jnp.eye(5)}, 5, 2)
    assert [c["w"].shape for c in rows] == [(3, 5), (3, 5)]
    np.testing.assert_array_equal(rows[1]["w"][2], np.eye(5)[4])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sweep_over_initial_params_equals_individual_runs(monkeypatch, workers):
    """stacked=True: run k starts from params[k] (seeds, initializers) in one call, alone
    or together with a swept hp entry, split into chunks or not."""
    monkeypatch.setenv("LESSONLIB_SWEEP_WORKERS", workers)
    ds = data.toy_2d("moons", n=64, seed=0)
    model = models.mlp([2, 8, 8, 2], batch_norm="before")
    params, state = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 3))
    kw = dict(key=jax.random.key(1), epochs=3, batch_size=16)
    lrs = jnp.array([0.05, 0.1, 0.2], jnp.float32)
    many = train.sweep(model, params, ds, state=state, hp={"lr": lrs}, stacked=True, **kw)
    same_lr = train.sweep(model, params, ds, state=state, hp={"lr": 0.1}, stacked=True, **kw)
    assert many.history["test_loss"].shape == (3, 3)
    for k in range(3):
        p_k, s_k = jax.tree.map(lambda v, k=k: v[k], (params, state))
        one = train.fit(model, p_k, ds, state=s_k, hp={"lr": float(lrs[k])}, **kw)
        np.testing.assert_allclose(
            many.history["test_loss"][k], one.history["test_loss"], rtol=1e-4
        )
        jax.tree.map(
            lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=1e-4, atol=1e-6),
            many.state,
            one.state,
        )
        one = train.fit(model, p_k, ds, state=s_k, hp={"lr": 0.1}, **kw)
        np.testing.assert_allclose(same_lr.history["train_acc"][k], one.history["train_acc"])


def test_stacked_params_need_one_leading_axis(d2l):
    ds, model, params = d2l
    kw = dict(key=jax.random.key(0), hp={"lr": 0.1}, epochs=1, batch_size=5)
    rows = {"w": jnp.stack([params["w"]] * 3), "b": jnp.zeros(2)}
    with pytest.raises(ValueError, match="leading axis"):
        train.sweep(model, rows, ds, stacked=True, **kw)
    rows["b"] = jnp.zeros(3)
    with pytest.raises(ValueError, match="equal lengths"):
        train.sweep(model, rows, ds, **(kw | {"hp": {"lr": jnp.ones(2)}}), stacked=True)


# --------------------------------------------------------------------------- the hp contract
@pytest.fixture(scope="module")
def moons():
    return data.toy_2d("moons", 60, seed=0)


def test_missing_hp_key_names_the_key_and_the_keys_given(moons):
    model = models.mlp([2, 8, 2], dropout=True)
    params, _ = model.init(jax.random.key(0))
    before = train.compile_count()
    with pytest.raises(ValueError) as err:
        train.fit(
            model, params, moons, key=jax.random.key(1), hp={"lr": 0.1}, epochs=1, batch_size=10
        )
    assert str(err.value) == (
        "hp is missing 'dropout' (read by the model); the keys given are ['lr']"
    )
    assert train.compile_count() == before  # raised before anything was compiled


def test_missing_hp_key_in_sweep(moons):
    model = models.mlp([2, 8, 2], dropout=True)
    params, _ = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"missing 'dropout' \(read by the model\)"):
        train.sweep(
            model,
            params,
            moons,
            key=jax.random.key(1),
            hp={"lr": jnp.array([0.1, 0.2])},
            epochs=1,
            batch_size=10,
        )


def test_unread_hp_key_is_an_error_with_did_you_mean(d2l):
    ds, model, params = d2l
    kw = dict(key=jax.random.key(2), epochs=1, batch_size=5, penalty=l2)
    with pytest.raises(ValueError) as err:
        train.fit(model, params, ds, hp={"lr": 0.1, "lam": 1, "lamda": 3}, **kw)
    assert str(err.value) == (
        "hp has 'lamda', which nothing reads (the model, optimizer and penalty read "
        "['lam', 'lr']); did you mean 'lam'?"
    )
    with pytest.raises(ValueError, match="hp has 'lamda', which nothing reads.*did you mean 'lam'"):
        train.sweep(model, params, ds, hp={"lr": 0.1, "lam": jnp.ones(2), "lamda": 3}, **kw)
    with pytest.raises(ValueError, match="hp has 'zzz', which nothing reads") as err:
        train.fit(model, params, ds, hp={"lr": 0.1, "lam": 1, "zzz": 3}, **kw)
    assert "did you mean" not in str(err.value)  # nothing close: no guess


def test_a_typo_instead_of_the_key_is_named_as_a_likely_misspelling(d2l):
    ds, model, params = d2l
    with pytest.raises(ValueError) as err:
        train.fit(
            model,
            params,
            ds,
            key=jax.random.key(2),
            hp={"lr": 0.1, "lamda": 3},
            epochs=1,
            batch_size=5,
            penalty=l2,
        )
    assert str(err.value) == (
        "hp is missing 'lam' (read by the penalty); the keys given are ['lamda', 'lr']; "
        "is 'lamda' a misspelling of 'lam'?"
    )


def test_missing_keys_of_every_component_are_named_at_once(d2l):
    ds, model, params = d2l
    with pytest.raises(ValueError) as err:
        train.fit(
            model,
            params,
            ds,
            key=jax.random.key(2),
            hp={},
            epochs=1,
            batch_size=5,
            penalty=l2,
            project=lambda p, hp: regularization.max_norm(p, hp["r"]),
        )
    msg = str(err.value)
    for part in ("'lr' (read by the optimizer)", "'lam' (read by the penalty)", "'r' (read by"):
        assert part in msg
    assert "the keys given are []" in msg


def test_an_empty_hp_is_still_recorded_by_the_model(moons):
    """``mlp`` must not replace an empty ``hp`` by a fresh dict (``hp or {}``): its reads count."""
    model = models.mlp([2, 8, 2], dropout=True)
    params, _ = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"'dropout' \(read by the model\), 'lr'"):
        train.fit(model, params, moons, key=jax.random.key(1), hp={}, epochs=1, batch_size=10)


def test_optional_hp_key_is_accepted_given_or_absent(moons):
    model = models.mlp([2, 8, 2], batch_norm="before")
    params, state = model.init(jax.random.key(0))
    kw = dict(key=jax.random.key(1), epochs=2, batch_size=10, state=state)
    default = train.fit(model, params, moons, hp={"lr": 0.1}, **kw)
    explicit = train.fit(model, params, moons, hp={"lr": 0.1, "bn_momentum": 0.9}, **kw)
    faster = train.fit(model, params, moons, hp={"lr": 0.1, "bn_momentum": 0.5}, **kw)
    np.testing.assert_allclose(default.state["bn"][0]["mean"], explicit.state["bn"][0]["mean"])
    assert not np.allclose(default.state["bn"][0]["mean"], faster.state["bn"][0]["mean"])
    with pytest.raises(ValueError, match="did you mean 'bn_momentum'"):
        train.fit(model, params, moons, hp={"lr": 0.1, "bn_momentun": 0.5}, **kw)


def test_a_component_that_iterates_hp_reads_every_key(d2l):
    ds, model, params = d2l

    def penalty(p, hp):
        return regularization.l2_penalty(p, sum(hp.values()) * 0.0)

    train.fit(
        model,
        params,
        ds,
        key=jax.random.key(2),
        hp={"lr": 0.003, "anything": 1.0},
        epochs=1,
        batch_size=5,
        penalty=penalty,
    )


def test_slider_moves_with_the_hp_check_cost_a_lookup_and_never_recompile(d2l, monkeypatch):
    ds, model, params = d2l
    kw = dict(key=jax.random.key(2), epochs=3, batch_size=5, penalty=l2)
    train.fit(model, params, ds, hp={"lr": 0.003, "lam": 0.0}, **kw)
    before = train.compile_count()
    traced = []
    monkeypatch.setattr(train._hp, "reads", lambda *a, **k: traced.append(1))
    for lam, lr in [(0.1, 0.003), (3.0, 0.01), (10.0, 0.0001), (0.5, 0.003)]:
        train.fit(model, params, ds, hp={"lr": lr, "lam": lam}, **kw)
    assert train.compile_count() == before
    assert traced == []  # the verdict was cached: no tracing per slider move


# ----------------------------------------------------------------------- populations and resuming


def momentum(hp):
    from lessonlib import optim

    return optim.sgd(hp["lr"], momentum=0.9)


@pytest.fixture(scope="module")
def moons_dropout():
    ds = data.toy_2d("moons", 120, seed=0, noise=0.2)
    model = models.mlp([2, 8, 2], dropout=True)
    return ds, model


def test_stacked_sweep_equals_separate_fits(moons_dropout, monkeypatch):
    """Each run of a population has its own parameters, key and hyperparameters."""
    monkeypatch.setenv("LESSONLIB_SWEEP_WORKERS", "2")  # chunked: the padding must not leak
    ds, model = moons_dropout
    k = 3
    inits = [model.init(jax.random.key(10 + i))[0] for i in range(k)]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *inits)
    keys = jax.random.split(jax.random.key(5), k)
    lrs = jnp.array([0.05, 0.1, 0.3], jnp.float32)
    kw = dict(epochs=3, batch_size=20, optimizer=momentum)
    pop = train.sweep(
        model, params, ds, key=keys, hp={"lr": lrs, "dropout": 0.2}, stacked=True, **kw
    )
    assert pop.history["test_acc"].shape == (k, 3)
    for i in range(k):
        one = train.fit(model, inits[i], ds, key=keys[i], hp={"lr": lrs[i], "dropout": 0.2}, **kw)
        for name in ("train_loss", "test_loss", "test_acc"):
            np.testing.assert_allclose(pop.history[name][i], one.history[name], rtol=1e-5)
        np.testing.assert_allclose(
            pop.params["dense"][0]["w"][i], one.params["dense"][0]["w"], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            pop.opt_state[0].trace["dense"][1]["w"][i],
            one.opt_state[0].trace["dense"][1]["w"],
            rtol=1e-5,
            atol=1e-6,
        )


def test_stacked_sweep_with_shared_hp_and_its_errors(moons_dropout):
    ds, model = moons_dropout
    params = jax.tree.map(lambda x: jnp.stack([x, x]), model.init(jax.random.key(0))[0])
    keys = jax.random.split(jax.random.key(1), 2)
    kw = dict(hp={"lr": 0.1, "dropout": 0.0}, epochs=2, batch_size=20)
    run = train.sweep(model, params, ds, key=keys, stacked=True, **kw)
    # same start, two keys: two different runs
    assert not np.allclose(run.history["train_loss"][0], run.history["train_loss"][1])
    with pytest.raises(ValueError, match="leading axis"):
        train.sweep(model, params, ds, key=jax.random.split(keys[0], 3), stacked=True, **kw)


def test_resume_equals_one_long_run(moons_dropout):
    """4 epochs, then 4 more from the returned params and optimizer state == 8 epochs at once."""
    ds, model = moons_dropout
    params, _ = model.init(jax.random.key(0))
    kw = dict(key=jax.random.key(3), hp={"lr": 0.1, "dropout": 0.3}, batch_size=20)
    kw["optimizer"] = momentum
    whole = train.fit(model, params, ds, epochs=8, **kw)
    first = train.fit(model, params, ds, epochs=4, **kw)
    second = train.fit(
        model, first.params, ds, epochs=4, opt_state=first.opt_state, first_epoch=4, **kw
    )
    joined = np.concatenate([first.history["test_loss"], second.history["test_loss"]])
    np.testing.assert_allclose(joined, whole.history["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        second.params["dense"][0]["w"], whole.params["dense"][0]["w"], rtol=1e-5, atol=1e-6
    )
    # without the optimizer state, momentum restarts from zero: a different run
    fresh = train.fit(model, first.params, ds, epochs=4, first_epoch=4, **kw)
    assert not np.allclose(fresh.history["test_loss"], second.history["test_loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="first_epoch"):
        train.fit(model, params, ds, epochs=1, first_epoch=-1, **kw)


def test_stacked_sweep_checks_the_hp_contract_on_one_run():
    ds = data.toy_2d("moons", 64, seed=0)
    net = models.mlp([2, 8, 2], dropout=True)
    params, state = jax.vmap(net.init)(jax.random.split(jax.random.key(0), 3))
    kw = dict(key=jax.random.key(1), epochs=1, batch_size=16, stacked=True, state=state)
    with pytest.raises(ValueError, match="missing 'dropout'"):
        train.sweep(net, params, ds, hp={"lr": 0.1}, **kw)
    with pytest.raises(ValueError, match="'lamda', which nothing reads"):
        train.sweep(net, params, ds, hp={"lr": 0.1, "dropout": 0.2, "lamda": 1.0}, **kw)
