"""Width buckets: a population of masked widths trained on narrowed models (``search.train_to``).

A model whose hidden width is a mask (``models.mlp(masked_width=True)``) computes every one of its
``n`` hidden units although a configuration of width ``w`` uses only the first ``w``. Its
``narrow(b)`` computes only the first ``b`` units, from the leading corners of the parameters
(``W1[:, :b]``, ``b1[:b]``, ``W2[:b, :]``: ``models.corner``), and computes the same function while
``w <= b``. So the rows of a population are grouped by width (``buckets``); each bucket is one
vmapped run of ``model.narrow(b)`` on the corners of its rows' parameters, state and optimizer
state, and the results are written back into those corners (``train``). All the buckets' runs
are one compiled program (``_programs``), which each worker (core) runs on its share of every
bucket. A row then costs ``b / n`` of the hidden layer's arithmetic and of the next layer's
input, for the same outputs, losses and used units: the units ``j >= w`` are multiplied by 0
either way. Only what reads the units that a bucket does not compute differs: a penalty no
longer shrinks the units ``j >= b``, and ``w_norm`` and ``batch_loss`` (which includes the
penalty) count the bucket's ``b`` units, not all ``n``.

>>> [(b, rows.tolist()) for b, rows in buckets([8, 40, 33, 64, 17, 9, 20], min_rows=2)]
[(16, [0, 5]), (32, [4, 6]), (48, [1, 2]), (64, [3])]
>>> [(b, rows.tolist()) for b, rows in buckets([8, 40, 33, 64, 17, 9, 20], min_rows=3)]
[(32, [0, 4, 5, 6]), (64, [1, 2, 3])]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import train as train_lib

UNITS = 16  # bucket widths are multiples of this many units (fewer buckets: wider calls)
MIN_ROWS = 8  # a bucket of fewer rows joins the next wider one (each bucket adds per-step work)
# Smaller populations train as one call: there the saved arithmetic is smaller than the calls'
# overhead, and every set of bucket shapes is one more program to compile (16 rows: slower).
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


def train(
    model,
    trees: tuple,
    hp: dict,
    *,
    data,
    key,
    epochs: int,
    batch_size: int,
    first_epoch: int = 0,
    optimizer: Callable | None = None,
    penalty: Callable | None = None,
):
    """Train the K rows of ``trees = (params, state, opt_state)`` for ``epochs`` more epochs, in
    width buckets, as ``train.sweep(..., stacked=True)`` would train them at full width.

    ``key`` is one shared key or K keys; ``opt_state`` None starts fresh runs (the optimizer's
    state initialized as ``fit`` does). All buckets are ONE compiled program (``_programs``):
    every bucket is cut into as many chunks of rows as ``train.sweep`` uses workers (one per
    core on a CPU), and each worker runs one chunk of every bucket, so the workers get equal
    work (units x rows) and each pays one dispatch, not one per bucket. Returns the full-width
    params, state and optimizer state, every bucket's corners written back (the rest as it was;
    a fresh optimizer state's rest is its init), and the (K, epochs) history.
    """
    optimizer = optimizer or train_lib.default_optimizer
    params, state, opt_state = trees
    k = len(jax.tree.leaves(params)[0])
    fresh = opt_state is None
    if fresh:  # every unit's optimizer state starts as its init (the same for every row)
        first = optimizer({n: np.ravel(v)[0] for n, v in hp.items()}).init(
            jax.tree.map(lambda x: np.asarray(x)[0], params)  # on the host: no dispatch a leaf
        )
        opt_state = jax.tree.map(lambda x: np.repeat(np.asarray(x)[None], k, 0), first)
    full = (params, state, opt_state)
    hp = {n: np.broadcast_to(np.asarray(v, np.float32), (k,)) for n, v in hp.items()}
    per_row_key = train_lib._is_key_array(key)
    groups = buckets(hp["width"], UNITS, MIN_ROWS)
    n = train_lib.sweep_workers(min(len(rows) for _, rows in groups))
    statics, likes, chunks = [], [], [[] for _ in range(n)]
    for b, rows in groups:
        narrow = model.narrow(b)
        static, _ = train_lib._static(
            narrow, epochs, batch_size, optimizer, penalty, None, data, key
        )
        like = _row_shapes(narrow, optimizer, tuple(hp))
        p, s, o = (  # the bucket's rows' corners, on the host
            jax.tree.map(lambda x, sh, r=rows: np.asarray(x)[_corner(r, sh)], tree, shape)
            for tree, shape in zip(full, like, strict=True)
        )
        h = {name: v[rows] for name, v in hp.items()}
        keys = key[jnp.asarray(rows)] if per_row_key else None
        row0 = jax.tree.map(lambda x: x[0], (p, s))
        train_lib._check_hp(static, *row0, data, key[0] if per_row_key else key, h, tuple(h))
        size = -(-len(rows) // n)  # rows per chunk; the last chunk repeats the bucket's last row
        pick = np.minimum(np.arange(size * n), len(rows) - 1).reshape(n, size)
        for chunk, r in zip(chunks, pick, strict=True):
            part = jax.tree.map(lambda x, r=r: x[r], (p, s, None if fresh else o, h))
            chunk.append((*part, None if keys is None else keys[jnp.asarray(r)]))
        statics.append(static)
        likes.append(like)
    outs = _run_chunks(tuple(statics), chunks, data, key, train_lib._first_epoch(first_epoch))
    out, history = jax.tree.map(np.array, full), {}  # copies, written bucket by bucket
    for j, ((_, rows), like) in enumerate(zip(groups, likes, strict=True)):
        m = len(rows)
        p, s, hist, o, _ = jax.tree.map(  # the chunks joined on the host, the padding dropped
            lambda *xs, m=m: np.concatenate(xs)[:m], *(c[j] for c in outs)
        )
        for tree, trained, shape in zip(out, (p, s, o), like, strict=True):
            jax.tree.map(
                lambda x, y, sh, r=rows: x.__setitem__(_corner(r, sh), y), tree, trained, shape
            )
        for name, v in hist.items():
            history.setdefault(name, np.empty((k, *v.shape[1:]), v.dtype))[rows] = v
    train_lib._warn_divergence(history, hp)
    return (*jax.device_put(out), history)


def _corner(rows, shape) -> tuple:
    """``x[_corner(rows, s)]`` is ``x[rows, :s_0, :s_1, ...]``: the rows' leading corners."""
    return (rows, *(slice(0, n) for n in shape.shape))


def _run_chunks(statics: tuple, chunks: list, data, key, first_epoch) -> list:
    """Every chunk (one per worker) run by ``_programs``, the workers side by side in threads
    (XLA releases the GIL while it runs); compiled once, before the threads start."""

    def one(chunk):
        return jax.block_until_ready(_programs(statics, chunk, data, key, first_epoch))

    if len(chunks) == 1:
        return [one(chunks[0])]
    leaves = jax.tree.leaves(chunks[0])
    signature = (statics, jax.tree.structure(chunks[0]), tuple(np.shape(x) for x in leaves))
    if signature not in _compiled:
        _programs.lower(statics, chunks[0], data, key, first_epoch).compile()
        _compiled.add(signature)
    return list(_pool(len(chunks)).map(one, chunks))


_compiled: set = set()  # _programs signatures already compiled


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """The workers' threads, started once: starting and joining them took ~2 ms a call."""
    return ThreadPoolExecutor(workers)


@functools.partial(jax.jit, static_argnums=0)
def _programs(statics: tuple, parts: list, data, key, first_epoch) -> list:
    """One program for all buckets: part ``j = (params, state, opt_state, hp, keys)`` (a leading
    axis of rows; opt_state None: fresh runs; keys None: the shared ``key``) is a vmapped
    ``train._run`` of ``statics[j]`` (its narrowed model), exactly as ``train.sweep`` runs it.
    With the shared key, the epochs are shuffled once for all buckets (``train.epoch_indices``)."""
    out, batches = [], None
    if parts[0][4] is None:
        static, n = statics[0], data.x_train.shape[0]
        epochs = first_epoch + jnp.arange(static.epochs)
        batches = train_lib.epoch_indices(key, epochs, n, static.batch_size)
    for static, (params, state, opt_state, hp, keys) in zip(statics, parts, strict=True):
        run = functools.partial(train_lib._run, static)
        o_axis, k_axis = (None if x is None else 0 for x in (opt_state, keys))
        in_axes = (0, 0, None, k_axis, 0, o_axis, None, None, None)
        k = key if keys is None else keys
        args = (params, state, data, k, hp, opt_state, first_epoch, None, batches)
        out.append(jax.vmap(run, in_axes)(*args))
    return out


@functools.cache
def _row_shapes(model, optimizer: Callable, hp_names: tuple) -> tuple:
    """The shapes of one run's params, state and optimizer state (traced once per model)."""

    def init(key, hp):
        params, state = model.init(key)
        return params, state, optimizer(hp).init(params)

    hp = {name: jax.ShapeDtypeStruct((), jnp.float32) for name in hp_names}
    return jax.eval_shape(init, jax.random.key(0), hp)
