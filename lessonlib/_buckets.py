"""Width buckets: a population of masked widths trained on narrowed models (``search.train_to``).

A model whose hidden width is a mask (``models.mlp(masked_width=True)``) computes every one of its
``n`` hidden units although a configuration of width ``w`` uses only the first ``w``. Its
``narrow(b)`` computes only the first ``b`` units, from the leading corners of the parameters
(``W1[:, :b]``, ``b1[:b]``, ``W2[:b, :]``: ``models.corner``), and computes the same function while
``w <= b``. So the rows of a population are grouped by width (``buckets``); each bucket is one
vmapped run of ``model.narrow(b)`` on the corners of its rows' parameters, state and optimizer
state, and the results are written back into those corners (``train``). A row then costs ``b / n``
of the hidden layer's arithmetic and of the next layer's input, for the same outputs, losses and
used units: the units ``j >= w`` are multiplied by 0 either way. Only what reads the units that a
bucket does not compute differs: a penalty no longer shrinks the units ``j >= b``, and ``w_norm``
and ``batch_loss`` (which includes the penalty) count the bucket's ``b`` units, not all ``n``.

>>> [(b, rows.tolist()) for b, rows in buckets([8, 40, 33, 64, 17, 9, 20], min_rows=2)]
[(16, [0, 5]), (32, [4, 6]), (48, [1, 2]), (64, [3])]
>>> [(b, rows.tolist()) for b, rows in buckets([8, 40, 33, 64, 17, 9, 20], min_rows=3)]
[(32, [0, 4, 5, 6]), (64, [1, 2, 3])]
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

UNITS = 16  # bucket widths are multiples of this many units (fewer buckets: wider calls)
MIN_ROWS = 8  # a bucket of fewer rows joins the next wider one (each call has its overhead)
# Smaller populations train as one call: there the saved arithmetic is smaller than the calls'
# overhead, and every bucket shape is one more program to compile (16 rows: slower, not faster).
MIN_POPULATION = 32


def buckets(widths, units: int = UNITS, min_rows: int = MIN_ROWS) -> list[tuple[int, np.ndarray]]:
    """``(b, rows)`` groups: row ``i`` goes to ``b = units * ceil(widths[i] / units)``; a group
    of fewer than ``min_rows`` rows joins the next wider one (the widest keeps what is left)."""
    b_of = np.maximum(units * np.ceil(np.asarray(widths) / units), units).astype(int)
    groups, rows = [], np.zeros(0, int)
    for b in np.unique(b_of):
        rows = np.sort(np.concatenate([rows, np.flatnonzero(b_of == b)]))
        if len(rows) >= min_rows or b == b_of.max():
            groups, rows = [*groups, (int(b), rows)], np.zeros(0, int)
    return groups


def train(model, trees: tuple, hp: dict, run: Callable, *, optimizer: Callable):
    """Train the K rows of ``trees = (params, state, opt_state)`` bucket by bucket.

    ``run(narrow_model, rows, params, state, opt_state) -> train.Run`` trains rows ``rows`` from
    the given corners (``opt_state`` None: a fresh run, which initializes it as ``fit`` does).
    Returns the full-width params, state and optimizer state, every bucket's corners written
    back (the rest as it was; a fresh optimizer state's rest is its init), and the history.
    """
    params, state, opt_state = trees
    k = len(jax.tree.leaves(params)[0])
    fresh = opt_state is None
    if fresh:  # every unit's optimizer state starts as its init (the same for every row)
        first = optimizer({n: np.ravel(v)[0] for n, v in hp.items()}).init(
            jax.tree.map(lambda x: x[0], params)
        )
        opt_state = jax.tree.map(lambda x: np.repeat(np.asarray(x)[None], k, 0), first)
    full = (params, state, opt_state)
    out, history = jax.tree.map(np.array, full), {}  # copies, written bucket by bucket
    for b, rows in buckets(np.broadcast_to(hp["width"], (k,)), UNITS, MIN_ROWS):
        narrow = model.narrow(b)
        like = _row_shapes(narrow, optimizer, tuple(hp))

        def corner(s, rows=rows):  # x[corner(s)] is x[rows, :s_0, :s_1, ...]
            return (rows, *(slice(0, n) for n in s.shape))

        p, s, o = (
            jax.tree.map(lambda x, s: jnp.asarray(np.asarray(x)[corner(s)]), tree, shape)
            for tree, shape in zip(full, like, strict=True)
        )
        result = run(narrow, rows, p, s, None if fresh else o)
        new = (result.params, result.state, result.opt_state)
        for tree, trained, shape in zip(out, new, like, strict=True):
            jax.tree.map(lambda x, y, s: x.__setitem__(corner(s), y), tree, trained, shape)
        for name, v in result.history.items():
            history.setdefault(name, np.empty((k, *v.shape[1:]), v.dtype))[rows] = v
    return (*jax.tree.map(jnp.asarray, out), history)


@functools.cache
def _row_shapes(model, optimizer: Callable, hp_names: tuple) -> tuple:
    """The shapes of one run's params, state and optimizer state (traced once per model)."""

    def init(key, hp):
        params, state = model.init(key)
        return params, state, optimizer(hp).init(params)

    hp = {name: jax.ShapeDtypeStruct((), jnp.float32) for name in hp_names}
    return jax.eval_shape(init, jax.random.key(0), hp)
