"""Chapter 01's central demo, from the library: d2l v0.17 section 4.5 reproduced exactly.

The reference numbers come from d2l's own run of the same setup (lambda=0: train loss near 0,
test loss stays large; lambda=3: the test loss falls) and an independent numpy implementation of
one epoch of minibatch SGD with the penalty.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import data, models, regularization, train


def l2_on_weights(params, hp):
    return regularization.l2_penalty(params, hp["lam"])


@pytest.fixture(scope="module")
def setup():
    ds = data.d2l_weight_decay_data(seed=0)
    model = models.linear_regression(200)
    params, _ = model.init(jax.random.key(1))
    return ds, model, params


def fit(setup, lam, lr=0.003, epochs=100):
    ds, model, params = setup
    return train.fit(
        model,
        params,
        ds,
        key=jax.random.key(2),
        hp={"lr": lr, "lam": lam},
        epochs=epochs,
        batch_size=5,
        penalty=l2_on_weights,
    )


def test_data_matches_d2l_setup(setup):
    ds, _, params = setup
    assert ds.x_train.shape == (20, 200) and ds.x_test.shape == (100, 200)
    assert params["w"].shape == (200,) and float(params["b"]) == 0.0
    # y = 0.05 + 0.01 * sum(x) + N(0, 0.01^2): the residual has std ~0.01
    for X, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        resid = np.asarray(y, np.float64) - (0.05 + 0.01 * np.asarray(X, np.float64).sum(axis=1))
        assert 0.004 < resid.std() < 0.02
    # w ~ N(0, 1)
    assert 0.8 < float(jnp.std(params["w"])) < 1.2


def test_lambda_zero_overfits_lambda_three_generalizes(setup):
    h0 = fit(setup, 0.0).history
    h3 = fit(setup, 3.0).history
    assert h0["train_loss"].shape == (100,)
    assert h0["train_loss"][-1] < 1e-3
    assert h0["test_loss"][-1] > 10
    assert h3["test_loss"][-1] < 0.5
    assert h3["w_norm"][-1] < 0.1 * h0["w_norm"][-1]
    # the penalty is what shrinks ||w||: norms decrease monotonically in lambda
    norms = [fit(setup, lam).history["w_norm"][-1] for lam in (0.0, 0.3, 3.0)]
    assert norms[0] > norms[1] > norms[2]


def test_first_epoch_matches_numpy_reference(setup):
    """One epoch of d2l's loop in float64 numpy, with the same shuffle as the engine."""
    ds, _, params = setup
    lam, lr = 3.0, 0.003
    run = fit(setup, lam, epochs=1)
    idx = np.asarray(
        data.epoch_batches(jax.random.fold_in(jax.random.fold_in(jax.random.key(2), 0), 0), 20, 5)
    )
    X, y = np.asarray(ds.x_train, np.float64), np.asarray(ds.y_train, np.float64)
    w, b = np.asarray(params["w"], np.float64), 0.0
    for batch in idx:
        err = X[batch] @ w + b - y[batch]
        gw = X[batch].T @ err / len(batch) + lam * w
        gb = err.mean()
        w, b = w - lr * gw, b - lr * gb
    np.testing.assert_allclose(np.asarray(run.params["w"]), w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(run.params["b"]), b, rtol=1e-4, atol=1e-6)
    train_loss = np.mean((X @ w + b - y) ** 2 / 2)
    np.testing.assert_allclose(run.history["train_loss"][0], train_loss, rtol=1e-4)


def test_changing_lambda_does_not_recompile(setup):
    fit(setup, 0.0)
    before = train.compile_count()
    for lam in (0.01, 0.5, 3.0, 7.0):
        fit(setup, lam)
    assert train.compile_count() == before


def test_sweep_of_64_lambdas_matches_individual_fits(setup):
    ds, model, params = setup
    lams = np.linspace(0.0, 6.0, 64).astype(np.float32)
    swept = train.sweep(
        model,
        params,
        ds,
        key=jax.random.key(2),
        hp={"lr": 0.003, "lam": lams},
        epochs=100,
        batch_size=5,
        penalty=l2_on_weights,
    )
    assert swept.history["test_loss"].shape == (64, 100)
    for i in (0, 1, 17, 32, 50, 63):
        single = fit(setup, float(lams[i]))
        np.testing.assert_allclose(
            swept.history["test_loss"][i], single.history["test_loss"], rtol=2e-4, atol=1e-6
        )
        np.testing.assert_allclose(
            np.asarray(swept.params["w"][i]), np.asarray(single.params["w"]), rtol=1e-4, atol=1e-5
        )
    # more penalty, smaller final weights, across the whole sweep
    assert np.all(np.diff(swept.history["w_norm"][:, -1]) < 0)


def test_too_large_learning_rate_is_reported_not_raised(setup):
    with pytest.warns(RuntimeWarning, match="diverged"):
        run = fit(setup, 0.0, lr=5.0)
    first = int(run.diverged_at())
    assert 1 <= first <= 100
    assert not np.isfinite(run.history["train_loss"][first - 1])
    assert np.all(np.isfinite(run.history["train_loss"][: first - 1]))
    # a stable run does not warn and reports 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert int(fit(setup, 3.0).diverged_at()) == 0
