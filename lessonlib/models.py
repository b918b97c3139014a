"""Models as a pair of pure functions over parameter pytrees.

A ``Model`` bundles ``init(key) -> (params, state)`` and
``apply(params, state, x, *, key, train, hp) -> (output, new_state)`` with the name of its loss.
``state`` holds what is not trained (batch-norm running averages); ``hp`` is a dict of float
hyperparameters that the training engine passes in as traced values (e.g. ``hp["dropout"]``), so
changing them never recompiles. Arguments are checked with ``lessonlib._checks`` (traced values
are skipped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck
from lessonlib import layers


class Model(NamedTuple):
    init: Callable
    apply: Callable
    loss: str  # "mse" (d2l's squared loss, (y_hat - y)^2 / 2) or "xent" (softmax cross-entropy)


# --------------------------------------------------------------------------- initializers

_SCALES = {
    # name: (fan, scale) of variance scaling, Var(w) = scale / fan
    "glorot": ("fan_avg", 1.0),  # Glorot & Bengio 2010
    "he": ("fan_in", 2.0),  # He et al. 2015, for ReLU
    "lecun": ("fan_in", 1.0),  # LeCun et al. 1998, for SELU
}


def variance_scaling(key, fan_in: int, fan_out: int, *, kind: str = "he", dist: str = "normal"):
    """A (fan_in, fan_out) weight matrix with ``Var(w) = scale / fan`` (see ``_SCALES``).

    ``dist="normal"`` draws N(0, scale/fan); ``dist="uniform"`` draws U(-a, a) with
    ``a = sqrt(3 scale / fan)``, which has the same variance.
    """
    ck.prng_key("key", key)
    ck.one_of("kind", kind, sorted(_SCALES))
    ck.one_of("dist", dist, ["normal", "uniform"])
    fan_in, fan_out = ck.positive_int("fan_in", fan_in), ck.positive_int("fan_out", fan_out)
    fan_name, scale = _SCALES[kind]
    fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[fan_name]
    if dist == "normal":
        return math.sqrt(scale / fan) * jax.random.normal(key, (fan_in, fan_out), jnp.float32)
    a = math.sqrt(3 * scale / fan)
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -a, a)


# --------------------------------------------------------------------------- linear regression


def linear_regression(d: int) -> Model:
    """``y_hat = x . w + b`` with ``w ~ N(0, 1)`` and ``b = 0``, as in d2l v0.17's weight decay demo."""
    d = ck.positive_int("d", d)

    def init(key):
        return {"w": jax.random.normal(key, (d,), jnp.float32), "b": jnp.zeros((), jnp.float32)}, {}

    def apply(params, state, x, *, key=None, train=False, hp=None):
        del key, train, hp
        return x @ params["w"] + params["b"], state

    return Model(init, apply, "mse")


# --------------------------------------------------------------------------- MLP


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    dropout: bool = False,
    batch_norm: str | None = None,
    init: str = "he",
    masked_width: bool = False,
) -> Model:
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` for classification (logits out).

    - ``dropout=True``: inverted dropout with rate ``hp["dropout"]`` after every hidden layer
      (never on the inputs or the logits).
    - ``batch_norm="before"``: Linear -> BN -> activation (no bias before BN: BN's beta replaces it);
      ``"after"``: Linear -> activation -> BN. BN's keep-rate momentum is ``hp.get("bn_momentum", 0.9)``.
    - ``masked_width=True``: only the first ``hp["width"]`` units of every hidden layer are used
      (unit ``j`` is multiplied by ``1[j < width]`` before dropout), so networks of every width up to
      ``sizes[i]`` share one parameter shape and a whole population of widths is one vmapped run.
      The masked units get zero gradients; the network equals the narrow one whose weights are the
      first ``width`` columns (and rows) of these. Note that the init's fan is the full width.

    >>> m = mlp([4, 16, 3], masked_width=True)
    >>> params, state = m.init(jax.random.key(0))
    >>> m.apply(params, state, jnp.ones((2, 4)), hp={"width": 5.0})[0].shape
    (2, 3)
    """
    sizes = [ck.positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    ck.check("len(sizes)", len(sizes), lambda v: v >= 2, ">= 2 (input and output widths)")
    ck.one_of("activation", activation, sorted(layers.ACTIVATIONS))
    ck.one_of("batch_norm", batch_norm, [None, "before", "after"])
    ck.one_of("init", init, sorted(_SCALES))
    act = layers.ACTIVATIONS[activation]
    n_hidden = len(sizes) - 2

    def init_fn(key):
        keys = jax.random.split(key, len(sizes) - 1)
        dense = []
        for i, (k, fi, fo) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
            layer = {"w": variance_scaling(k, fi, fo, kind=init)}
            if not (batch_norm == "before" and i < n_hidden):
                layer["b"] = jnp.zeros(fo, jnp.float32)
            dense.append(layer)
        params, state = {"dense": dense}, {}
        if batch_norm:
            bn = [layers.batch_norm_init(s) for s in sizes[1:-1]]
            params["bn"] = [p for p, _ in bn]
            state["bn"] = [s for _, s in bn]
        return params, state

    def apply(params, state, x, *, key=None, train=False, hp=None):
        hp = {} if hp is None else hp  # not `hp or {}`: an empty mapping is a valid hp
        new_bn = []
        for i, layer in enumerate(params["dense"]):
            x = x @ layer["w"]
            if "b" in layer:
                x = x + layer["b"][None, :]
            if i == n_hidden:
                break
            if batch_norm == "before":
                x, s = _bn(params, state, i, x, train, hp)
                new_bn.append(s)
            x = act(x)
            if batch_norm == "after":
                x, s = _bn(params, state, i, x, train, hp)
                new_bn.append(s)
            if masked_width:  # unit j is used iff j < width (a traced float: no recompiles)
                units = jnp.arange(x.shape[-1], dtype=jnp.float32)
                x = x * (units < hp["width"]).astype(x.dtype)[None, :]
            if dropout:
                k = None if key is None else jax.random.fold_in(key, i)
                x = layers.dropout(x, hp["dropout"], key=k, train=train)
        return x, ({"bn": new_bn} if batch_norm else state)

    return Model(init_fn, apply, "xent")


def _bn(params, state, i, x, train, hp):
    return layers.batch_norm(
        params["bn"][i], state["bn"][i], x, train=train, momentum=hp.get("bn_momentum", 0.9)
    )
