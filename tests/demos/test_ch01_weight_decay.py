"""lessonlib.demos.ch01_weight_decay and the chapter 01 exercise specs, against independent references."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import train
from lessonlib.demos import ch01_weight_decay as playground
from lessonlib.exercises import Case, Outcome, evaluate, get


def test_soft_threshold_is_the_prox_of_abs():
    """Closed form vs brute-force argmin of 1/2 (w - v)^2 + t |w| on a fine grid."""
    grid = np.linspace(-4, 4, 800_001)
    for v in (-3.0, -0.4, 0.0, 0.2, 1.7):
        for t in (0.0, 0.3, 1.0):
            brute = grid[np.argmin(0.5 * (grid - v) ** 2 + t * np.abs(grid))]
            assert abs(float(playground.soft_threshold(jnp.float32(v), t)) - brute) < 1e-4
    with pytest.raises(ValueError, match="t must be >= 0"):
        playground.soft_threshold(jnp.ones(3), -0.1)


def test_prox_l1_thresholds_weights_only():
    params = {
        "dense": [{"w": jnp.array([[0.05, -2.0], [0.5, -0.01]]), "b": jnp.array([0.01, -0.01])}]
    }
    out = playground.prox_l1(params, {"lr": jnp.float32(0.1), "l1": jnp.float32(1.0)})
    np.testing.assert_allclose(out["dense"][0]["w"], [[0.0, -1.9], [0.4, 0.0]], atol=1e-7)
    np.testing.assert_array_equal(out["dense"][0]["b"], params["dense"][0]["b"])  # untouched
    assert playground.count_zeros(out) == (2, 4)
    same = playground.prox_l1(params, {"lr": 0.1, "l1": 0.0})
    np.testing.assert_array_equal(same["dense"][0]["w"], params["dense"][0]["w"])


def test_reg_hp_validates():
    assert playground.reg_hp("L1", 0.5) == {"l1": 0.5, "l2": 0.0}
    assert playground.reg_hp("L2", 0.5) == {"l1": 0.0, "l2": 0.5}
    assert playground.reg_hp("none", 0.5) == {"l1": 0.0, "l2": 0.0}
    with pytest.raises(ValueError, match="reg must be one of"):
        playground.reg_hp("L3", 0.1)
    with pytest.raises(ValueError, match="lam must be"):
        playground.reg_hp("L2", -1.0)
    with pytest.raises(ValueError, match="lr must be"):
        playground.train_classifier(lr=0.0)
    with pytest.raises(ValueError, match="name must be one of"):
        playground.train_classifier("squares")


def test_playground_float_settings_do_not_recompile_and_l1_gives_zeros():
    base = playground.train_classifier("moons", noise=0.2, hidden=(8, 8), reg="L2", lam=1e-3)
    assert base.run.history["train_acc"][-1] > 0.9
    before = playground.compile_count()
    runs = {
        (reg, lam): playground.train_classifier(
            "moons", noise=noise, hidden=(8, 8), reg=reg, lam=lam
        )
        for reg, lam, noise in (
            ("L2", 0.1, 0.2),
            ("L1", 0.01, 0.2),
            ("none", 0.0, 0.3),
            ("L2", 1.0, 0.1),
        )
    }
    runs[("circles", 0)] = playground.train_classifier("circles", hidden=(8, 8))
    assert playground.compile_count() == before
    zeros, total = playground.count_zeros(runs[("L1", 0.01)].run.params)
    assert 0 < zeros < total
    assert playground.count_zeros(runs[("L2", 0.1)].run.params)[0] == 0
    # a strong L2 penalty shrinks the weights
    assert runs[("L2", 1.0)].run.history["w_norm"][-1] < base.run.history["w_norm"][-1]
    # same arguments, same run
    again = playground.train_classifier("moons", noise=0.2, hidden=(8, 8), reg="L2", lam=1e-3)
    np.testing.assert_array_equal(again.run.history["test_loss"], base.run.history["test_loss"])


def test_train_share_never_recompiles():
    """The train share only changes the mask of the padded split, never an array shape."""
    playground.train_classifier("moons", train_share=0.5, hidden=(8,), epochs=30)
    before, before_train = playground.compile_count(), train.compile_count()
    shares = (0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)
    runs = [
        playground.train_classifier("moons", train_share=s, hidden=(8,), epochs=30) for s in shares
    ]
    assert playground.compile_count() == before
    assert train.compile_count() == before_train  # the playground does not go through train.fit
    assert [r.data.x_train.shape[0] for r in runs] == [round(200 * s) for s in shares]
    # the panel itself: moving its slider compiles nothing either
    panel = playground.playground_panel(epochs=30)
    before = playground.compile_count()
    for share in (0.1, 0.5, 0.9, 0.3):
        panel.update(train_share=share)
    assert playground.compile_count() == before


def _fit_as_playground(model, params, ds, reg, lam):
    """``train.fit`` with the playground's settings: full batch, lr 0.2, 60 epochs, its penalty."""
    return train.fit(
        model,
        params,
        ds,
        key=playground.run_keys(0)[1],
        hp={"lr": 0.2, **playground.reg_hp(reg, lam)},
        epochs=60,
        batch_size=int(ds.x_train.shape[0]),
        optimizer=playground.optimizer,
        penalty=playground.penalty,
        project=playground.prox_l1,
    )


def _assert_same_run(run, ref, *, rtol, atol, params_atol):
    for k in ("train_loss", "test_loss", "train_acc", "test_acc", "w_norm"):
        np.testing.assert_allclose(run.history[k], ref.history[k], rtol=rtol, atol=atol)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=params_atol),
        run.params,
        ref.params,
    )


@pytest.mark.parametrize(("share", "reg", "lam"), [(0.3, "L2", 1e-2), (0.7, "L1", 1e-2)])
def test_padded_training_equals_train_fit_on_the_same_rows(share, reg, lam):
    """Masked-mean training on the padded split = train.fit on the training rows alone."""
    res = playground.train_classifier(
        "moons", noise=0.25, train_share=share, hidden=(8, 8), reg=reg, lam=lam, epochs=60
    )
    ds = res.data
    ref = _fit_as_playground(res.model, playground.initial_params((8, 8), 0), ds, reg, lam)
    _assert_same_run(res.run, ref, rtol=2e-4, atol=1e-5, params_atol=2e-5)


def test_masked_mean():
    v, w = jnp.array([1.0, 2.0, 30.0]), jnp.array([1.0, 1.0, 0.0])
    assert float(playground.masked_mean(v, w)) == 1.5
    assert float(playground.masked_mean(v, jnp.zeros(3))) == 0.0


def test_predict_proba_is_softmax_of_logits():
    res = playground.train_classifier("circles", hidden=(4,), epochs=20)
    x = playground.grid(1.5, 5)
    assert x.shape == (25, 2)
    logits, _ = res.model.apply(res.run.params, {}, x)
    ref = 1 / (
        1 + np.exp(-(np.asarray(logits[:, 1], np.float64) - np.asarray(logits[:, 0], np.float64)))
    )
    np.testing.assert_allclose(
        playground.predict_proba(res.model, res.run.params, x), ref, rtol=1e-5
    )
    linear = playground.classifier(())
    assert len(playground.initial_params((), 0)["dense"]) == 1 and linear.loss == "xent"


# --------------------------------------------------------------------------- exercise specs


def _right_answers():
    return {
        "01.l2_penalty": lambda w, lam: lam / 2 * jnp.sum(w**2),
        "01.weight_decay_step": lambda w, g, lr, lam: (1 - lr * lam) * w - lr * g,
        "01.soft_threshold": playground.soft_threshold,
    }


@pytest.mark.parametrize("eid", ["01.l2_penalty", "01.weight_decay_step", "01.soft_threshold"])
def test_correct_answers_pass_visible_and_hidden(eid):
    assert evaluate(get(eid), _right_answers()[eid], hidden=True).passed


@pytest.mark.parametrize(
    ("eid", "wrong", "named"),
    [
        ("01.l2_penalty", lambda w, lam: lam / 2 * jnp.sum(w), "square is lost"),
        ("01.l2_penalty", lambda w, lam: lam * jnp.sum(w**2), "1/2 is missing"),
        ("01.l2_penalty", lambda w, lam: lam / 2 * jnp.mean(w**2), "mean"),
        (
            "01.weight_decay_step",
            lambda w, g, lr, lam: (1 - lam) * w - lr * g,
            "not multiplied by the learning rate",
        ),
        (
            "01.weight_decay_step",
            lambda w, g, lr, lam: (1 - lr * lam) * (w - lr * g),
            "after the gradient step",
        ),
        ("01.soft_threshold", lambda w, t: w - t * jnp.sign(w), "subgradient"),
        ("01.soft_threshold", lambda w, t: jnp.where(jnp.abs(w) > t, w, 0.0), "hard thresholding"),
    ],
)
def test_wrong_answers_fail_with_the_mistake_named(eid, wrong, named):
    report = evaluate(get(eid), wrong, hidden=True)
    assert not report.passed
    assert any(named in why for _, why in report.failures), report.message()


def test_soft_threshold_must_reject_negative_t():
    report = evaluate(
        get("01.soft_threshold"),
        lambda w, t: jnp.sign(w) * jnp.maximum(jnp.abs(w) - t, 0),
        hidden=True,
    )
    assert [c.note for c, _ in report.failures] == [
        "t < 0 must raise ValueError",
        "t = -2.5 must raise ValueError",
    ]


def test_lam_best_judge():
    from lessonlib.exercises import ch01

    ref = ch01._selection_losses()
    lams = ref["lams"]
    i_val, i_train = int(np.argmin(ref["val"])), int(np.argmin(ref["train"]))
    assert 0 < i_val < len(lams) - 1  # an interior optimum: the exercise is not "take the extreme"
    assert i_train == 0  # training loss prefers the weakest penalty
    ex = get("01.lam_best")
    assert evaluate(ex, float(lams[i_val]), hidden=True).passed
    msg = ex.judge(Case(), Outcome(value=float(lams[i_train])))
    assert msg is not None and "TRAINING" in msg
    assert "not one of" in ex.judge(Case(), Outcome(value=0.123456))
    assert "must be a number" in ex.judge(Case(), Outcome(value="0.01"))
    assert ex.judge(Case(), Outcome(error="NameError: name 'lam_best' is not defined")).startswith(
        "NameError"
    )


def test_ch00_demo_exercise():
    ex = get("00.squared_loss")
    assert evaluate(ex, lambda y_hat, y: jnp.mean((y_hat - y) ** 2 / 2), hidden=True).passed
    assert not evaluate(ex, lambda y_hat, y: jnp.mean((y_hat - y) ** 2), hidden=True).passed


def test_selection_splits_are_disjoint_and_shaped():
    train_val, train_test = playground.selection_splits()
    cfg = playground.SELECTION
    assert train_val.x_train.shape == (cfg["n_train"], 2)
    assert train_val.x_test.shape == (cfg["n_val"], 2) and train_test.x_test.shape == (
        cfg["n_test"],
        2,
    )
    np.testing.assert_array_equal(train_val.x_train, train_test.x_train)
    rows = {tuple(np.round(r, 6)) for r in np.asarray(train_val.x_test)}
    assert not rows & {tuple(np.round(r, 6)) for r in np.asarray(train_test.x_test)}
    assert jax.numpy.issubdtype(train_val.y_train.dtype, jnp.integer)


# --------------------------------------------------------------------------- keys and panels


def test_init_and_training_keys_are_split_never_shared():
    init_key, fit_key = playground.run_keys(0)
    raw = [jax.random.key_data(k).tolist() for k in (init_key, fit_key, jax.random.key(0))]
    assert len({tuple(r) for r in raw}) == 3  # two fresh keys, neither is key(0) itself
    want, _ = playground.classifier((4,)).init(init_key)
    got = playground.initial_params((4,), 0)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    for hidden in playground.ARCHITECTURES.values():  # the playground's draw, on the host
        want, _ = playground.classifier(hidden).init(init_key)
        got = playground._he_init_on_host(hidden, 0)
        jax.tree.map(np.testing.assert_array_equal, got, want)
    old, _ = playground.classifier((4,)).init(jax.random.key(0))  # the reused key of before
    assert not np.array_equal(old["dense"][0]["w"], got["dense"][0]["w"])


def test_notebook_selection_recipe_is_the_graders_sweep():
    """Exercise 4's read-only cell (split key(0) into an init and a fit key) runs the same sweep as
    ``selection_sweep``, which the grader's reference uses."""
    train_val, _ = playground.selection_splits()
    cfg = playground.SELECTION
    lams = np.asarray(cfg["lams"], np.float32)[:3]
    sel_model = playground.classifier(cfg["hidden"])
    sel_init_key, sel_fit_key = jax.random.split(jax.random.key(0))
    sel_params, _ = sel_model.init(sel_init_key)
    notebook = train.sweep(
        sel_model,
        sel_params,
        train_val,
        hp={"lr": cfg["lr"], "l1": 0.0, "l2": lams},
        key=sel_fit_key,
        epochs=cfg["epochs"],
        batch_size=60,
        optimizer=playground.optimizer,
        penalty=playground.penalty,
        project=playground.prox_l1,
    )
    grader = playground.selection_sweep(train_val, lams)
    np.testing.assert_array_equal(notebook.history["test_loss"], grader.history["test_loss"])


def test_lambda_panel_retrains_through_fit_without_recompiling():
    calls = []
    ds = playground.dataset("moons", 0.2, 0.5)
    model = playground.classifier((4,))

    def fit(lam):
        calls.append(lam)
        return train.fit(
            model,
            playground.initial_params((4,), 0),
            ds,
            key=jax.random.key(1),
            hp={"lr": 0.1, "l2": lam},
            epochs=5,
            batch_size=int(ds.x_train.shape[0]),
            penalty=playground.penalty,
        )

    base = fit(0.0).history
    panel = playground.lambda_panel(fit, base, lam=0.5)
    before = train.compile_count()
    panel.update(lam=2.0)
    assert calls[-2:] == [0.5, 2.0] and train.compile_count() == before
    assert panel.controls["lam"].description == "lambda"
    with pytest.raises(ValueError, match="lam must be > 0"):
        playground.lambda_panel(fit, base, lam=0.0)


def test_playground_panel_controls_and_float_moves_do_not_compile():
    panel = playground.playground_panel(epochs=20, steps=16)
    assert list(panel.controls) == ["dataset", "noise", "train_share", "hidden", "reg", "lam"]
    before = train.compile_count()
    for settings in ({"lam": 1e-2}, {"reg": "L1"}, {"noise": 0.1}, {"dataset": "circles"}):
        panel.update(**settings)
    assert train.compile_count() == before
    assert len(panel.times_ms) == 5


@contextlib.contextmanager
def _compilations():
    """The XLA compilations (their seconds) of the code run in the block."""
    import jax.monitoring

    compiled, listening = [], [True]

    def listen(event: str, secs: float, **kwargs) -> None:
        if listening[0] and event == "/jax/core/compile/backend_compile_duration":
            compiled.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield compiled
    finally:
        listening[0] = False


def test_train_share_first_visits_compile_no_program_at_all():
    """Not only the training run: no eager op may compile for a new train share either (slicing
    device arrays or ``jnp.asarray`` of a new shape does, and costs a first visit ~0.5 s)."""
    panel = playground.playground_panel(epochs=20, steps=16)
    with _compilations() as compiled:
        for share in (0.2, 0.4, 0.7, 0.9):  # values the panel's warm-up never visited
            panel.update(train_share=share)
    assert compiled == []


# --------------------------------------------------------------------------- one network for every layout


@pytest.mark.parametrize(("hidden", "reg"), [((4,), "L2"), ((16, 16), "L1"), ((16, 16, 16), "L2")])
def test_layout_model_trains_as_the_narrow_network(hidden, reg):
    """The padded, masked network from the narrow network's initial weights = ``train.fit`` of
    ``models.mlp([2, *hidden, 2])`` itself (an independent code path), and the padding stays 0."""
    from lessonlib import models

    res = playground.train_classifier(
        "moons", noise=0.25, train_share=0.4, hidden=hidden, reg=reg, lam=1e-2, epochs=60
    )
    narrow = models.mlp((2, *hidden, 2), activation="relu")
    ds = res.data
    ref = _fit_as_playground(narrow, narrow.init(playground.run_keys(0)[0])[0], ds, reg, 1e-2)
    _assert_same_run(res.run, ref, rtol=1e-5, atol=1e-6, params_atol=1e-6)
    # the network as trained (padded, masked) predicts what the narrow one does
    wide = playground.pad_params(res.run.params, hidden)
    x = playground.grid(2.0, 9)
    np.testing.assert_allclose(
        playground.predict_proba(
            playground.layout_model(), wide, x, hp={"widths": playground.layout_widths(hidden)}
        ),
        playground.predict_proba(narrow, ref.params, x),
        rtol=1e-5,
        atol=1e-6,
    )
    back = playground.unpad_params(wide, hidden)
    jax.tree.map(np.testing.assert_array_equal, back, res.run.params)
    padded_weights = sum(float(np.abs(layer["w"]).sum()) for layer in wide["dense"])
    narrow_weights = sum(float(np.abs(layer["w"]).sum()) for layer in res.run.params["dense"])
    assert padded_weights == pytest.approx(narrow_weights, rel=1e-6)  # nothing outside the layout


def test_layout_widths_validates():
    assert playground.layout_widths((32,)).tolist() == [32.0, 0.0, 0.0]
    assert playground.layout_widths((16, 16, 16)).tolist() == [16.0, 16.0, 16.0]
    with pytest.raises(ValueError, match=r"hidden\[1\] must be in \[1, 32\], got 64"):
        playground.layout_widths((8, 64))
    with pytest.raises(ValueError, match=r"len\(hidden\) must be in \[1, 3\], got 4"):
        playground.train_classifier(hidden=(8, 8, 8, 8))
    with pytest.raises(ValueError, match=r"len\(hidden\) must be in \[1, 3\], got 0"):
        playground.layout_widths(())
    with pytest.raises(ValueError, match=r"hidden\[0\] must be"):
        playground.layout_widths((0,))


def test_hidden_layout_and_data_set_first_visits_compile_nothing():
    """Every layout of the hidden dropdown is the same compiled program: moving to layouts the
    panel's warm-up never drew compiles nothing (before, each new layout compiled ~1.5 s); nor does
    the first pick of a data set the warm-up never drew (its generator is compiled with the panel)."""
    panel = playground.playground_panel(epochs=20, steps=16)
    with _compilations() as compiled:
        for hidden in ("16", "4", "8-8", "16-16-16", "8"):  # never drawn before
            panel.update(hidden=hidden)
        panel.update(dataset="spiral", noise=0.2)  # the warm-up drew moons and circles
    assert compiled == []
