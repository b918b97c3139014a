"""Transfer learning and unsupervised pretraining with the MLPs of ``lessonlib.models``.

An MLP's parameters are a dict of per-layer lists, ``{"dense": [layer_0, ..., layer_L]}`` with
``layer_i = {"w": ..., "b": ...}`` (plus ``"bn": [bn_0, ...]``, the batch norm after hidden layer
``i``, and the state ``{"bn": [...]}`` numbered the same way). "The first k layers" of a network
is therefore the first k entries of each list:

- ``layer_index(tree)``: the same tree with every leaf replaced by the number of its layer;
- ``reuse_labels(params, n_reused)``: ``"reused"`` on the layers below ``n_reused``, ``"new"``
  above: the labels ``optim.multi_transform`` needs to freeze the reused layers (a
  ``set_to_zero`` group) or give them their own learning rate;
- ``reuse_layers(source, fresh, n_reused)``: the tree ``fresh`` with its first ``n_reused``
  layers taken from ``source`` ("B on A": A's trained layers under B's fresh head), for
  parameters and for state alike; ``b_on_a(model_b, params_a, n_reused, key=...)`` does it from
  ``model_b.init(key)``.

Nothing is copied, and nothing needs to be: JAX arrays are immutable, so B-on-A may share A's
arrays, and training B makes new ones. (Keras layers are mutable objects shared by the models
that hold them, which is why the Géron notes call ``clone_model`` before reusing model A.) Only
the Python dicts and lists around the arrays are mutable: ``reuse_layers`` builds new ones.

``autoencoder(sizes)`` is an MLP ``sizes[0] -> ... -> sizes[-1]`` (the encoder) followed by its
mirror image (the decoder), trained to reconstruct its input: train it with ``train.fit`` on
``Dataset(x, x, x_test, x_test)``. Its first ``len(sizes) - 1`` layers have exactly the shapes of
the first layers of ``models.mlp([*sizes, classes])``, so ``reuse_layers`` hands the pretrained
encoder to a classifier (Hinton & Salakhutdinov 2006; with input noise, a denoising autoencoder,
Vincent et al. 2008).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np

from lessonlib import _checks as ck
from lessonlib import models
from lessonlib.models import Model


def _layers(tree, name: str) -> dict:
    if not isinstance(tree, Mapping) or not all(isinstance(v, list | tuple) for v in tree.values()):
        raise TypeError(
            f"{name} must be an MLP's parameters or state, a dict of per-layer lists such as "
            f"{{'dense': [...], 'bn': [...]}}, got {jax.tree.structure(tree)}"
        )
    return dict(tree)


def layer_index(tree) -> dict:
    """The tree with every leaf replaced by the number of its layer (0 = the first).

    >>> from lessonlib import models
    >>> params, _ = models.mlp([3, 4, 2]).init(jax.random.key(0))
    >>> layer_index(params)
    {'dense': [{'b': 0, 'w': 0}, {'b': 1, 'w': 1}]}
    """
    return {
        name: type(layers)(jax.tree.map(lambda _, i=i: i, layer) for i, layer in enumerate(layers))
        for name, layers in _layers(tree, "tree").items()
    }


def _n_reused(n_reused, n_dense: int) -> int:
    """0 .. number of hidden layers: the output layer answers task A's question, never B's."""
    n = ck.integer("n_reused", n_reused, min_value=0)
    if n > n_dense - 1:
        raise ValueError(
            f"n_reused must be in [0, {n_dense - 1}] (the hidden layers of a {n_dense}-layer "
            f"network), got {n}: the output layer is never reused, it answers the old task's "
            "question; B gets a fresh one"
        )
    return n


def reuse_labels(params, n_reused: int, *, reused: str = "reused", new: str = "new") -> dict:
    """``reused`` on every leaf of layers ``0 .. n_reused-1``, ``new`` on the others.

    >>> from lessonlib import models
    >>> params, _ = models.mlp([3, 4, 4, 2]).init(jax.random.key(0))
    >>> reuse_labels(params, 2)["dense"]
    [{'b': 'reused', 'w': 'reused'}, {'b': 'reused', 'w': 'reused'}, {'b': 'new', 'w': 'new'}]
    """
    index = layer_index(params)
    n = _n_reused(n_reused, len(_layers(params, "params").get("dense", ())))
    return jax.tree.map(lambda i: reused if i < n else new, index)


def reuse_layers(source, fresh, n_reused: int) -> dict:
    """``fresh`` with its first ``n_reused`` layers replaced by ``source``'s: parameters or state.

    Every list of ``fresh`` (``"dense"``, ``"bn"``) takes its first ``n_reused`` entries from the
    list of the same name in ``source``; the reused entries must have the same shapes (a layer is
    reused as it is). Works on stacked trees (a leading axis of runs) too. New dicts and lists are
    built: neither ``source`` nor ``fresh`` is changed.

    >>> from lessonlib import models
    >>> a, _ = models.mlp([3, 4, 5]).init(jax.random.key(0))
    >>> b, _ = models.mlp([3, 4, 2]).init(jax.random.key(1))
    >>> b_on_a = reuse_layers(a, b, 1)
    >>> b_on_a["dense"][0]["w"] is a["dense"][0]["w"], b_on_a["dense"][1]["w"] is b["dense"][1]["w"]
    (True, True)
    """
    source, fresh = _layers(source, "source"), _layers(fresh, "fresh")
    if "dense" in fresh:
        n = _n_reused(n_reused, len(fresh["dense"]))
    else:  # a state tree ({"bn": [...]}): one entry per hidden layer
        n = ck.integer("n_reused", n_reused, min_value=0)
    out = {}
    for name, layers in fresh.items():
        k = min(n, len(layers))
        taken = list(source.get(name, ()))[:k]
        if len(taken) < k:
            raise ValueError(
                f"source[{name!r}] has {len(taken)} layers, fewer than n_reused = {n} to reuse"
            )
        for i, (a, b) in enumerate(zip(taken, layers, strict=False)):
            a_shapes, b_shapes = (jax.tree.map(np.shape, t) for t in (a, b))
            if a_shapes != b_shapes:
                raise ValueError(
                    f"layer {i} of {name!r} cannot be reused: shapes {a_shapes} in source, "
                    f"{b_shapes} in fresh"
                )
        out[name] = type(layers)([*taken, *list(layers)[k:]])
    return out


def b_on_a(model_b: Model, params_a, n_reused: int, *, key: jax.Array, state_a=None):
    """Model B's parameters and state from ``model_b.init(key)`` with the first ``n_reused``
    layers (and their batch-norm statistics, if ``state_a`` is given) taken from model A.

    >>> from lessonlib import models
    >>> params_a, _ = models.mlp([3, 4, 8]).init(jax.random.key(0))
    >>> params, state = b_on_a(models.mlp([3, 4, 2]), params_a, 1, key=jax.random.key(1))
    >>> [layer["w"].shape for layer in params["dense"]]
    [(3, 4), (4, 2)]
    """
    ck.prng_key("key", key)
    params, state = model_b.init(key)
    params = reuse_layers(params_a, params, n_reused)
    if state_a is not None and state:
        state = reuse_layers(state_a, state, n_reused)
    return params, state


def autoencoder(
    sizes: Sequence[int], *, activation: str = "relu", init: str = "he", denoising: bool = False
) -> Model:
    r"""An MLP autoencoder: encoder ``sizes[0] -> ... -> sizes[-1]``, decoder the mirror image.

    ``apply`` returns the reconstruction :math:`\hat x = g(f(x))` and the model's loss is the
    squared error (``"mse"``), so ``train.fit`` on ``Dataset(x, x, x_test, x_test)`` minimizes
    :math:`\frac12 \operatorname{mean}(\hat x - x)^2`. With ``denoising=True`` a training step
    encodes :math:`x + \sigma \epsilon`, :math:`\epsilon \sim N(0, I)` drawn from the step's key,
    with :math:`\sigma` = ``hp["noise"]``, and still reconstructs the clean :math:`x` (Vincent et
    al. 2008): with more hidden units than inputs, a plain autoencoder may learn the identity.

    >>> ae = autoencoder([6, 5, 3])
    >>> params, _ = ae.init(jax.random.key(0))
    >>> [layer["w"].shape for layer in params["dense"]]  # encoder 6-5-3, decoder 3-5-6
    [(6, 5), (5, 3), (3, 5), (5, 6)]
    >>> ae.apply(params, {}, jax.numpy.ones((2, 6)))[0].shape
    (2, 6)
    """
    sizes = [ck.positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    ck.check("len(sizes)", len(sizes), lambda v: v >= 2, ">= 2 (input and code widths)")
    net = models.mlp([*sizes, *sizes[-2::-1]], activation=activation, init=init)

    def apply(params, state, x, *, key=None, train=False, hp=None):
        if denoising and train:
            eps = jax.random.normal(ck.prng_key("key", key), x.shape, x.dtype)
            x = x + hp["noise"] * eps
        return net.apply(params, state, x, key=key, train=train, hp=hp)

    return Model(net.init, apply, "mse")
