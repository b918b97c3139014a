"""Chapter 02's demo code (lessonlib.demos.ch02_dropout: MC dropout, the panels) and its exercise
judges on right and typical wrong answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import models
from lessonlib.demos import ch02_dropout as demo
from lessonlib.exercises import evaluate, get


def _net():
    model = models.mlp([4, 16, 3], dropout=True)
    params, _ = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 4), jnp.float32)
    return model, params, x


def test_mc_passes_match_independent_loop_with_fold_in_keys():
    model, params, x = _net()
    probs = demo.mc_dropout_probs(
        model, params, x, key=jax.random.key(2), hp={"dropout": 0.5}, passes=7
    )
    assert probs.shape == (7, 6, 3)
    for t in range(7):
        out, _ = model.apply(
            params,
            {},
            x,
            key=jax.random.fold_in(jax.random.key(2), t),
            train=True,
            hp={"dropout": jnp.float32(0.5)},
        )
        np.testing.assert_allclose(probs[t], jax.nn.softmax(out, axis=-1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(probs[0], probs[1])  # fresh masks per pass


def test_mc_with_rate_zero_equals_eval_mode():
    model, params, x = _net()
    probs = demo.mc_dropout_probs(
        model, params, x, key=jax.random.key(3), hp={"dropout": 0.0}, passes=3
    )
    out, _ = model.apply(params, {}, x, key=None, train=False, hp={"dropout": 0.0})
    for t in range(3):
        np.testing.assert_allclose(probs[t], jax.nn.softmax(out, -1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("passes", [0, -1, 2.5, True])
def test_mc_rejects_bad_passes(passes):
    model, params, x = _net()
    with pytest.raises(ValueError, match="passes"):
        demo.mc_dropout_probs(
            model, params, x, key=jax.random.key(0), hp={"dropout": 0.5}, passes=passes
        )


def test_running_mean_accuracy_against_direct_computation():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(5, 20))  # (passes, n, classes)
    labels = rng.integers(0, 4, 20)
    got = demo.running_mean_accuracy(probs, labels)
    want = [(probs[: t + 1].mean(0).argmax(-1) == labels).mean() for t in range(5)]
    np.testing.assert_allclose(got, want)
    with pytest.raises(ValueError, match="probs"):
        demo.running_mean_accuracy(probs[0], labels)


def test_predictive_entropy_closed_forms():
    p = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(demo.predictive_entropy(p), [0.0, np.log(3), np.log(2)], atol=1e-12)


# --------------------------------------------------------------------------- exercise judges


def _keep_with_p(x, rate, *, key=None, train=True):
    if not 0 <= rate < 1:
        raise ValueError("rate")
    if not train or rate == 0:
        return x
    if key is None:
        raise ValueError("key")
    return x * jax.random.bernoulli(key, rate, x.shape).astype(x.dtype) / (1 - rate)


def _fixed_key(x, rate, *, key=None, train=True):
    if not 0 <= rate < 1:
        raise ValueError("rate")
    if not train or rate == 0:
        return x
    mask = jax.random.bernoulli(jax.random.PRNGKey(0), 1 - rate, x.shape)
    return x * mask.astype(x.dtype) / (1 - rate)


def test_dropout_exercise_accepts_library_and_names_mistakes():
    from lessonlib.layers import dropout

    assert evaluate(get("02.dropout"), dropout, hidden=True).passed
    msg = evaluate(get("02.dropout"), _keep_with_p).message()
    assert "x is 0.43" in msg and "probability p instead of 1-p" in msg
    msg = evaluate(get("02.dropout"), _fixed_key).message()
    assert "same mask" in msg


def test_fixed_dropout_exercise():
    from lessonlib.exercises.ch02 import _book_fix_reference

    assert evaluate(get("02.fixed_dropout"), _book_fix_reference, hidden=True).passed

    def seed(x, dropout_prob, is_training, *, key):
        if is_training:
            mask = jax.random.bernoulli(jax.random.PRNGKey(0), dropout_prob, x.shape)
            return x * mask.astype(x.dtype) / (1 - dropout_prob)
        return x

    assert "probability p instead of 1-p" in evaluate(get("02.fixed_dropout"), seed).message()


def test_mc_predict_exercise():
    from lessonlib.exercises.ch02 import _mc_reference

    assert evaluate(get("02.mc_predict"), _mc_reference, hidden=True).passed

    def mean_logits(forward, x, *, key, passes):
        logits = jnp.stack([forward(x, jax.random.fold_in(key, t)) for t in range(passes)])
        return jax.nn.softmax(logits.mean(0), -1)

    assert "averaged the logits" in evaluate(get("02.mc_predict"), mean_logits).message()


# --------------------------------------------------------------------------- panels


def test_sweep_panel_shows_the_row_of_the_chosen_rate():
    rates = [0.0, 0.1, 0.2, 0.3]
    hist = {
        "train_acc": np.linspace(0.5, 1.0, 20).reshape(4, 5),
        "test_acc": np.linspace(0.4, 0.8, 20).reshape(4, 5),
    }
    panel = demo.sweep_panel(hist, rates, p=0.1)
    panel.update(p=0.3)
    line_test = panel.fig.axes[0].lines[1]
    np.testing.assert_array_equal(line_test.get_ydata(), hist["test_acc"][3])
    assert panel.controls["p"].max == 0.3 and panel.controls["p"].step == pytest.approx(0.1)
    with pytest.raises(ValueError, match="evenly spaced"):
        demo.sweep_panel(hist, [0.0, 0.1, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"p must be in \[0, 0.3\]"):
        demo.sweep_panel(hist, rates, p=0.5)


def test_live_panel_retrains_at_every_move_without_recompiling():
    from lessonlib import data, train

    moons = data.toy_2d("moons", 60, seed=0, noise=0.3, train_share=0.5)
    model = models.mlp([2, 8, 2], dropout=True)
    params, _ = model.init(jax.random.key(0))
    seen = []

    def fit(p):
        seen.append(p)
        return train.fit(
            model,
            params,
            moons,
            key=jax.random.key(1),
            hp={"lr": 0.5, "dropout": p},
            epochs=10,
            batch_size=30,
        )

    panel = demo.live_panel(fit, moons, model, epochs=10, p=0.0, steps=8)
    before = train.compile_count()
    panel.update(p=0.5)
    # shown, warmed at a neighbour and redrawn at the current value, then the move
    assert seen == [0.05, 0.0, 0.0, 0.5] and train.compile_count() == before
    assert "p = 0.50" in panel.fig.axes[1].title.get_text()
