"""Tests for lessonlib.lr_finder: the LR range test is pure, stops after divergence and picks a
rate below the stability limit of problems whose limit is known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lessonlib.lr_finder import lr_finder, make_sgd_step, pick_lr, smooth_losses


def linear_regression_batches(n_batches=100, batch=32, d=5, seed=0):
    rng = np.random.default_rng(seed)
    w_true = 3 * rng.normal(size=d).astype(np.float32)
    X = rng.normal(size=(n_batches, batch, d)).astype(np.float32)
    y = X @ w_true + 0.1 * rng.normal(size=(n_batches, batch)).astype(np.float32)
    return jnp.asarray(X), jnp.asarray(y)


def mse(params, batch):
    X, y = batch
    return jnp.mean((X @ params["w"] + params["b"] - y) ** 2)


def fresh_params(d=5):
    return {"w": jnp.zeros(d, jnp.float32), "b": jnp.zeros((), jnp.float32)}


def test_lr_finder_leaves_params_unchanged_and_is_pure():
    params = fresh_params()
    before = jax.tree.map(np.array, params)
    batches = linear_regression_batches()
    step = make_sgd_step(mse)
    lrs, losses = lr_finder(step, params, batches, min_lr=1e-4, max_lr=10.0)
    jax.tree.map(np.testing.assert_array_equal, params, before)
    lrs2, losses2 = lr_finder(step, params, batches, min_lr=1e-4, max_lr=10.0)
    np.testing.assert_array_equal(losses, losses2)
    # The sweep is exponential from min_lr to max_lr, one rate per batch.
    assert lrs.shape == losses.shape == (100,)
    np.testing.assert_allclose(lrs, np.logspace(-4, 1, 100), rtol=1e-5)
    # The first recorded loss is the untrained model's loss on the first batch.
    first = mse(params, jax.tree.map(lambda a: a[0], batches))
    assert float(losses[0]) == pytest.approx(float(first), rel=1e-6)


def test_lr_finder_stops_after_divergence():
    lrs, losses = lr_finder(
        make_sgd_step(mse), fresh_params(), linear_regression_batches(), min_lr=1e-4, max_lr=10.0
    )
    finite = np.isfinite(np.asarray(losses))
    assert finite[:50].all()
    first_nan = int(np.argmin(finite))
    assert 0 < first_nan < 100 and not finite[first_nan:].any()


def test_lr_finder_picks_a_sensible_rate_for_linear_regression():
    # For mean squared error with X ~ N(0, I) the Hessian is about 2 I: plain SGD diverges above
    # lr = 2 / 2 = 1 and the fastest stable rate is about 0.5. The pick must be below 1 and
    # within a factor of 10 of 0.5 (100 for the noisier steepest rule); training with it works.
    params, batches = fresh_params(), linear_regression_batches()
    step = make_sgd_step(mse)
    lrs, losses = lr_finder(step, params, batches, min_lr=1e-4, max_lr=10.0)
    assert 0.5 / 10 < float(pick_lr(lrs, losses)) < 1.0
    assert 0.5 / 100 < float(pick_lr(lrs, losses, rule="steepest")) < 1.0

    lr = pick_lr(lrs, losses)
    final, _ = jax.lax.scan(lambda p, b: step(p, b, lr), params, batches)
    all_data = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), batches)
    assert float(mse(final, all_data)) < 0.05 * float(mse(params, all_data))


def test_lr_finder_on_a_quadratic_stays_below_the_stability_limit():
    # f(w) = h/2 * w^2: gradient descent diverges for lr > 2/h; the pick must be below that.
    h = 40.0

    def step(w, batch, lr):
        del batch
        loss = 0.5 * h * w**2
        return w - lr * h * w, loss

    lrs, losses = lr_finder(step, jnp.float32(1.0), jnp.zeros(60), min_lr=1e-5, max_lr=1.0)
    lr = float(pick_lr(lrs, losses, beta=0.0))
    assert 1e-3 / h < lr < 2.0 / h


def test_lr_finder_carries_optimizer_state():
    opt = optax.adam(1.0)  # the learning rate is applied by the finder via scale below

    def step(carry, batch, lr):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(mse)(params, batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, jax.tree.map(lambda u: lr * u, updates))
        return (params, opt_state), loss

    params = fresh_params()
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int32 counts and floats
        lrs, losses = lr_finder(
            step, (params, opt.init(params)), linear_regression_batches(), min_lr=1e-4, max_lr=10.0
        )
    assert np.isfinite(np.asarray(losses[:40])).all()
    assert 1e-3 < float(pick_lr(lrs, losses)) < 1.0


def test_pick_lr_rules_on_a_known_curve():
    # Loss against x = log10(lr), drawn by hand: flat, falling slowly, falling fastest between
    # 1e-3 and 10**-2.5, flattening, minimum at 1e-1, then shooting up.
    lrs = jnp.logspace(-5, 0, 51)
    x = np.log10(np.asarray(lrs))
    loss = np.interp(x, [-5, -4, -3, -2.5, -1, 0], [3.0, 3.0, 2.5, 1.5, 1.2, 5.0])
    loss = jnp.asarray(loss, jnp.float32)
    assert float(pick_lr(lrs, loss, beta=0.0)) == pytest.approx(0.1 / 10, rel=1e-4)
    assert float(pick_lr(lrs, loss, beta=0.0, divisor=1.0)) == pytest.approx(0.1, rel=1e-4)
    steep = float(pick_lr(lrs, loss, rule="steepest", beta=0.0))
    assert -3.0 < np.log10(steep) < -2.5


def test_pick_lr_ignores_nan_after_divergence():
    lrs = jnp.logspace(-4, 0, 5)
    losses = jnp.array([1.0, 0.8, 0.3, jnp.nan, jnp.nan])
    assert float(pick_lr(lrs, losses, beta=0.0, skip_start=0)) == pytest.approx(1e-3, rel=1e-5)


def test_make_sgd_step_is_plain_sgd():
    params, batches = fresh_params(), linear_regression_batches(n_batches=1)
    batch = jax.tree.map(lambda a: a[0], batches)
    new, loss = make_sgd_step(mse)(params, batch, 0.1)
    grads = jax.grad(mse)(params, batch)
    jax.tree.map(lambda n, p, g: np.testing.assert_allclose(n, p - 0.1 * g), new, params, grads)
    assert float(loss) == pytest.approx(float(mse(params, batch)))


def test_smooth_losses_matches_a_python_loop():
    losses = np.array([3.0, 2.0, 2.5, 1.0, np.nan, 0.5], np.float32)
    avg, want = 0.0, []
    for i, loss in enumerate(losses):
        avg = 0.8 * avg + 0.2 * (loss if np.isfinite(loss) else np.inf)
        want.append(avg / (1 - 0.8 ** (i + 1)))
    np.testing.assert_allclose(smooth_losses(jnp.asarray(losses), beta=0.8), want, rtol=1e-6)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: lr_finder(
                lambda p, b, lr: (p, 0.0), 0.0, jnp.ones((4, 2)), min_lr=1.0, max_lr=0.1
            ),
            r"min_lr must be < max_lr \(= 0.1\), got 1",
        ),
        (
            lambda: lr_finder(lambda p, b, lr: (p, 0.0), 0.0, jnp.ones((4, 2)), min_lr=0.0),
            "min_lr must be > 0, got 0",
        ),
        (
            lambda: lr_finder(lambda p, b, lr: (p, 0.0), 0.0, jnp.ones((4, 2)), stop_factor=1),
            "stop_factor must be > 1, got 1",
        ),
        (lambda: pick_lr(jnp.ones(3), jnp.ones(3), rule="valley"), "rule must be one of"),
        (lambda: pick_lr(jnp.ones(3), jnp.ones(3), beta=1.0), r"beta must be in \[0, 1\)"),
        (
            lambda: pick_lr(jnp.ones(3), jnp.ones(3), skip_start=3),
            r"skip_start must be in \[0, 3\)",
        ),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# --------------------------------------------------------------------------- chapter 07 exercise
def test_exercise_pick_catches_missing_bias_correction():
    from lessonlib import exercises

    def no_correction(lrs, losses, beta=0.9):
        avg, smoothed = 0.0, []
        for loss in losses:
            avg = beta * avg + (1 - beta) * loss
            smoothed.append(avg)
        return lrs[jnp.nanargmin(jnp.stack(smoothed))] / 10

    ex = exercises.get("07.pick_learning_rate")
    assert not exercises.evaluate(ex, no_correction, hidden=True).passed
