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
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck
from lessonlib import layers


class Model(NamedTuple):
    init: Callable
    apply: Callable
    loss: str  # "mse" (d2l's squared loss, (y_hat - y)^2 / 2) or "xent" (softmax cross-entropy)
    # Optional: apply that also returns every hidden layer's output, for ``layer_stats``:
    # forward(params, state, x, *, key, train, hp, offsets) -> (output, new_state, hidden)
    forward: Callable | None = None
    # Optional, for a model whose hidden width is a mask (``mlp(masked_width=True)``):
    # narrow(units) -> the same model computing only the first ``units`` units of each hidden
    # layer; its params, state and optimizer state are the leading corners of this model's
    # (``corner``), and it equals this model whenever ``hp["width"] <= units``.
    narrow: Callable[[int], Model] | None = None


# --------------------------------------------------------------------------- initializers

KINDS = {
    # kind: (mode, scale) of variance scaling, Var(w) = scale / fan
    "lecun": ("fan_in", 1.0),  # LeCun et al. 1998; the one SELU needs
    "glorot": ("fan_avg", 1.0),  # Glorot & Bengio 2010 ("Xavier"), for tanh / sigmoid
    "he": ("fan_in", 2.0),  # He et al. 2015, for ReLU
}
MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
# Standard deviation of N(0, 1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
# Dividing by it gives the truncated draw exactly the intended variance (jax.nn, Keras).
TRUNCATED_STD = 0.87962566103423978


def variance_scaling(
    key: jax.Array,
    fan_in: int,
    fan_out: int,
    *,
    kind: str = "he",
    dist: str = "normal",
    scale: float | None = None,
    mode: str | None = None,
) -> jax.Array:
    r"""A (fan_in, fan_out) weight matrix with :math:`\mathrm{Var}(w) = \text{scale} / \text{fan}`.

    ``kind`` picks (mode, scale) from ``KINDS``: LeCun (fan_in, 1), Glorot (fan_avg, 1), He
    (fan_in, 2), where fan_avg = (fan_in + fan_out) / 2. ``scale=`` and ``mode=`` override the
    kind's, as Keras's ``VarianceScaling(scale, mode, distribution)`` does. Every distribution
    has exactly that variance :math:`\sigma^2`:

    - ``"normal"``: :math:`N(0, \sigma^2)`;
    - ``"truncated_normal"``: :math:`N(0, s^2)` cut at :math:`\pm 2s` and redrawn, with
      :math:`s = \sigma / 0.8796` (``TRUNCATED_STD``), since the cut removes variance;
    - ``"uniform"``: :math:`U(-a, a)` with :math:`a = \sqrt{3}\,\sigma`.

    Same draws as ``jax.nn.initializers.variance_scaling(scale, mode, dist)(key, (fan_in,
    fan_out))`` for the same key.

    >>> w = variance_scaling(jax.random.key(0), 200, 600, scale=2.0, mode="fan_avg", dist="uniform")
    >>> bool(jnp.abs(w).max() <= (3 * 2.0 / 400) ** 0.5), round(float(w.var() * 400 / 2.0), 2)
    (True, 1.0)
    """
    ck.prng_key("key", key)
    fan_in, fan_out = (
        ck.positive_int("fan_in", fan_in),
        ck.positive_int("fan_out", fan_out),
    )
    ck.one_of("kind", kind, KINDS)
    ck.one_of("dist", dist, DISTRIBUTIONS)
    default_mode, default_scale = KINDS[kind]
    mode = ck.one_of("mode", default_mode if mode is None else mode, MODES)
    scale = default_scale if scale is None else ck.positive("scale", scale)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / fan)
    shape = (fan_in, fan_out)
    if dist == "normal":
        return std * jax.random.normal(key, shape, jnp.float32)
    if dist == "truncated_normal":
        return std / TRUNCATED_STD * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
    return math.sqrt(3) * std * jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)


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
    activation: str | Sequence[str] = "relu",
    dropout: bool = False,
    batch_norm: str | None = None,
    init: str | Callable = "he",
    masked_width: bool = False,
) -> Model:
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` for classification (logits out).

    - ``activation``: a name in ``layers.ACTIVATIONS``, or a tuple of names: then the traced index
      ``hp["activation"]`` picks one at run time (``lax.switch``), so one compiled run or sweep
      serves several activations (sweep the index like any hyperparameter).
    - ``init``: a kind of ``variance_scaling`` (normal distribution), or any function
      ``init(key, fan_in, fan_out) -> w``, e.g. ``partial(variance_scaling, dist="uniform")``.
      Biases start at 0.
    - ``dropout=True``: inverted dropout with rate ``hp["dropout"]`` after every hidden layer
      (never on the inputs or the logits).
    - ``batch_norm="before"``: Linear -> BN -> activation (no bias before BN: BN's beta replaces it);
      ``"after"``: Linear -> activation -> BN. BN's keep-rate momentum is ``hp.get("bn_momentum", 0.9)``.
    - ``masked_width=True``: only the first ``hp["width"]`` units of every hidden layer are used
      (unit ``j`` is multiplied by ``1[j < width]`` before dropout), so networks of every width up to
      ``sizes[i]`` share one parameter shape and a whole population of widths is one vmapped run.
      The masked units get zero gradients; the network equals the narrow one whose weights are the
      first ``width`` columns (and rows) of these. Note that the init's fan is the full width.
    - With ``masked_width=True`` the model also has ``narrow(units)``: the same network computing
      only the first ``min(units, sizes[i])`` units of hidden layer ``i`` (dropout still draws its
      noise at the full width, so the masks agree). For ``hp["width"] <= units`` it computes what
      this model computes from the leading corners of its parameters, ``corner(params, shapes)``:
      ``W_i[:n_{i-1}, :n_i]``, ``b_i[:n_i]``, ... (the units it drops are multiplied by 0 here).
      A population of widths trained in buckets of ``narrow`` models skips the arithmetic of
      those units (``search.train_to``). ``narrow(units).init`` draws a narrow network afresh; the
      same object is returned for the same units (one compiled run each).

    >>> m = mlp([4, 16, 3], masked_width=True)
    >>> params, state = m.init(jax.random.key(0))
    >>> m.apply(params, state, jnp.ones((2, 4)), hp={"width": 5.0})[0].shape
    (2, 3)
    >>> n = m.narrow(8)
    >>> small = corner(params, jax.eval_shape(n.init, jax.random.key(0))[0])
    >>> small["dense"][0]["w"].shape, small["dense"][1]["w"].shape
    ((4, 8), (8, 3))
    >>> x, h = jnp.ones((2, 4)), {"width": 5.0}
    >>> bool(jnp.allclose(n.apply(small, {}, x, hp=h)[0], m.apply(params, {}, x, hp=h)[0]))
    True

    The model has a ``forward`` as well as ``apply`` (see ``layer_stats``): it also returns the
    output ``h_i`` of every hidden layer (after activation, BN and dropout), and adds
    ``offsets[i]`` to it when given.
    """
    sizes = [ck.positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    ck.check("len(sizes)", len(sizes), lambda v: v >= 2, ">= 2 (input and output widths)")
    names = (activation,) if isinstance(activation, str) else tuple(activation)
    ck.check("len(activation)", len(names), lambda v: v >= 1, ">= 1 (name an activation)")
    for name in names:
        ck.one_of("activation", name, sorted(layers.ACTIVATIONS))
    ck.one_of("batch_norm", batch_norm, [None, "before", "after"])
    if not callable(init):
        ck.one_of("init", init, sorted(KINDS))
    draw = init if callable(init) else partial(variance_scaling, kind=init)
    fns = [layers.ACTIVATIONS[name] for name in names]
    built: dict[tuple[int, ...], Model] = {}  # hidden widths -> model (narrow ones on demand)

    def narrow(units: int) -> Model:
        units = ck.positive_int("units", units)
        hidden = tuple(min(units, s) for s in sizes[1:-1])
        if hidden not in built:
            built[hidden] = _mlp(
                [sizes[0], *hidden, sizes[-1]],
                sizes,
                activation,
                fns,
                dropout,
                batch_norm,
                draw,
                masked_width,
            )
        return built[hidden]

    full = _mlp(sizes, sizes, activation, fns, dropout, batch_norm, draw, masked_width)
    if masked_width:
        full = full._replace(narrow=narrow)
    built[tuple(sizes[1:-1])] = full
    return full


def _mlp(sizes, full_sizes, activation, fns, dropout, batch_norm, draw, masked_width) -> Model:
    """``mlp``'s model with layer widths ``sizes``; dropout draws its noise at ``full_sizes``."""
    n_hidden = len(sizes) - 2

    def act(x, hp):
        if isinstance(activation, str):
            return fns[0](x)
        return jax.lax.switch(jnp.asarray(hp["activation"]).astype(jnp.int32), fns, x)

    def init_fn(key):
        keys = jax.random.split(key, len(sizes) - 1)
        dense = []
        for i, (k, fi, fo) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
            layer = {"w": draw(k, fi, fo)}
            if not (batch_norm == "before" and i < n_hidden):
                layer["b"] = jnp.zeros(fo, jnp.float32)
            dense.append(layer)
        params, state = {"dense": dense}, {}
        if batch_norm:
            bn = [layers.batch_norm_init(s) for s in sizes[1:-1]]
            params["bn"] = [p for p, _ in bn]
            state["bn"] = [s for _, s in bn]
        return params, state

    def forward(params, state, x, *, key=None, train=False, hp=None, offsets=None):
        hp = {} if hp is None else hp  # not `hp or {}`: an empty mapping is a valid hp
        new_bn, hidden = [], []
        for i, layer in enumerate(params["dense"]):
            x = x @ layer["w"]
            if "b" in layer:
                x = x + layer["b"][None, :]
            if i == n_hidden:
                break
            if batch_norm == "before":
                x, s = _bn(params, state, i, x, train, hp)
                new_bn.append(s)
            x = act(x, hp)
            if batch_norm == "after":
                x, s = _bn(params, state, i, x, train, hp)
                new_bn.append(s)
            if masked_width:  # unit j is used iff j < width (a traced float: no recompiles)
                units = jnp.arange(x.shape[-1], dtype=jnp.float32)
                x = x * (units < hp["width"]).astype(x.dtype)[None, :]
            if dropout:
                k = None if key is None else jax.random.fold_in(key, i)
                n, pad = x.shape[-1], full_sizes[i + 1] - x.shape[-1]  # pad: a narrowed model
                x = jnp.pad(x, ((0, 0), (0, pad))) if pad else x
                x = layers.dropout(x, hp["dropout"], key=k, train=train)[:, :n]
            if offsets is not None:
                x = x + offsets[i]
            hidden.append(x)
        return x, ({"bn": new_bn} if batch_norm else state), hidden

    def apply(params, state, x, *, key=None, train=False, hp=None):
        out, new_state, _ = forward(params, state, x, key=key, train=train, hp=hp)
        return out, new_state

    return Model(init_fn, apply, "xent", forward)


def corner(tree, shapes):
    """Every array of ``tree`` cut to its leading corner of the shape of the matching leaf of
    ``shapes`` (arrays or ``jax.ShapeDtypeStruct``): ``x[:s_0, :s_1, ...]``. The parameters of
    ``model.narrow(units)`` are ``corner(params, narrow_shapes)``.

    >>> corner({"w": jnp.arange(6.0).reshape(2, 3)}, {"w": jnp.zeros((2, 2))})["w"].tolist()
    [[0.0, 1.0], [3.0, 4.0]]
    """
    return jax.tree.map(lambda x, s: x[tuple(slice(0, n) for n in jnp.shape(s))], tree, shapes)


def _bn(params, state, i, x, train, hp):
    return layers.batch_norm(
        params["bn"][i], state["bn"][i], x, train=train, momentum=hp.get("bn_momentum", 0.9)
    )


# --------------------------------------------------------------------------- diagnostics


@partial(jax.jit, static_argnames=("model", "train"))
def layer_stats(
    model: Model, params, x: jax.Array, y: jax.Array, *, state=None, hp=None, key=None, train=False
) -> dict[str, jax.Array]:
    r"""Per-hidden-layer statistics of one forward and one backward pass, in one jitted call.

    For every hidden layer output :math:`h_i` (batch x units; ``hidden`` is a list of them, or one
    array with a leading layer axis): ``act_mean`` and ``act_std``, the
    mean and standard deviation of its entries, and ``grad_std``, the standard deviation of
    :math:`\partial L / \partial h_i`, the gradient that backpropagation carries down through
    that layer (:math:`L` is the model's mean loss on ``(x, y)``). Each is an array with one entry
    per hidden layer, first layer first; ``loss`` is :math:`L`.

    How it records without touching the model code: ``model.forward`` adds zero "probe" offsets
    :math:`o_i` to each :math:`h_i` and returns the :math:`h_i`; since
    :math:`\partial L / \partial o_i = \partial L / \partial h_i`, one ``jax.grad`` with respect
    to the offsets yields every layer's backward signal. Works for any ``Model`` with a
    ``forward`` (``mlp`` has one); ``hp`` may hold traced values (no recompilation).

    >>> net = mlp([8, 16, 16, 3])
    >>> params, _ = net.init(jax.random.key(0))
    >>> x, y = jax.random.normal(jax.random.key(1), (32, 8)), jnp.zeros(32, jnp.int32)
    >>> stats = layer_stats(net, params, x, y)
    >>> stats["act_std"].shape, stats["grad_std"].shape
    ((2,), (2,))
    """
    from lessonlib.train import LOSSES  # train imports this module

    if model.forward is None:
        raise TypeError("layer_stats needs a model with a forward (e.g. models.mlp)")
    state = {} if state is None else state

    def loss_of(offsets):
        out, _, hidden = model.forward(
            params, state, x, key=key, train=train, hp=hp, offsets=offsets
        )
        return LOSSES[model.loss](out, y), hidden

    shapes = jax.eval_shape(lambda: loss_of(None)[1])
    if not jax.tree.leaves(shapes):
        raise ValueError("layer_stats needs a model with at least one hidden layer")
    zeros = jax.tree.map(lambda h: jnp.zeros(h.shape, h.dtype), shapes)
    (loss, hidden), grads = jax.value_and_grad(loss_of, has_aux=True)(zeros)
    return {
        "act_mean": _per_layer(jnp.mean, hidden),
        "act_std": _per_layer(jnp.std, hidden),
        "grad_std": _per_layer(jnp.std, grads),
        "loss": loss,
    }


def _per_layer(stat: Callable, hidden) -> jax.Array:
    """``stat`` of each layer: ``hidden`` is a list of per-layer arrays, or one array whose leading
    axis is the layer (what a ``lax.scan`` over layers returns)."""
    if isinstance(hidden, list | tuple):
        return jnp.stack([stat(h) for h in hidden])
    return jax.vmap(stat)(hidden)
