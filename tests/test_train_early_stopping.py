"""Early stopping, validation splits and augmentation inside the one compiled run of
``train.fit``/``train.sweep``: a stopped run equals a run trained exactly to its stop epoch, the
restored parameters are the best epoch's, the stop and best epochs are those of the pure rule
(``tests/test_stopping.py`` checks it against Keras), nothing recompiles when the rule's numbers
change, and augmentation draws a fresh key for every minibatch, never one used before."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import augment, data, models, train

EPOCHS = 24


@pytest.fixture(scope="module")
def setup():
    ds = data.with_validation(data.digits(n_test=300), 300, seed=0)
    ds = data.Dataset(ds.x_train[:400], ds.y_train[:400], ds.x_test, ds.y_test, ds.x_val, ds.y_val)
    model = models.mlp([64, 32, 10])
    params, _ = model.init(jax.random.key(0))
    return ds, model, params


def _fit(setup, **kw):
    ds, model, params = setup
    args = dict(key=jax.random.key(1), hp={"lr": 0.5}, epochs=EPOCHS, batch_size=50) | kw
    return train.fit(model, params, ds, **args)


def _close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **({"rtol": 1e-6, "atol": 1e-7} | kw))


ES = train.EarlyStopping(monitor="val_loss", patience=2)


def test_validation_split_is_reported_every_epoch(setup):
    ds, model, _ = setup
    run = _fit(setup, epochs=3)
    assert {"val_loss", "val_acc", "test_loss", "train_loss"} <= set(run.history)
    logits, _ = model.apply(run.params, {}, ds.x_val, key=None, train=False, hp={})
    np.testing.assert_allclose(
        run.history["val_loss"][-1], train.cross_entropy(logits, ds.y_val), rtol=1e-5
    )
    assert not np.allclose(run.history["val_loss"], run.history["test_loss"])


def test_stop_and_best_are_the_rules_epochs(setup):
    full = _fit(setup)
    stopped = _fit(setup, early_stopping=ES)
    want = train.early_stopping(full.history["val_loss"], patience=2)
    assert (int(stopped.stop_epoch), int(stopped.best_epoch)) == tuple(map(int, want))
    assert 0 < int(stopped.stop_epoch) < EPOCHS - 1, "the fixture should stop mid-run"


def test_frozen_run_equals_a_run_trained_to_the_stop_epoch(setup):
    stopped = _fit(setup, early_stopping=ES)
    s = int(stopped.stop_epoch)
    short = _fit(setup, epochs=s + 1)
    _close(stopped.params, short.params)
    for name, values in stopped.history.items():
        np.testing.assert_allclose(values[: s + 1], short.history[name], rtol=1e-6, atol=1e-7)
        frozen = np.repeat(values[s : s + 1], EPOCHS - s - 1, axis=0)
        np.testing.assert_array_equal(values[s + 1 :], frozen)  # after the stop: no change


def test_restored_parameters_are_the_best_epochs(setup):
    restored = _fit(setup, early_stopping=ES._replace(restore_best_weights=True))
    b = int(restored.best_epoch)
    assert b < int(restored.stop_epoch)
    _close(restored.params, _fit(setup, epochs=b + 1).params)


def test_restore_without_a_stop_restores_the_best(setup):
    """Keras 3 restores at the end of training, stopped or not."""
    es = train.EarlyStopping("val_loss", patience=EPOCHS, restore_best_weights=True)
    run = _fit(setup, early_stopping=es)
    full = _fit(setup)
    assert int(run.stop_epoch) == -1
    b = int(np.nanargmin(full.history["val_loss"]))
    assert int(run.best_epoch) == b
    _close(run.params, _fit(setup, epochs=b + 1).params)


def test_nothing_monitored_keeps_the_last_parameters(setup):
    es = train.EarlyStopping("val_loss", patience=1, restore_best_weights=True)
    run = _fit(setup, epochs=4, early_stopping=es._replace(start_from_epoch=10))
    assert (int(run.stop_epoch), int(run.best_epoch)) == (-1, 3)
    _close(run.params, _fit(setup, epochs=4).params)


def test_max_mode_on_accuracy(setup):
    full = _fit(setup)
    es = train.EarlyStopping("val_acc", patience=1, min_delta=0.01)
    run = _fit(setup, early_stopping=es)
    want = train.early_stopping(full.history["val_acc"], patience=1, min_delta=0.01, mode="max")
    assert (int(run.stop_epoch), int(run.best_epoch)) == tuple(map(int, want))


def test_the_rules_numbers_do_not_recompile(setup):
    _fit(setup, early_stopping=ES)
    before = train.compile_count()
    for es in (
        ES._replace(patience=0),
        ES._replace(patience=5, min_delta=0.01),
        ES._replace(baseline=0.2, start_from_epoch=3),
    ):
        _fit(setup, early_stopping=es)
    assert train.compile_count() == before


def test_each_run_of_a_sweep_stops_at_its_own_epoch(setup):
    ds, model, params = setup
    lrs = [0.05, 0.5, 1.0]
    es = ES._replace(restore_best_weights=True)
    kw = dict(key=jax.random.key(1), epochs=EPOCHS, batch_size=50, early_stopping=es)
    swept = train.sweep(model, params, ds, hp={"lr": jnp.asarray(lrs)}, **kw)
    assert swept.stop_epoch.shape == (3,)
    for i, lr in enumerate(lrs):
        one = train.fit(model, params, ds, hp={"lr": lr}, **kw)
        assert int(one.stop_epoch) == swept.stop_epoch[i]
        assert int(one.best_epoch) == swept.best_epoch[i]
        _close(jax.tree.map(lambda x, i=i: x[i], swept.params), one.params, rtol=1e-4, atol=1e-5)
    assert len(set(swept.stop_epoch.tolist())) > 1, "the runs should stop at different epochs"


def test_each_run_of_a_stacked_sweep_stops_at_its_own_epoch(setup):
    """A population (own initial parameters and key per run) stops run by run like ``fit``."""
    ds, model, _ = setup
    inits = [model.init(jax.random.key(s))[0] for s in (3, 4, 5)]
    keys = jax.random.split(jax.random.key(7), 3)
    lrs = [0.2, 0.5, 1.0]
    es = ES._replace(restore_best_weights=True)
    kw = dict(epochs=EPOCHS, batch_size=50, early_stopping=es)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *inits)
    swept = train.sweep(
        model, stacked, ds, key=keys, hp={"lr": jnp.asarray(lrs)}, stacked=True, **kw
    )
    assert swept.stop_epoch.shape == (3,)
    for i in range(3):
        one = train.fit(model, inits[i], ds, key=keys[i], hp={"lr": lrs[i]}, **kw)
        assert (int(one.stop_epoch), int(one.best_epoch)) == (
            swept.stop_epoch[i],
            swept.best_epoch[i],
        )
        _close(jax.tree.map(lambda x, i=i: x[i], swept.params), one.params, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(swept.history["val_loss"][i], one.history["val_loss"], rtol=1e-4)
    assert len(set(swept.stop_epoch.tolist())) > 1, "the runs should stop at different epochs"


def _halves(setup, k, es):
    """``k`` epochs without early stopping, then the rest of the run resumed with ``es``."""
    first = _fit(setup, epochs=k)
    ds, model, _ = setup
    rest = train.fit(
        model, first.params, ds, key=jax.random.key(1), hp={"lr": 0.5}, epochs=EPOCHS - k,
        batch_size=50, opt_state=first.opt_state, first_epoch=k, early_stopping=es,
    )  # fmt: skip
    return first, rest


def test_resuming_restarts_the_rule_and_keeps_the_epoch_numbers(setup):
    """Keras's ``fit(initial_epoch=k)``: ``wait`` and ``best`` start afresh (on_train_begin), the
    epochs keep their numbers (stop and best epochs count from the run's start)."""
    full = _fit(setup).history["val_loss"]
    k = 4
    _, rest = _halves(setup, k, ES._replace(restore_best_weights=True))
    stop, best = (int(v) for v in train.early_stopping(full[k:], patience=2))
    assert stop >= 0, "the fixture should stop in the second half"
    assert (int(rest.stop_epoch), int(rest.best_epoch)) == (k + stop, k + best)
    np.testing.assert_allclose(rest.history["val_loss"][: stop + 1], full[k : k + stop + 1],
                               rtol=1e-4)  # fmt: skip
    # the restored parameters are those of epoch k + best of the one-go run
    ds, model, params = setup
    to_best = _fit(setup, epochs=k + best + 1)
    _close(rest.params, to_best.params, rtol=1e-4, atol=1e-5)


def test_resuming_counts_start_from_epoch_from_the_runs_start(setup):
    """``start_from_epoch`` is an epoch of the run (Keras compares it with its absolute ``epoch``):
    a resumed call that starts at epoch k monitors from max(start_from_epoch, k)."""
    full = _fit(setup).history["val_loss"]
    k, differs = 4, False
    for start in (2, 6, 9):
        _, rest = _halves(setup, k, ES._replace(patience=1, start_from_epoch=start))
        tail = full[k:]
        want = train.early_stopping(tail, patience=1, start_from_epoch=max(start - k, 0))
        want = tuple(int(v) + k for v in want) if int(want[0]) >= 0 else (-1, int(want[1]) + k)
        assert (int(rest.stop_epoch), int(rest.best_epoch)) == want, start
        relative = train.early_stopping(tail, patience=1, start_from_epoch=start)
        differs |= (int(relative[0]), int(relative[1])) != (want[0] - k, want[1] - k)
    assert differs, "the fixture should tell absolute from per-call epoch numbers apart"


def test_monitor_must_exist(setup):
    ds, model, params = setup
    no_val = data.Dataset(ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    kw = dict(key=jax.random.key(1), hp={"lr": 0.1}, epochs=2, batch_size=50)
    with pytest.raises(ValueError, match="no validation split: hold one out with data.with_val"):
        train.fit(model, params, no_val, early_stopping=ES, **kw)
    with pytest.raises(ValueError, match=r"monitor='val_los'.*'val_loss'"):
        train.fit(model, params, ds, early_stopping=ES._replace(monitor="val_los"), **kw)
    with pytest.warns(UserWarning, match="test split"):
        train.fit(model, params, ds, early_stopping=ES._replace(monitor="test_loss"), **kw)
    with pytest.raises(TypeError, match="EarlyStopping"):
        train.fit(model, params, ds, early_stopping={"patience": 2}, **kw)
    with pytest.raises(ValueError, match="patience must be an integer >= 0"):
        train.fit(model, params, ds, early_stopping=ES._replace(patience=-1), **kw)


def test_with_validation_holds_out_disjoint_examples():
    ds = data.digits(n_test=300)
    split = data.with_validation(ds, 200, seed=3)
    assert split.x_val.shape == (200, 64) and split.x_train.shape[0] == ds.x_train.shape[0] - 200
    both = np.concatenate([np.asarray(split.x_train), np.asarray(split.x_val)])
    assert len({r.tobytes() for r in both}) == len({r.tobytes() for r in np.asarray(ds.x_train)})
    np.testing.assert_array_equal(split.x_test, ds.x_test)
    with pytest.raises(ValueError, match="n_val must be < the number of training examples"):
        data.with_validation(ds, ds.x_train.shape[0])
    with pytest.raises(ValueError, match="already has a validation split"):
        data.with_validation(split, 10)


# --------------------------------------------------------------------------- augmentation


def test_augmentation_keys_are_never_reused():
    """Record every key the model and the augmentation see over 3 epochs: all distinct."""
    ds = data.toy_2d("moons", 40, seed=0)
    seen = {"model": [], "augment": []}

    def record(kind):
        return lambda k: seen[kind].append(tuple(np.asarray(k).tolist()))

    base = models.mlp([2, 8, 2])

    def apply(params, state, x, *, key=None, train=False, hp=None):
        if train:
            jax.debug.callback(record("model"), jax.random.key_data(key))
        return base.apply(params, state, x, key=key, train=train, hp=hp)

    def aug(key, x, hp):
        jax.debug.callback(record("augment"), jax.random.key_data(key))
        return augment.noise(key, x, hp["noise"])

    model = models.Model(base.init, apply, "xent")
    params, _ = model.init(jax.random.key(0))
    run = train.fit(
        model,
        params,
        ds,
        key=jax.random.key(1),
        hp={"lr": 0.1, "noise": 0.1},
        epochs=3,
        batch_size=5,
        augment=aug,
    )
    jax.block_until_ready(run.params)
    steps = 3 * (20 // 5)
    assert len(seen["augment"]) == steps and len(seen["model"]) == steps
    every = seen["augment"] + seen["model"]
    assert len(set(every)) == len(every)


def test_a_deterministic_augmentation_equals_training_on_transformed_data():
    ds = data.d2l_weight_decay_data(seed=0)
    model = models.linear_regression(200)
    params, _ = model.init(jax.random.key(1))
    kw = dict(key=jax.random.key(2), epochs=5, batch_size=5)

    def plus_c(key, x, hp):
        del key
        return x + hp["c"]

    aug = train.fit(model, params, ds, hp={"lr": 0.003, "c": 0.5}, augment=plus_c, **kw)
    moved = data.Dataset(ds.x_train + 0.5, ds.y_train, ds.x_test, ds.y_test)
    ref = train.fit(model, params, moved, hp={"lr": 0.003}, **kw)
    _close(aug.params, ref.params, rtol=1e-5, atol=1e-6)
    # the history evaluates the data as it is, not the augmented batches
    clean = np.mean((np.asarray(ds.x_train) @ aug.params["w"] + aug.params["b"] - ds.y_train) ** 2)
    np.testing.assert_allclose(aug.history["train_loss"][-1], clean / 2, rtol=1e-4)


def test_augmentation_strength_is_traced_and_checked_by_the_hp_contract():
    ds = data.toy_2d("moons", 40, seed=0)
    model = models.mlp([2, 8, 2])
    params, _ = model.init(jax.random.key(0))

    def aug(key, x, hp):
        return augment.noise(key, x, hp["noise"])

    kw = dict(key=jax.random.key(1), epochs=2, batch_size=10, augment=aug)
    zero = train.fit(model, params, ds, hp={"lr": 0.1, "noise": 0.0}, **kw)
    before = train.compile_count()
    noisy = train.fit(model, params, ds, hp={"lr": 0.1, "noise": 0.5}, **kw)
    assert train.compile_count() == before
    assert not np.allclose(zero.params["dense"][0]["w"], noisy.params["dense"][0]["w"])
    plain = train.fit(
        model, params, ds, hp={"lr": 0.1}, key=jax.random.key(1), epochs=2, batch_size=10
    )
    _close(zero.params, plain.params)  # noise 0 changes nothing
    with pytest.raises(ValueError, match=r"hp is missing 'noise' \(read by the augmentation\)"):
        train.fit(model, params, ds, hp={"lr": 0.1}, **kw)
    with pytest.raises(TypeError, match="augment must be a function"):
        train.fit(
            model,
            params,
            ds,
            hp={"lr": 0.1},
            key=jax.random.key(1),
            epochs=1,
            batch_size=10,
            augment=3,
        )
