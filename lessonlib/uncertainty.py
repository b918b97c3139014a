"""Monte Carlo dropout (Gal & Ghahramani 2016) and a small on-disk cache for expensive runs.

MC dropout keeps dropout ON at prediction time and averages the softmax outputs of T stochastic
passes, each with its own mask (pass ``t`` uses the key ``fold_in(key, t)``):

    p(y | x) ~= (1/T) sum_t softmax(f(x; mask_t)).

The spread of the T predictions is a cheap uncertainty estimate; the predictive entropy
``H = -sum_c p_c log p_c`` of the averaged distribution is the number plotted in chapter 02.

``cached`` stores the numpy arrays that an expensive computation returns (a 200-epoch sweep) in
``lessonlib.data.cache_dir()``, under a name that hashes the settings AND the source code of the
modules that produced them, so editing either recomputes instead of showing stale results.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib.data import cache_dir
from lessonlib.models import Model


def mc_dropout_probs(
    model: Model,
    params,
    x: jax.Array,
    *,
    key: jax.Array,
    hp: Mapping[str, float],
    passes: int = 100,
    state=None,
) -> jax.Array:
    """Softmax outputs of ``passes`` stochastic forward passes, shape (passes, n, classes).

    Pass ``t`` runs ``model.apply(..., train=True)`` with key ``fold_in(key, t)``, so every pass
    draws a fresh dropout mask. Only use this with models whose ``train=True`` differs from eval
    mode by dropout alone (batch norm would switch to batch statistics as well).

    >>> from lessonlib import models
    >>> m = models.mlp([3, 8, 2], dropout=True)
    >>> params, _ = m.init(jax.random.key(0))
    >>> mc_dropout_probs(m, params, jnp.ones((5, 3)), key=jax.random.key(1), hp={"dropout": 0.5},
    ...                  passes=4).shape
    (4, 5, 2)
    """
    if isinstance(passes, bool) or not isinstance(passes, int | np.integer) or passes < 1:
        raise ValueError(f"passes must be a positive integer, got {passes!r}")
    if key is None:
        raise ValueError("mc_dropout_probs needs key=...: each pass derives fold_in(key, pass)")
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
    state = {} if state is None else state

    def one(t):
        out, _ = model.apply(params, state, x, key=jax.random.fold_in(key, t), train=True, hp=hp)
        return jax.nn.softmax(out, axis=-1)

    return jax.lax.map(one, jnp.arange(passes), batch_size=min(int(passes), 25))


def running_mean_accuracy(probs: jax.Array, labels: jax.Array) -> np.ndarray:
    """Accuracy of the average of the first T passes, for T = 1 .. passes (shape (passes,)).

    ``probs`` has shape (passes, n, classes): ``mean(probs[:T], 0).argmax(-1) == labels``.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 3:
        raise ValueError(f"probs must have shape (passes, n, classes), got {probs.shape}")
    running = np.cumsum(probs, axis=0) / np.arange(1, probs.shape[0] + 1)[:, None, None]
    return (running.argmax(-1) == np.asarray(labels)[None, :]).mean(axis=1)


def predictive_entropy(p: jax.Array) -> np.ndarray:
    """``H(p) = -sum_c p_c log p_c`` in nats along the last axis (0 log 0 taken as 0)."""
    p = np.asarray(p, np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


# --------------------------------------------------------------------------- on-disk cache


def cache_key(settings: Mapping, modules: Sequence[ModuleType | Callable] = ()) -> str:
    """A hash of the JSON ``settings``, the source of ``modules`` and the jax/numpy versions."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for m in modules:
        h.update(inspect.getsource(m).encode())
    h.update(f"jax {jax.__version__} numpy {np.__version__}".encode())
    return h.hexdigest()[:16]


def cached(
    name: str,
    settings: Mapping,
    compute: Callable[[], Mapping[str, np.ndarray]],
    *,
    modules: Sequence[ModuleType | Callable] = (),
) -> tuple[dict[str, np.ndarray], bool]:
    """``compute()`` once, then load from ``cache_dir()/name-<hash>.npz``; returns (arrays, hit).

    The file name hashes ``settings`` and the source code of ``modules`` (see ``cache_key``), so a
    change to either computes afresh. ``compute`` must return a flat dict of arrays. Writes are
    atomic (temporary file + rename), so two notebooks running at once never read half a file.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"name must be letters, digits, '-' or '_', got {name!r}")
    path = cache_dir() / f"{name}-{cache_key(settings, modules)}.npz"
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}, True
    except (OSError, ValueError):
        pass
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays, False
