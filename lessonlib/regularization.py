"""Penalties and constraints on parameters: L1, L2, max-norm.

Convention: the *weights* of a model are the leaves named ``"w"`` in its parameter pytree (the
matrices of the layers, or the weight vector of a linear model). Biases (``"b"``) and batch-norm
scales/shifts (``"gamma"``, ``"beta"``) are not penalized — as in nanoGPT's ``configure_optimizers``:
a bias does not make the function more wiggly, so shrinking it only adds error. A bare array is
treated as one weight tensor.

Arguments are checked with ``lessonlib._checks`` (traced values are skipped).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lessonlib import _checks as ck


def _leaf_name(path) -> str | None:
    last = path[-1] if path else None
    return getattr(last, "key", getattr(last, "name", None))


def weight_mask(params) -> object:
    """A pytree of bools shaped like ``params``: True for the weights (leaves named ``"w"``)."""
    if isinstance(params, jax.Array | float | int) or hasattr(params, "shape"):
        return True
    return jax.tree_util.tree_map_with_path(lambda p, _: _leaf_name(p) == "w", params)


def _weights(params) -> list[jax.Array]:
    mask = weight_mask(params)
    if mask is True:
        return [jnp.asarray(params)]
    return [w for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True) if m]


def l2_penalty(params, lam) -> jax.Array:
    """``lam / 2 * sum(w**2)`` over the weights. Its gradient is ``lam * w``: "weight decay"."""
    ck.non_negative("lam", lam)
    return lam / 2 * sum(jnp.sum(jnp.square(w)) for w in _weights(params))


def l1_penalty(params, alpha) -> jax.Array:
    """``alpha * sum(|w|)`` over the weights. Its (sub)gradient ``alpha * sign(w)`` does not shrink
    with ``w``, which is why L1 pushes small weights exactly to zero."""
    ck.non_negative("alpha", alpha)
    return alpha * sum(jnp.sum(jnp.abs(w)) for w in _weights(params))


def weight_norm(params) -> jax.Array:
    """The global L2 norm ``||w||`` of all weights (biases excluded)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(w)) for w in _weights(params)))


def max_norm(params, max_value, *, axis: int = 0):
    """Max-norm constraint (Srebro et al. 2005; Srivastava et al. 2014, section 5.1).

    After each step, every weight column whose norm exceeds ``r = max_value`` is rescaled onto the
    ball of radius r, and the others are left exactly as they are:

        w_j <- w_j * min(1, r / ||w_j||)

    The norm is taken along ``axis`` — 0 (the default, as Keras's ``MaxNorm``): over the incoming
    weights of each unit for ``w`` of shape (fan_in, fan_out). Biases are left alone. (Keras
    computes ``w * clip(||w||, 0, r) / (eps + ||w||)`` with ``eps = 1e-7``, which also shrinks
    the small columns by a factor ``1 - eps/||w||``.) ``max_value`` may be traced.

    >>> w = jnp.array([[3.0, 0.3], [4.0, 0.4]])      # column norms 5 and 0.5
    >>> max_norm(w, 2.0).tolist()                      # only the first column is rescaled
    [[1.2000000476837158, 0.30000001192092896], [1.600000023841858, 0.4000000059604645]]
    """
    ck.positive("max_value", max_value)
    ck.integer("axis", axis)

    def project(w):
        norm = jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))
        return w * jnp.minimum(1.0, max_value / jnp.maximum(norm, 1e-12))

    mask = weight_mask(params)
    if mask is True:
        return project(params)
    return jax.tree.map(lambda w, m: project(w) if m else w, params, mask)
