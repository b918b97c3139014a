r"""2-D test functions and optimizer trajectories on them, for chapter 06's slider panels.

A trajectory is one ``lax.scan`` over optimizer steps. ``trajectories`` runs several optimizers
side by side in one jitted call; their hyperparameters arrive in a dict ``hp`` of traced scalars, so
moving a slider re-runs the compiled computation instead of compiling a new one (one compilation
per surface and number of steps).

A run that blows up is frozen at its last finite point (and its loss becomes ``inf`` from then
on), so a plot can say "diverged" instead of drawing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lessonlib import optim

# ----------------------------------------------------------------------------- the surfaces

# Curvatures of the quadratic: the condition number is 400 / 4 = 100. Gradient descent is stable
# for lr < 2 / 400 = 0.005, so Distill's slider range 0..0.006 crosses the edge of stability.
QUAD_CURVATURES = (4.0, 400.0)


def quadratic(p: jax.Array) -> jax.Array:
    r"""An ill-conditioned, axis-aligned quadratic bowl, :math:`f = \tfrac12(4x^2 + 400y^2)`."""
    return 0.5 * (QUAD_CURVATURES[0] * p[0] ** 2 + QUAD_CURVATURES[1] * p[1] ** 2)


def rosenbrock(p: jax.Array, a: float = 1.0, b: float = 100.0) -> jax.Array:
    r"""Rosenbrock's banana, :math:`f = (a - x)^2 + b(y - x^2)^2`, minimum 0 at :math:`(a, a^2)`."""
    return (a - p[0]) ** 2 + b * (p[1] - p[0] ** 2) ** 2


class Surface(NamedTuple):
    """A test function with what a plot needs: start point, minimum, and a view window."""

    name: str
    f: Callable[[jax.Array], jax.Array]
    start: tuple[float, float]
    minimum: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]


SURFACES: dict[str, Surface] = {
    "quadratic": Surface(
        "quadratic", quadratic, (-1.8, 0.12), (0.0, 0.0), (-2.0, 0.5), (-0.2, 0.2)
    ),
    "rosenbrock": Surface(
        "rosenbrock", rosenbrock, (-1.2, 1.0), (1.0, 1.0), (-2.0, 2.0), (-1.0, 3.0)
    ),
}


def grid(surface: Surface, n: int = 120):
    """``(X, Y, Z)`` on an ``n x n`` grid over the surface's window, for a contour plot."""
    xs = jnp.linspace(*surface.xlim, n)
    ys = jnp.linspace(*surface.ylim, n)
    X, Y = jnp.meshgrid(xs, ys)
    return X, Y, surface.f(jnp.stack([X, Y]))  # f reads p[0], p[1]: it works on whole grids


# ----------------------------------------------------------------------------- trajectories

# Which optimizer each panel line uses, as a function of the slider values. The gradient-descent
# family reads hp["lr"] and hp["beta"]; the adaptive family reads hp["lr_adaptive"] and hp["b1"].
# Defined once at module level: a new lambda per slider move would mean a new compilation.
OPTIMIZERS: dict[str, Callable[[Mapping[str, jax.Array]], optim.GradientTransformation]] = {
    "GD": lambda hp: optim.sgd(hp["lr"]),
    "momentum": lambda hp: optim.sgd(hp["lr"], momentum=hp["beta"]),
    "Nesterov": lambda hp: optim.sgd(hp["lr"], momentum=hp["beta"], nesterov=True),
    "AdaGrad": lambda hp: optim.adagrad(hp["lr_adaptive"]),
    "RMSProp": lambda hp: optim.rmsprop(hp["lr_adaptive"]),
    "Adam": lambda hp: optim.adam(hp["lr_adaptive"], b1=hp["b1"]),
    "AdaMax": lambda hp: optim.adamax(hp["lr_adaptive"], b1=hp["b1"]),
    "Nadam": lambda hp: optim.nadam(hp["lr_adaptive"], b1=hp["b1"]),
}

# Beyond this distance from the origin a run counts as diverged and stops moving.
BLOWUP = 1e3


def trajectory(opt: optim.GradientTransformation, f: Callable, x0: jax.Array, steps: int):
    """Minimize ``f`` from ``x0`` for ``steps`` steps of ``opt``.

    Returns ``(path, losses)`` of shapes ``(steps + 1, 2)`` and ``(steps + 1,)``: the start point
    and the point after every step. A diverging run is frozen where it was last finite and its
    loss is set to ``inf``.

    >>> path, losses = trajectory(optim.sgd(0.1), lambda p: jnp.sum(p**2), jnp.ones(2), 3)
    >>> [round(float(v), 4) for v in path[:, 0]]  # x <- (1 - 2 * 0.1) x
    [1.0, 0.8, 0.64, 0.512]
    """
    x0 = jnp.asarray(x0, jnp.float32)

    def step(carry, _):
        p, state, alive = carry
        updates, new_state = opt.update(jax.grad(f)(p), state, p)
        new_p = optim.apply_updates(p, updates)
        alive = alive & jnp.all(jnp.isfinite(new_p)) & (jnp.max(jnp.abs(new_p)) < BLOWUP)
        p = jnp.where(alive, new_p, p)
        loss = jnp.where(alive, f(p), jnp.inf)
        state = jax.tree.map(lambda n, o: jnp.where(alive, n, o), new_state, state)
        return (p, state, alive), (p, loss)

    carry = (x0, opt.init(x0), jnp.array(True))
    _, (path, losses) = jax.lax.scan(step, carry, None, length=steps)
    return jnp.concatenate([x0[None], path]), jnp.concatenate([f(x0)[None], losses])


@partial(jax.jit, static_argnames=("surface", "names", "steps"))
def _trajectories(hp, *, surface: str, names: tuple[str, ...], steps: int):
    s = SURFACES[surface]
    x0 = jnp.array(s.start, jnp.float32)
    return {name: trajectory(OPTIMIZERS[name](hp), s.f, x0, steps) for name in names}


def trajectories(
    surface: str,
    hp: Mapping[str, float],
    *,
    names: tuple[str, ...] = tuple(OPTIMIZERS),
    steps: int = 300,
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Paths and losses of several optimizers (``OPTIMIZERS[name]``) on ``SURFACES[surface]``.

    ``hp`` holds ``lr``, ``beta``, ``lr_adaptive`` and ``b1``; they are traced, so calling this
    again with other values does not recompile (see ``compile_count``).
    """
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
    return _trajectories(hp, surface=surface, names=tuple(names), steps=int(steps))


def compile_count() -> int:
    """How many compiled versions of ``trajectories`` exist so far."""
    return _trajectories._cache_size()
