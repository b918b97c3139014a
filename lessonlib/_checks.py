"""The argument checks every public function of lessonlib uses: one rule, one message style.

**When a value is checked.** A value is *concrete* when it has a value now: a Python or NumPy
number, or a JAX array outside a transformation. Inside ``jax.jit``, ``vmap``, ``grad`` or
``lax.scan`` a hyperparameter is a *tracer*: it has a shape and a dtype but no value yet, so it
cannot be compared with a bound. Every check here skips tracers, the same way everywhere — a
traced learning rate of -0.1 is not caught (check it before you trace), a concrete one always is,
whether it is ``-0.1``, ``np.float32(-0.1)`` or ``jnp.float32(-0.1)``.

**What an error says.** ``ValueError("lr must be > 0, got -0.1")``: the argument's name, the
allowed range, the value received. Wrong types raise ``TypeError`` in the same style.

>>> import jax.numpy as jnp
>>> positive("lr", jnp.float32(-0.1))
Traceback (most recent call last):
...
ValueError: lr must be > 0, got -0.1
>>> in_range("rate", 0.5, 0.0, 1.0, hi_open=True)
0.5
>>> import jax
>>> jax.jit(lambda r: in_range("rate", r, 0.0, 1.0, hi_open=True))(2.0)  # traced: skipped
Array(2., dtype=float32, weak_type=True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

import jax
import numpy as np


def is_traced(value: Any) -> bool:
    """True for a JAX tracer (a value inside jit/vmap/grad/scan), which has no value to check."""
    return isinstance(value, jax.core.Tracer)


def _fmt(value: Any) -> str:
    """A value as an error message shows it: ``-0.1`` for float32(-0.1), ``'he'`` for strings."""
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    if isinstance(value, np.ndarray | jax.Array) and np.ndim(value) == 0:
        return _fmt(np.asarray(value).item())
    return repr(value)


def scalar(name: str, value: Any) -> float | None:
    """The concrete value of a real scalar as a float, or None when ``value`` is traced.

    Raises TypeError for a bool, a string, None or a non-numeric object, and ValueError for an
    array with more than one element.
    """
    if is_traced(value):
        return None
    if isinstance(value, bool | np.bool_) or value is None or isinstance(value, str):
        raise TypeError(f"{name} must be a real number, got {_fmt(value)}")
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, np.ndarray | jax.Array | np.generic):
        if np.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar, got an array of shape {np.shape(value)}")
        arr = np.asarray(value)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{name} must be a real number, got dtype {arr.dtype}")
        return float(arr)
    raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def check(name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> Any:
    """Raise ``ValueError("{name} must be {allowed}, got {value}")`` unless ``ok(value)``.

    Returns ``value`` unchanged (traced values pass through unchecked).
    """
    v = scalar(name, value)
    if v is not None and not ok(v):  # NaN fails every bound, so it is reported too
        raise ValueError(f"{name} must be {allowed}, got {_fmt(value)}")
    return value


def positive(name: str, value: Any) -> Any:
    """``value > 0`` (and finite)."""
    return check(name, value, lambda v: 0 < v < math.inf, "> 0")


def non_negative(name: str, value: Any) -> Any:
    """``value >= 0`` (and finite)."""
    return check(name, value, lambda v: 0 <= v < math.inf, ">= 0")


def finite(name: str, value: Any) -> Any:
    """A finite real number."""
    return check(name, value, math.isfinite, "a finite number")


def in_range(
    name: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """``lo <= value <= hi``; ``lo_open``/``hi_open`` exclude an end: "rate must be in [0, 1)"."""

    def ok(v: float) -> bool:
        above = v > lo if lo_open else v >= lo
        below = v < hi if hi_open else v <= hi
        return above and below

    interval = f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    return check(name, value, ok, f"in {interval}")


def _an_integer(min_value: int | None) -> str:
    if min_value is None:
        return "an integer"
    return "a positive integer" if min_value == 1 else f"an integer >= {min_value}"


def integer(name: str, value: Any, *, min_value: int | None = None) -> int:
    """A concrete integer (not a bool, not 2.0), at least ``min_value``; returned as ``int``.

    Integers fix shapes and loop lengths, so they must be concrete: a tracer raises TypeError.

    >>> integer("n", 2.5, min_value=1)
    Traceback (most recent call last):
    ...
    ValueError: n must be a positive integer, got 2.5
    """
    if is_traced(value):
        raise TypeError(f"{name} must be a concrete Python integer, got a traced value")
    if isinstance(value, np.ndarray | jax.Array) and np.ndim(value) == 0:
        value = np.asarray(value).item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be {_an_integer(min_value)}, got {_fmt(value)}")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be {_an_integer(min_value)}, got {_fmt(value)}")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    """A concrete integer >= 1."""
    return integer(name, value, min_value=1)


def whole(name: str, value: Any, *, min_value: int | None = None) -> Any:
    """A whole number (``3`` or ``3.0``) at least ``min_value`` that may be traced (then skipped).

    For counts that are hyperparameters rather than shapes, such as a schedule's ``total_steps``
    or a patience, which a slider may move inside a compiled run. Returns ``value`` unchanged.

    >>> whole("patience", 2.0, min_value=0)
    2.0
    >>> whole("total_steps", 10.5, min_value=1)
    Traceback (most recent call last):
    ...
    ValueError: total_steps must be a positive integer, got 10.5
    """
    v = scalar(name, value)
    if v is not None and not (
        math.isfinite(v) and v == int(v) and (min_value is None or v >= min_value)
    ):
        raise ValueError(f"{name} must be {_an_integer(min_value)}, got {_fmt(value)}")
    return value


def ordered(lo_name: str, lo: Any, hi_name: str, hi: Any, *, strict: bool = True) -> None:
    """``lo < hi`` (``lo <= hi`` when not ``strict``), skipped when either is traced.

    >>> ordered("min_lr", 1.0, "max_lr", 0.1)
    Traceback (most recent call last):
    ...
    ValueError: min_lr must be < max_lr (= 0.1), got 1
    """
    a, b = scalar(lo_name, lo), scalar(hi_name, hi)
    if a is None or b is None:
        return
    if not (a < b if strict else a <= b):
        raise ValueError(
            f"{lo_name} must be {'<' if strict else '<='} {hi_name} (= {_fmt(hi)}), got {_fmt(lo)}"
        )


def one_of(name: str, value: Any, options: Iterable[Any]) -> Any:
    """``value`` must be one of ``options``: "kind must be one of ['he', 'lecun'], got 'xavier'"."""
    options = list(options)
    try:
        ok = value in options
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {options!r}, got {_fmt(value)}")
    return value


def prng_key(name: str, value: Any) -> jax.Array:
    """A JAX PRNG key (``jax.random.key(seed)``, or a legacy ``PRNGKey`` uint32[2])."""
    if value is None:
        raise ValueError(
            f"{name} is required: pass a fresh key, e.g. jax.random.key(0), "
            "or jax.random.fold_in(key, step) inside a loop"
        )
    if is_traced(value):
        return value
    dtype = getattr(value, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return value
    if dtype == np.uint32 and np.shape(value)[-1:] == (2,):
        return value
    raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got {_fmt(value)}")
