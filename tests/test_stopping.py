"""``lessonlib.stopping.early_stopping`` (also ``train.early_stopping``) against a plain-Python
transcription of Keras 3's ``EarlyStopping`` callback, on random and hand-worked histories.

The transcription below follows keras/src/callbacks/early_stopping.py (Keras 3): ``__init__``
(``min_delta = abs(min_delta)``), ``_set_monitor_op`` (mode "min": ``ops.less`` and
``min_delta *= -1``; "max": ``ops.greater``; ``best = +inf / -inf``), ``on_train_begin`` (``wait
= 0``, ``best_weights = None``, ``best_epoch = 0``), ``on_epoch_end`` and ``on_train_end``
(restores ``best_weights`` whenever they were set, stopped or not), ``_is_improvement``
(``monitor_op(value - min_delta, reference)``). Weights are stood in for by the epoch number they
were taken at. Random histories are drawn on a grid of eighths, so every sum is exact in float32
and float64 alike and ties (``<`` vs ``<=``) happen often.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lessonlib import stopping, train


class KerasEarlyStopping:
    """Keras 3's EarlyStopping, line by line, with "weights" = the epoch they come from."""

    def __init__(self, *, patience, min_delta, mode, baseline, start_from_epoch):
        self.patience, self.baseline, self.start_from_epoch = patience, baseline, start_from_epoch
        self.min_delta = abs(min_delta)
        if mode == "min":
            self.monitor_op = lambda a, b: a < b
            self.min_delta *= -1
        else:
            self.monitor_op = lambda a, b: a > b
        self.best = math.inf if mode == "min" else -math.inf
        # on_train_begin
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.stop_training = False

    def _is_improvement(self, monitor_value, reference_value):
        return self.monitor_op(monitor_value - self.min_delta, reference_value)

    def on_epoch_end(self, epoch, current):
        if current is None or epoch < self.start_from_epoch:
            return
        if self.best_weights is None:  # restore_best_weights=True
            self.best_weights = epoch
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            self.best_weights = epoch
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.stop_training = True


def keras_reference(values, *, patience, min_delta=0.0, mode="min", baseline=None, start=0):
    """(stop epoch or -1, epoch of the weights the model ends with under restore_best_weights)."""
    cb = KerasEarlyStopping(
        patience=patience,
        min_delta=min_delta,
        mode=mode,
        baseline=baseline,
        start_from_epoch=start,
    )
    epoch = -1
    for epoch, v in enumerate(values):  # Keras's fit loop: stop after the epoch that said so
        cb.on_epoch_end(epoch, float(v))
        if cb.stop_training:
            break
    stop = epoch if cb.stop_training else -1
    final = epoch if cb.best_weights is None else cb.best_weights  # on_train_end
    return stop, final


def ours(values, **kw):
    kw = dict(kw)
    kw["start_from_epoch"] = kw.pop("start", 0)
    stop, best = stopping.early_stopping(jnp.asarray(values, jnp.float32), **kw)
    return int(stop), int(best)


def _random_case(rng):
    n = int(rng.integers(1, 16))
    values = rng.integers(-6, 7, size=n) / 8.0
    if rng.random() < 0.4:  # plateaus and repeats
        values = np.repeat(values, rng.integers(1, 3, size=n))[:n]
    if rng.random() < 0.15:
        values[rng.integers(0, n)] = np.nan
    kw = {
        "patience": int(rng.integers(0, 5)),
        "min_delta": float(rng.choice([0.0, 0.125, 0.25, 0.375])),
        "mode": str(rng.choice(["min", "max"])),
        "baseline": None if rng.random() < 0.5 else float(rng.integers(-6, 7) / 8.0),
        "start": int(rng.integers(0, 4)) if rng.random() < 0.4 else 0,
    }
    return values, kw


def test_matches_keras_on_random_histories():
    rng = np.random.default_rng(2024)
    stops = set()
    for _ in range(3000):
        values, kw = _random_case(rng)
        want = keras_reference(values, **kw)
        assert ours(values, **kw) == want, (values.tolist(), kw)
        stops.add(want[0] >= 0)
    assert stops == {True, False}  # both outcomes were exercised


def test_jitted_with_traced_arguments_matches_keras():
    """One compiled function serves every patience, min_delta, baseline and start."""
    f = jax.jit(stopping.early_stopping, static_argnames="mode")
    rng = np.random.default_rng(7)
    for _ in range(200):
        values, kw = _random_case(rng)
        values = np.resize(values, 12)  # one shape, so one compilation per mode
        base = kw["baseline"]
        base = (np.inf if kw["mode"] == "min" else -np.inf) if base is None else base
        stop, best = f(
            jnp.asarray(values, jnp.float32),
            patience=jnp.int32(kw["patience"]),
            min_delta=jnp.float32(kw["min_delta"]),
            mode=kw["mode"],
            baseline=jnp.float32(base),
            start_from_epoch=jnp.int32(kw["start"]),
        )
        assert (int(stop), int(best)) == keras_reference(values, **kw), (values.tolist(), kw)
    assert f._cache_size() <= 2


def test_sweep_histories_give_one_answer_per_run():
    rng = np.random.default_rng(3)
    runs = rng.integers(-6, 7, size=(6, 10)) / 8.0
    stop, best = stopping.early_stopping(runs, patience=2, min_delta=0.125)
    want = [keras_reference(r, patience=2, min_delta=0.125) for r in runs]
    assert list(zip(stop.tolist(), best.tolist(), strict=True)) == want
    assert train.early_stopping is stopping.early_stopping


# --------------------------------------------------------------------------- hand-worked


@pytest.mark.parametrize(
    "values, kw, want, why",
    [
        # patience 2: epochs 2 and 3 do not beat 3.0, so it stops at the end of epoch 3
        ([5, 3, 4, 3.5, 3.2, 1], {"patience": 2}, (3, 1), "wait counts 1, 2 -> stop"),
        # a tie is no improvement (strict <): 3 at epoch 2 does not beat 3 at epoch 1
        ([5, 3, 3, 3], {"patience": 1}, (2, 1), "tie"),
        # min_delta: 2.75 beats 3 by 0.25, which is not MORE than 0.25
        ([4, 3, 2.75, 2.5], {"patience": 1, "min_delta": 0.25}, (2, 1), "exactly min_delta"),
        ([4, 3, 2.5, 2.0], {"patience": 1, "min_delta": 0.25}, (-1, 3), "beats by 0.5"),
        # max mode: accuracies
        ([0.5, 0.75, 0.625, 0.875], {"patience": 1, "mode": "max"}, (2, 1), "max mode"),
        ([0.5, 0.75, 0.625, 0.875], {"patience": 2, "mode": "max"}, (-1, 3), "patience 2"),
        # patience 0: stop at the first epoch (> 0) that does not improve
        ([3, 2, 2.5, 1], {"patience": 0}, (2, 1), "patience 0"),
        # patience 0 never stops at epoch 0, even on NaN (Keras's `epoch > 0`)
        ([np.nan, 2, 3], {"patience": 0}, (2, 1), "epoch 0 never stops"),
        # NaN is never an improvement; the first monitored epoch is remembered regardless
        ([np.nan, np.nan, np.nan], {"patience": 1}, (1, 0), "all NaN"),
        ([2, np.nan, 1, np.nan, np.nan], {"patience": 2}, (4, 2), "NaN counts as no progress"),
        # baseline never beaten: improvements no longer reset wait, so it stops at the first
        # epoch without an improvement once `patience` epochs have passed, restoring the best
        ([5, 4, 4.5, 4.25], {"patience": 2, "baseline": 1.0}, (2, 1), "baseline never beaten"),
        ([5, 4, 4.5, 4.25], {"patience": 2}, (3, 1), "without a baseline: one epoch later"),
        # baseline beaten at epoch 2: wait restarts there
        ([5, 4, 0.5, 0.75, 0.625], {"patience": 2, "baseline": 1.0}, (4, 2), "baseline beaten"),
        # start_from_epoch: epochs before it are ignored (no wait, no weights remembered)
        ([1, 2, 3, 4, 5], {"patience": 1, "start": 2}, (3, 2), "warm-up"),
        ([1, 2], {"patience": 1, "start": 5}, (-1, 1), "nothing monitored: last weights"),
        # an improving epoch never stops, however long wait has grown (with a baseline)
        ([5, 4, 3, 2, 1.5], {"patience": 0, "baseline": 0.0}, (-1, 4), "always improving"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_hand_worked(values, kw, want, why):
    assert keras_reference(values, **kw) == want, f"transcription disagrees ({why})"
    assert ours(values, **kw) == want, why


def test_source_rule_differs_from_keras_only_where_expected():
    """A counter that resets on improvement and stops at counter >= patience (the JAX book
    chapter's function) stops where Keras does for patience >= 1 without min_delta."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        values = rng.integers(0, 9, size=12) / 8.0
        patience = int(rng.integers(1, 5))
        best, counter, stop = math.inf, 0, -1
        for e, v in enumerate(values):
            if v < best:
                best, counter = v, 0
            else:
                counter += 1
            if counter >= patience:
                stop = e
                break
        assert ours(values, patience=patience)[0] == stop


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"patience": -1}, "patience must be an integer >= 0, got -1"),
        ({"patience": 1.5}, "patience must be an integer >= 0, got 1.5"),
        ({"patience": 1, "min_delta": -0.1}, "min_delta must be >= 0, got -0.1"),
        ({"patience": 1, "mode": "auto"}, "mode must be one of"),
        ({"patience": 1, "start_from_epoch": -2}, "start_from_epoch must be an integer >= 0"),
        ({"patience": 1, "baseline": "low"}, "baseline must be a real number"),
    ],
)
def test_bad_arguments_are_named(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        stopping.early_stopping(jnp.ones(3), **kw)


def test_empty_history_is_an_error():
    with pytest.raises(ValueError, match="at least one epoch"):
        stopping.early_stopping(jnp.ones((2, 0)), patience=1)


def test_auto_mode_reads_the_monitored_name():
    assert stopping.resolve_mode(stopping.EarlyStopping("val_loss")) == "min"
    assert stopping.resolve_mode(stopping.EarlyStopping("val_acc")) == "max"
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        stopping.resolve_mode(stopping.EarlyStopping("w_norm"))
