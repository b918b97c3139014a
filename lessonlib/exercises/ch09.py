"""Chapter 09 exercises: the freeze labels, B-on-A parameters, choosing the fine-tuning rate,
reading the label-efficiency curve.

The references are ``lessonlib.transfer`` (tested against optax's ``multi_transform`` /
``set_to_zero`` in ``tests/test_transfer.py``). The judges recognise the usual mistakes — the
head frozen, one layer too many or too few, the last layers instead of the first, task A's
output layer reused, model A's parameters changed in place, the rate chosen on the test split,
and on the curve: the interval ignored or unpaired, the curves swapped, an off-by-one in the label
grid, the index returned instead of the count — and name them.
"""

from __future__ import annotations

import numpy as np

from lessonlib.exercises import Case, Exercise


def _params(sizes, seed):
    """An MLP's parameters as plain data: {"dense": [{"w": (fan_in, fan_out), "b": ...}, ...]}."""
    rng = np.random.default_rng(seed)
    return {
        "dense": [
            {
                "w": rng.normal(size=(a, b)).astype(np.float32),
                "b": rng.normal(size=b).astype(np.float32),
            }
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        ]
    }


def _frozen_flags(labels):
    """[True/False per layer] from a label tree (a layer counts as frozen if all its leaves are)."""
    return [all(v == "frozen" for v in layer.values()) for layer in labels["dense"]]


# --------------------------------------------------------------------------- references
def _labels_reference(params, n_reused):
    from lessonlib import transfer

    return transfer.reuse_labels(params, n_reused, reused="frozen", new="trainable")


def _b_on_a_reference(params_a, fresh, n_reused):
    from lessonlib import transfer

    return transfer.reuse_layers(params_a, fresh, n_reused)


def _pick_reference(lrs, val_acc, test_acc):
    return float(np.asarray(lrs)[int(np.argmax(np.asarray(val_acc)))])


# --------------------------------------------------------------------------- probes (trusted)
def _b_on_a_probe(fn, params_a, fresh, n_reused):
    """Run the learner's function, then return its result and model A's parameters afterwards
    (converted to numpy) so the judge can see whether A was changed in place."""
    import jax
    import jax.numpy as jnp

    a = jax.tree.map(jnp.asarray, params_a)
    before = jax.tree.map(np.asarray, a)
    try:
        out = fn(a, jax.tree.map(jnp.asarray, fresh), n_reused)
    except Exception as e:  # noqa: BLE001 - reported to the judge as data
        return {"error": f"{type(e).__name__}: {e}"}
    after = jax.tree.map(np.asarray, a)
    changed = jax.tree.structure(after) != jax.tree.structure(before) or not all(
        x.shape == y.shape and np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)
    )
    try:
        out = jax.tree.map(np.asarray, out)
    except Exception:  # noqa: BLE001
        out = None
    return {"out": out, "a_changed": bool(changed)}


# --------------------------------------------------------------------------- judges
def _judge_labels(case, outcome):
    params, n = case.args
    n_layers = len(params["dense"])
    if n > n_layers - 1 or n < 0:
        if outcome.error and outcome.error.startswith("ValueError"):
            return None
        return (
            f"n_reused = {n} with {n_layers} layers must raise ValueError: only hidden layers "
            "(0 .. number of layers - 2) can be reused, the output layer never is"
        )
    if outcome.error:
        return f"raised {outcome.error}"
    got = outcome.value
    if not isinstance(got, dict) or list(got) != ["dense"] or len(got["dense"]) != n_layers:
        return "return a tree with the structure of params: {'dense': [one dict per layer]}"
    expected = _labels_reference(params, n)
    if got == expected:
        return None
    flags = _frozen_flags(got)
    if flags[-1]:
        return "you froze the output layer: the new head is what task B must train"
    if sum(flags) == n + 1 or sum(flags) == n - 1:
        return f"{sum(flags)} layers frozen, expected {n}: an off-by-one in n_reused"
    if n and flags == [False] * (n_layers - 1 - n) + [True] * n + [False]:
        return "you froze the last hidden layers; the reused (and frozen) ones are the first n"
    if any(
        layer.keys() != exp.keys()
        for layer, exp in zip(got["dense"], expected["dense"], strict=True)
    ):
        return "every leaf ('w' and 'b') of a layer gets the layer's label"
    return f"labels {got} differ from the expected {expected}"


def _judge_b_on_a(case, outcome):
    params_a, fresh, n = case.args
    result = outcome.value or {}
    if "error" in result:
        if n > len(fresh["dense"]) - 1 and result["error"].startswith("ValueError"):
            return None
        return f"raised {result['error']}"
    if n > len(fresh["dense"]) - 1:
        return (
            f"n_reused = {n} would reuse task A's output layer: raise ValueError (B needs its "
            "own head, A's answers A's question)"
        )
    if result["a_changed"]:
        return "model A's parameters were changed in place: build new lists, never assign into params_a"
    out = result["out"]
    if not isinstance(out, dict) or "dense" not in out or len(out["dense"]) != len(fresh["dense"]):
        return "return a tree like fresh: {'dense': [one dict per layer]}"
    source = []
    for i, layer in enumerate(out["dense"]):
        if layer["w"].shape == params_a["dense"][i]["w"].shape and np.array_equal(
            layer["w"], params_a["dense"][i]["w"]
        ):
            source.append("A")
        elif np.array_equal(layer["w"], fresh["dense"][i]["w"]):
            source.append("fresh")
        else:
            return f"layer {i} is neither A's nor the fresh one"
        ref = params_a if source[-1] == "A" else fresh
        if not np.array_equal(layer["b"], ref["dense"][i]["b"]):
            return f"layer {i}: its 'b' does not come from the same model as its 'w'"
    if source[-1] == "A":
        return "you reused task A's output layer: B gets a fresh head"
    expected = ["A"] * n + ["fresh"] * (len(source) - n)
    if source != expected:
        n_a = source.count("A")
        if n_a in (n - 1, n + 1):
            return f"{n_a} layers taken from A, expected {n}: an off-by-one in n_reused"
        return f"layers taken from {source}, expected {expected}"
    return None


def _judge_pick(case, outcome):
    lrs, val, test = (np.asarray(a) for a in case.args)
    if outcome.error:
        return f"raised {outcome.error}"
    got = float(np.asarray(outcome.value))
    want = float(lrs[np.argmax(val)])
    if np.isclose(got, want, rtol=1e-6):
        return None
    if np.isclose(got, float(lrs[np.argmax(test)])):
        return "you chose on the test split: the test split is touched once, after choosing"
    if np.isclose(got, float(lrs[np.argmin(val)])):
        return "that rate has the LOWEST validation accuracy: take the argmax"
    return f"returned {got:g}, expected the rate with the best validation accuracy, {want:g}"


# --------------------------------------------------------------------------- the curve
def _gains(n_labels, mean_gains, *, seed, spread=0.004):
    """Paired accuracies (scratch, reused), shape (len(n_labels), 6): scratch varies a lot from
    seed to seed (sd 0.05), the per-seed gain only by ``spread`` around ``mean_gains``."""
    rng = np.random.default_rng(seed)
    k = len(n_labels)
    scratch = np.clip(0.75 + 0.05 * np.arange(k)[:, None] / k + rng.normal(0, 0.05, (k, 6)), 0, 1)
    noise = rng.normal(0, spread, (k, 6))
    noise -= noise.mean(axis=1, keepdims=True)  # the mean gain is exactly mean_gains
    reused = scratch + np.asarray(mean_gains)[:, None] + noise
    return tuple(n_labels), scratch.astype(np.float32), reused.astype(np.float32)


def _ends_reference(n_labels, scratch, reused):
    from lessonlib.demos import ch09_transfer

    return ch09_transfer.advantage_ends(n_labels, scratch, reused)


def _significant(n_labels, scratch, reused, *, lower=True, paired=True, swap=False):
    s, r = np.asarray(scratch, np.float64), np.asarray(reused, np.float64)
    d = s - r if swap else r - s
    k = d.shape[1]
    if paired:
        half = 1.96 * d.std(axis=1, ddof=1) / np.sqrt(k)
    else:
        half = 1.96 * np.sqrt((s.var(axis=1, ddof=1) + r.var(axis=1, ddof=1)) / k)
    return list(d.mean(axis=1) - (half if lower else 0) > 0)


def _after_last(n_labels, sig):
    last = max((i for i, v in enumerate(sig) if v), default=-1)
    return None if last == len(n_labels) - 1 else int(n_labels[last + 1])


_ENDS_MISTAKES = {
    "the interval is ignored (a positive mean gain counted as significant)": lambda n, s, r: (
        _after_last(n, _significant(n, s, r, lower=False))
    ),
    "the curves are swapped (scratch - reused tests whether scratch beats reusing)": lambda n, s, r: (
        _after_last(n, _significant(n, s, r, swap=True))
    ),
    "the interval is unpaired (each curve's spread over seeds instead of the spread of the "
    "per-seed differences)": lambda n, s, r: _after_last(n, _significant(n, s, r, paired=False)),
    "you return the index in the label grid instead of the number of labels": lambda n, s, r: (
        None if (e := _ends_reference(n, s, r)) is None else [int(v) for v in n].index(e)
    ),
    "an off-by-one in the label grid: that is the last n where reusing still helps significantly, "
    "the answer is the next one": lambda n, s, r: (
        None
        if (e := _ends_reference(n, s, r)) is None or e == n[0]
        else int(n[[int(v) for v in n].index(e) - 1])
    ),
    "you stop at the first n where the interval reaches 0, but a larger n is significant again": (
        lambda n, s, r: next(
            (int(v) for v, sig in zip(n, _significant(n, s, r), strict=True) if not sig), None
        )
    ),
}


def _plain_int(value):
    if value is None:
        return None
    v = np.asarray(value)
    if v.shape != () or not np.issubdtype(v.dtype, np.number) or v != np.round(v):
        return "bad"
    return int(v)


def _judge_ends(case, outcome):
    if outcome.error:
        return f"raised {outcome.error}"
    got, want = _plain_int(outcome.value), _ends_reference(*case.args)
    if got == "bad":
        return f"return a number of labels (an int from n_labels) or None, got {outcome.value!r}"
    if got == want:
        return None
    shown = (
        "None (reusing is still significantly better at the largest n)" if want is None else want
    )
    why = f"expected {shown}, got {got}"
    for label, wrong in _ENDS_MISTAKES.items():
        if got == wrong(*case.args):
            return f"{why} — this is what you get when {label}"
    return why


_P3, _P4 = _params([5, 4, 3, 2], 0), _params([6, 5, 4, 3, 2], 1)
_A3, _F3 = _params([5, 4, 3, 8], 2), _params([5, 4, 3, 2], 3)
_A4, _F4 = _params([6, 5, 4, 3, 10], 4), _params([6, 5, 4, 3, 2], 5)
_LRS = np.array([1e-4, 3e-4, 1e-3, 3e-3, 1e-2], np.float32)

EXERCISES = [
    Exercise(
        id="09.freeze_labels",
        name="freeze_labels",
        points=2,
        cases=(
            Case((_P3, 2), note="3 layers, reuse (freeze) the 2 hidden ones"),
            Case((_P4, 1), note="4 layers, freeze the first"),
            Case((_P3, 3), note="n_reused = 3 would freeze the head: ValueError"),
        ),
        hidden=(Case((_P4, 3)), Case((_P4, 0)), Case((_P3, 1)), Case((_P4, 2))),
        reference=_labels_reference,
        judge=_judge_labels,
        hint="Layer i's leaves get 'frozen' when i < n_reused, else 'trainable'; the output layer "
        "(the last) is never reused: raise ValueError for n_reused > number of layers - 2.",
    ),
    Exercise(
        id="09.b_on_a",
        name="b_on_a",
        points=3,
        cases=(
            Case(
                (_A3, _F3, 2), probe="b_on_a", note="reuse both hidden layers of a 5-4-3-8 model A"
            ),
            Case(
                (_A4, _F4, 1), probe="b_on_a", note="reuse the first layer of a 6-5-4-3-10 model A"
            ),
            Case(
                (_A3, _F3, 3), probe="b_on_a", note="n_reused = 3 would reuse A's head: ValueError"
            ),
        ),
        hidden=(
            Case((_A4, _F4, 3), probe="b_on_a"),
            Case((_A4, _F4, 0), probe="b_on_a"),
            Case((_A3, _F3, 1), probe="b_on_a"),
        ),
        reference=_b_on_a_reference,
        probes={"b_on_a": _b_on_a_probe},
        judge=_judge_b_on_a,
        hint="{'dense': params_a['dense'][:n] + fresh['dense'][n:]} — a new list, A untouched, "
        "and ValueError when n would reach the output layer.",
    ),
    Exercise(
        id="09.pick_finetune_lr",
        name="pick_finetune_lr",
        points=1,
        cases=(
            Case(
                (
                    _LRS,
                    np.array([0.90, 0.93, 0.95, 0.91, 0.80]),
                    np.array([0.91, 0.92, 0.93, 0.96, 0.85]),
                ),
                note="validation prefers 1e-3, the test split 3e-3",
            ),
        ),
        hidden=(
            Case((_LRS, np.array([0.7, 0.6, 0.5, 0.55, 0.4]), np.array([0.5, 0.8, 0.5, 0.5, 0.5]))),
            Case((_LRS, np.array([0.5, 0.6, 0.7, 0.8, 0.9]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]))),
        ),
        reference=_pick_reference,
        judge=_judge_pick,
        hint="Return lrs[argmax(val_acc)]; test_acc is only reported, never used to choose.",
    ),
    Exercise(
        id="09.advantage_ends",
        name="advantage_ends",
        points=2,
        cases=(
            Case(
                _gains((5, 10, 20, 50, 100), [0.10, 0.05, 0.02, 0.001, -0.001], seed=0),
                note="gains shrink as labels grow; 6 seeds",
            ),
            Case(
                _gains((5, 10, 20, 50), [0.10, 0.08, 0.05, 0.04], seed=1),
                note="reusing is significantly better at every n: None",
            ),
        ),
        hidden=(
            Case(_gains((5, 10, 20, 50, 100), [0.08, -0.002, 0.03, -0.002, -0.002], seed=2)),
            Case(_gains((5, 10, 20, 50), [0.06, 0.02, -0.03, -0.05], seed=3)),
            Case(_gains((2, 4, 8, 16), [0.2, 0.1, 0.0005, 0.0], seed=4)),
            Case(_gains((10, 30, 100), [-0.02, -0.03, -0.01], seed=5)),
        ),
        reference=_ends_reference,
        judge=_judge_ends,
        hint="Per n: d = reused - scratch per seed; significant when mean(d) - 1.96 sd(d) / "
        "sqrt(seeds) > 0. Return the n after the last significant one (None if that is the last n).",
    ),
]
