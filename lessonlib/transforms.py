r"""The small gradient transforms every optimizer in ``lessonlib.optim`` is a chain of.

A transform is a pair of pure functions (optax's ``GradientTransformation``)::

    state = tx.init(params)
    updates, state = tx.update(grads, state, params)   # params may be None if unused

Each one does one thing: scale by the learning rate (the only minus sign), accumulate momentum
(``trace``), add ``wd * params`` (``add_decayed_weights``), clip, or zero everything
(``set_to_zero``). The adaptive per-coordinate scalings (``scale_by_rms``, ``scale_by_adam``, ...)
live in ``lessonlib.adaptive``. ``chain`` runs them in order, ``switch`` picks one by a (traced)
index, ``masked`` applies one to part of the parameters only and ``multi_transform`` gives each
labelled part its own (freezing layers, per-layer learning rates). Names, arguments and defaults are optax's; ``lessonlib.optim`` builds the
optimizers from them and re-exports every name here (``optim.chain``, ``optim.clip``, ...).

Hyperparameters may be Python numbers or traced JAX scalars; ``learning_rate`` may also be a
schedule ``step -> value``. Arguments are checked with ``lessonlib._checks`` when a transform is
built (traced values are skipped).
"""

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks as ck


class GradientTransformation(NamedTuple):
    """A pair of pure functions, as in optax: ``init(params) -> state`` and
    ``update(updates, state, params=None) -> (updates, state)``."""

    init: Callable
    update: Callable


# ------------------------------------------------------------------------- states
# Named tuples of arrays: pytrees that jit, scan and vmap carry around.


class EmptyState(NamedTuple):
    """State of a transform that remembers nothing."""


class TraceState(NamedTuple):
    """Momentum buffer (velocity) m."""

    trace: Any


class ScheduledTraceState(NamedTuple):
    """Momentum buffer m and the step count read by a momentum schedule."""

    count: jax.Array
    trace: Any


class ScaleByScheduleState(NamedTuple):
    """Step count read by a learning-rate schedule."""

    count: jax.Array


class MaskedState(NamedTuple):
    """State of ``masked``: the inner transform's state, kept for the selected leaves only."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands in for a leaf (or a subtree) that ``masked`` hides from its inner transform.

    A node without children: ``jax.tree.map`` passes over it, so the inner transform neither sees
    nor stores anything there."""


class MultiTransformState(NamedTuple):
    """State of ``multi_transform``: one inner state per label (optax calls it PartitionState)."""

    inner_states: Mapping[Hashable, Any]


# ------------------------------------------------------------------------- pytree helpers


def _zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def _int_zero():
    return jnp.zeros([], jnp.int32)


def _no_state(params) -> EmptyState:
    """``init`` of a transform that remembers nothing."""
    del params
    return EmptyState()


# ------------------------------------------------------------------------- the small transforms


def identity() -> GradientTransformation:
    """Pass the updates through unchanged (plain SGD has nothing before the learning rate)."""

    def update(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(_no_state, update)


def scale_by_learning_rate(learning_rate) -> GradientTransformation:
    r"""Multiply by :math:`-\eta_t`: the only place the minus sign of gradient *descent* lives.

    ``learning_rate`` is a number, a traced scalar, or a schedule ``step -> value`` (then the step
    count lives in the state and starts at 0, as in optax).

    >>> import jax.numpy as jnp
    >>> tx = scale_by_learning_rate(0.1)
    >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(None))
    >>> updates["w"]
    Array([-0.1,  0.2], dtype=float32)
    """
    if callable(learning_rate):

        def init(params):
            del params
            return ScaleByScheduleState(count=_int_zero())

        def update(updates, state, params=None):
            del params
            lr = learning_rate(state.count)
            updates = jax.tree.map(lambda g: -jnp.asarray(lr, g.dtype) * g, updates)
            return updates, ScaleByScheduleState(count=state.count + 1)

        return GradientTransformation(init, update)

    ck.non_negative("learning_rate", learning_rate)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: -learning_rate * g, updates), state

    return GradientTransformation(_no_state, update)


def trace(decay, nesterov: bool = False) -> GradientTransformation:
    r"""Momentum (heavy ball): accumulate a velocity, :math:`m_t = g_t + \mu_t\, m_{t-1}`.

    Output :math:`m_t`, or with ``nesterov=True`` the look-ahead :math:`g_t + \mu_t\, m_t`.
    The learning rate is applied afterwards, so this is optax's (and PyTorch's) form.

    ``decay`` is the momentum :math:`\mu` in [0, 1), or a schedule ``count -> mu`` (e.g.
    ``schedules.one_cycle_momentum``) evaluated at the step count 0, 1, 2, ... like a learning-rate
    schedule; then the state also holds the count (optax: ``inject_hyperparams``).

    >>> import jax.numpy as jnp
    >>> opt = trace(lambda count: jnp.where(count == 0, 0.0, 0.5))  # mu_0 = 0, then 0.5
    >>> state = opt.init(jnp.zeros(1))
    >>> m1, state = opt.update(jnp.ones(1), state)
    >>> m2, state = opt.update(jnp.ones(1), state)
    >>> [float(m1[0]), float(m2[0])]  # 1 + 0 * 0, then 1 + 0.5 * 1
    [1.0, 1.5]
    """
    if callable(decay):
        schedule = decay

        def init_scheduled(params):
            return ScheduledTraceState(count=_int_zero(), trace=_zeros_like(params))

        def update_scheduled(updates, state, params=None):
            del params
            mu = schedule(state.count)
            new_trace = jax.tree.map(
                lambda g, m: g + jnp.asarray(mu, g.dtype) * m, updates, state.trace
            )
            if nesterov:
                updates = jax.tree.map(
                    lambda g, m: g + jnp.asarray(mu, g.dtype) * m, updates, new_trace
                )
            else:
                updates = new_trace
            return updates, ScheduledTraceState(count=state.count + 1, trace=new_trace)

        return GradientTransformation(init_scheduled, update_scheduled)

    ck.in_range("momentum", decay, 0.0, 1.0, hi_open=True)

    def init(params):
        return TraceState(trace=_zeros_like(params))

    def update(updates, state, params=None):
        del params
        new_trace = jax.tree.map(lambda g, m: g + decay * m, updates, state.trace)
        if nesterov:
            updates = jax.tree.map(lambda g, m: g + decay * m, updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(trace=new_trace)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    r"""Add :math:`\lambda\,\theta` to the updates: the gradient of
    :math:`\frac{\lambda}{2}\|\theta\|^2`.

    Where it sits in a chain decides what it means: first in the chain it is an L2 penalty in
    the loss; after an adaptive rescaling it is decoupled weight decay (AdamW).

    ``mask``: a pytree of bools with the structure of (a prefix of) ``params``, or a function
    ``params -> that pytree``; ``False`` leaves are not decayed (commonly biases and norms).
    """
    ck.non_negative("weight_decay", weight_decay)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights needs params: update(updates, state, params)")
        mask_tree = mask(params) if callable(mask) else mask

        def decay(g, p):
            return jax.tree.map(lambda gi, pi: gi + weight_decay * pi, g, p)

        if mask_tree is None:
            return decay(updates, params), state
        updates = jax.tree.map(lambda m, g, p: decay(g, p) if m else g, mask_tree, updates, params)
        return updates, state

    return GradientTransformation(_no_state, update)


def clip(max_delta) -> GradientTransformation:
    """Clip every coordinate of the updates to ``[-max_delta, max_delta]``.

    This changes the direction of the update: ``[0.9, 100.0]`` clipped at 1 becomes ``[0.9, 1.0]``.

    >>> import jax.numpy as jnp
    >>> tx = clip(1.0)
    >>> tx.update(jnp.array([0.9, 100.0]), tx.init(None))[0]
    Array([0.9, 1. ], dtype=float32)
    """
    ck.non_negative("max_delta", max_delta)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(_no_state, update)


def global_norm(tree) -> jax.Array:
    r"""The norm of all leaves taken together, :math:`\sqrt{\sum_i \|g_i\|^2}`."""
    return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(tree)))


def clip_by_global_norm(max_norm) -> GradientTransformation:
    r"""If the global norm :math:`\|g\|` exceeds ``max_norm``, rescale every leaf by
    :math:`\text{max\_norm}/\|g\|` (Pascanu et al. 2013). Unlike ``clip`` it keeps the direction.

    >>> import jax.numpy as jnp
    >>> tx = clip_by_global_norm(1.0)
    >>> clipped, _ = tx.update(jnp.array([0.9, 100.0]), tx.init(None))
    >>> [round(float(x), 4) for x in clipped]  # same direction as [0.9, 100], norm 1
    [0.009, 1.0]
    """
    ck.positive("max_norm", max_norm)

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        keep = norm < max_norm
        updates = jax.tree.map(
            lambda g: jnp.where(keep, g, g / norm.astype(g.dtype) * max_norm), updates
        )
        return updates, state

    return GradientTransformation(_no_state, update)


def set_to_zero() -> GradientTransformation:
    """Replace every update by zero. Given to ``multi_transform`` for a group of parameters (or
    chained after ``masked``), it freezes them: they receive no update at all.

    >>> import jax.numpy as jnp
    >>> tx = set_to_zero()
    >>> tx.update(jnp.array([3.0, -1.0]), tx.init(None))[0]
    Array([0., 0.], dtype=float32)
    """

    def update(updates, state, params=None):
        del params
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(_no_state, update)


# ------------------------------------------------------------------------- putting them together


def chain(*transforms) -> GradientTransformation:
    """Apply transforms one after the other; the state is the tuple of their states.

    Accepts optax transforms as well as the ones in this module.
    """

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def switch(index, transforms) -> GradientTransformation:
    """Apply ``transforms[index]``, where ``index`` may be a traced integer.

    This lets one compiled training run serve several optimizers: sweep ``index`` like any other
    hyperparameter (``train.sweep(..., hp={"which": jnp.arange(9), ...})``). Every transform keeps
    its own state and only the chosen one's advances. Under ``vmap`` XLA computes every branch and
    keeps one, so this pays off for small models, where compiling costs more than computing.

    >>> import jax.numpy as jnp
    >>> tx = switch(1, [scale_by_learning_rate(0.1), scale_by_learning_rate(1.0)])
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
    Array([-1., -1.], dtype=float32)
    """
    transforms = tuple(transforms)
    ck.whole("index", index, min_value=0)
    ck.ordered("index", index, "len(transforms)", len(transforms))

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def branch(k):
        def run(operand):
            updates, state, params = operand
            updates, new_state_k = transforms[k].update(updates, state[k], params)
            return updates, state[:k] + (new_state_k,) + state[k + 1 :]

        return run

    def update(updates, state, params=None):
        branches = [branch(k) for k in range(len(transforms))]
        i = jnp.asarray(index).astype(jnp.int32)
        return jax.lax.switch(i, branches, (updates, state, params))

    return GradientTransformation(init, update)


def apply_updates(params, updates):
    """``params + updates`` leaf by leaf, keeping each parameter's dtype."""
    return jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)


# ------------------------------------------------------------------------- parts of the parameters


def _checked_mask(mask_tree, name: str):
    """Masks are decided before tracing: every leaf must be a Python (or NumPy) bool."""
    for leaf in jax.tree.leaves(mask_tree):
        if not isinstance(leaf, bool | np.bool_):
            raise TypeError(
                f"{name} leaves must be True or False, fixed before tracing (a traced or array "
                f"value cannot choose a branch), got {leaf!r}"
            )
    return mask_tree


def _over(mask_tree, fn, *trees, name: str):
    """``jax.tree.map(fn, mask_tree, *trees)``, saying which tree does not fit which."""
    try:
        return jax.tree.map(fn, mask_tree, *trees)
    except ValueError as e:
        raise ValueError(
            f"{name} must have the structure of the parameters or a prefix of it: {name} is "
            f"{jax.tree.structure(mask_tree)}, the parameters are {jax.tree.structure(trees[0])}"
        ) from e


def masked(inner: GradientTransformation, mask) -> GradientTransformation:
    """Apply ``inner`` to the leaves where ``mask`` is True; pass the others through **unchanged**.

    ``mask`` is a pytree of bools with the structure of the parameters (or a prefix of it: one
    bool for a whole layer), or a function ``params -> such a pytree`` (called on the parameters
    in ``init`` and on the updates in ``update``, as optax does). ``inner`` only sees, and only
    stores state for, the selected leaves; the others become ``MaskedNode()`` in its state.

    Passed through unchanged means *not* frozen: a masked-out leaf's update is its raw gradient,
    which ``apply_updates`` *adds* to the parameter (a step of size 1 uphill). To freeze, give the
    frozen part ``set_to_zero()``: ``multi_transform`` with a ``set_to_zero`` group (optax's
    idiom), or ``chain(optimizer, masked(set_to_zero(), frozen))`` — zeroing last, so weight decay
    or momentum inside ``optimizer`` cannot move the frozen part either.

    >>> import jax.numpy as jnp
    >>> grads = {"body": jnp.ones(2), "head": jnp.ones(2)}
    >>> tx = masked(scale_by_learning_rate(0.1), {"body": False, "head": True})
    >>> updates, _ = tx.update(grads, tx.init(grads))
    >>> updates["head"], updates["body"]  # the body's gradient passes through: it is NOT frozen
    (Array([-0.1, -0.1], dtype=float32), Array([1., 1.], dtype=float32))
    >>> frozen = chain(scale_by_learning_rate(0.1), masked(set_to_zero(), {"body": True, "head": False}))
    >>> frozen.update(grads, frozen.init(grads))[0]["body"]
    Array([0., 0.], dtype=float32)

    Reference: ``optax.masked`` (same semantics and state: ``MaskedState(inner_state)``).
    """

    def mask_of(tree):
        return _checked_mask(mask(tree) if callable(mask) else mask, "mask")

    def hide(mask_tree, tree):
        return _over(mask_tree, lambda m, t: t if m else MaskedNode(), tree, name="mask")

    def init(params):
        mask_tree = mask_of(params)
        return MaskedState(inner_state=inner.init(hide(mask_tree, params)))

    def update(updates, state, params=None):
        mask_tree = mask_of(updates)
        hidden_params = None if params is None else hide(mask_tree, params)
        new, inner_state = inner.update(hide(mask_tree, updates), state.inner_state, hidden_params)
        updates = _over(mask_tree, lambda m, n, u: n if m else u, new, updates, name="mask")
        return updates, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, update)


def multi_transform(
    transforms: Mapping[Hashable, GradientTransformation], param_labels
) -> GradientTransformation:
    """Give every group of parameters its own transform: the leaf labelled ``g`` in
    ``param_labels`` is updated by ``transforms[g]`` (each one ``masked`` to its group).

    ``param_labels`` is a pytree of labels with the structure of the parameters (or a prefix: one
    label per layer), or a function ``params -> such a pytree``. Every label must be a key of
    ``transforms``. Freezing is a group whose transform is ``set_to_zero()``; per-layer learning
    rates are one group per layer.

    >>> import jax.numpy as jnp
    >>> params = {"body": jnp.ones(2), "head": jnp.ones(2)}
    >>> tx = multi_transform({"frozen": set_to_zero(), "trainable": scale_by_learning_rate(0.1)},
    ...                      {"body": "frozen", "head": "trainable"})
    >>> updates, state = tx.update(params, tx.init(params), params)  # gradients: ones
    >>> updates["body"], updates["head"]
    (Array([0., 0.], dtype=float32), Array([-0.1, -0.1], dtype=float32))

    Reference: ``optax.multi_transform`` (``optax.partition``), same state layout:
    ``MultiTransformState(inner_states={label: MaskedState(...)})``.
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"transforms must be a non-empty dict label -> transform, got {transforms!r}"
        )
    transforms = dict(transforms)

    def labels_of(tree):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        missing = set(jax.tree.leaves(labels)) - set(transforms)
        if missing:
            raise ValueError(
                f"param_labels uses labels without a transform: {sorted(map(repr, missing))}; "
                f"transforms has {sorted(map(repr, transforms))}"
            )
        return labels

    def group(labels, g):
        return masked(transforms[g], jax.tree.map(lambda label: label == g, labels))

    def init(params):
        labels = labels_of(params)
        return MultiTransformState({g: group(labels, g).init(params) for g in transforms})

    def update(updates, state, params=None):
        labels = labels_of(updates)
        inner_states = {}
        for g in transforms:
            updates, inner_states[g] = group(labels, g).update(
                updates, state.inner_states[g], params
            )
        return updates, MultiTransformState(inner_states)

    return GradientTransformation(init, update)
