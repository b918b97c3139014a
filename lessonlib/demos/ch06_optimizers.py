r"""Chapter 06 (optimizers): 2-D test functions, optimizer trajectories on them, slider panels.

A trajectory is one ``lax.scan`` over optimizer steps. ``trajectories`` runs several optimizers
side by side in one jitted call; their hyperparameters arrive in a dict ``hp`` of traced scalars, so
moving a slider re-runs the compiled computation instead of compiling a new one (one compilation
per surface and number of steps).

A run that blows up is frozen at its last finite point (and its loss becomes ``inf`` from then
on), so a plot can say "diverged" instead of drawing nothing.

Panels: ``momentum_panel`` (GD, momentum and Nesterov on the quadratic, in the spirit of Distill's
"Why Momentum Really Works") and ``paths_panel`` (all eight optimizers on either surface), both
drawn with ``contour`` and ``paths_figure``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import NamedTuple

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _checks, optim, viz

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
    n = _checks.integer("n", n, min_value=2)
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
    steps = _checks.positive_int("steps", steps)
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
    _checks.one_of("surface", surface, SURFACES)
    for name in names:
        _checks.one_of("names[k]", name, OPTIMIZERS)
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
    steps = _checks.positive_int("steps", steps)
    return _trajectories(hp, surface=surface, names=tuple(names), steps=steps)


def compile_count() -> int:
    """How many compiled versions of ``trajectories`` (and ``rotated_trajectories``) exist."""
    return _trajectories._cache_size() + _rotated._cache_size()


@partial(jax.jit, static_argnames=("names", "steps"))
def _rotated(hp, angle, *, names: tuple[str, ...], steps: int):
    c, s = jnp.cos(angle), jnp.sin(angle)
    rot = jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])
    x0 = rot @ jnp.array(SURFACES["quadratic"].start, jnp.float32)
    out = {}
    for name in names:
        path, loss = trajectory(OPTIMIZERS[name](hp), lambda p: quadratic(rot.T @ p), x0, steps)
        out[name] = (path @ rot, loss)  # each row p -> rot.T @ p: back in the bowl's own axes
    return out


def rotated_trajectories(
    angle: float,
    hp: Mapping[str, float],
    *,
    names: tuple[str, ...] = ("GD", "momentum", "AdaGrad", "RMSProp", "Adam"),
    steps: int = 300,
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``trajectories`` on the quadratic rotated by ``angle`` (radians), start point rotated with
    it. Paths are returned rotated back into the bowl's own axes, so a rotation-invariant method
    draws the same path for every angle. ``angle`` is traced: a new angle does not recompile."""
    for name in names:
        _checks.one_of("names[k]", name, OPTIMIZERS)
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
    steps = _checks.positive_int("steps", steps)
    return _rotated(hp, jnp.float32(angle), names=tuple(names), steps=steps)


# ----------------------------------------------------------------------------- momentum's rate


def momentum_rate(a, mu) -> np.ndarray:
    r"""Convergence rate of heavy-ball momentum on one curvature :math:`\lambda`, with
    :math:`a = \eta\lambda`: the spectral radius of :math:`\begin{pmatrix}1+\mu-a & -\mu\\ 1 & 0
    \end{pmatrix}`, in closed form (Goh 2017, "Why Momentum Really Works").

    The eigenvalues solve :math:`r^2 - (1+\mu-a)\,r + \mu = 0`. With
    :math:`\Delta = (1+\mu-a)^2 - 4\mu < 0` they are complex, of modulus :math:`\sqrt\mu`
    (ringing); :math:`\Delta = 0` on the critical-damping curves :math:`a = (1 \pm \sqrt\mu)^2`;
    a rate :math:`\ge 1` (for :math:`a \ge 2(1+\mu)`) means divergence. Elementwise on arrays.

    >>> round(float(momentum_rate(1.0, 0.0)), 6)  # GD with eta = 1/lambda: one step to the minimum
    0.0
    >>> round(float(momentum_rate(0.5, 0.81)), 6)  # complex roots: sqrt(mu)
    0.9
    """
    a, mu = np.asarray(a, np.float64), np.asarray(mu, np.float64)
    b = 1 + mu - a
    disc = b**2 - 4 * mu
    root = np.sqrt(np.abs(disc))
    real = np.maximum(np.abs(b + root), np.abs(b - root)) / 2
    return np.where(disc < 0, np.sqrt(mu), real)


def momentum_regions(a, mu) -> np.ndarray:
    """0 = over-damped (real roots, a < (1 - sqrt mu)^2), 1 = ringing (complex roots),
    2 = real negative roots that still converge, 3 = divergence (rate >= 1)."""
    a, mu = np.asarray(a, np.float64), np.asarray(mu, np.float64)
    disc = (1 + mu - a) ** 2 - 4 * mu
    region = np.where(disc < 0, 1, np.where(a < (1 - np.sqrt(mu)) ** 2, 0, 2))
    return np.where(momentum_rate(a, mu) >= 1, 3, region)


# ----------------------------------------------------------------------------- panels

COLORS = {
    "GD": "k",
    "momentum": "#1f77b4",
    "Nesterov": "#17becf",
    "AdaGrad": "#8c564b",
    "RMSProp": "#ff7f0e",
    "Adam": "#d62728",
    "AdaMax": "#9467bd",
    "Nadam": "#e377c2",
}


def contour(ax, surface: Surface, n_levels: int = 14) -> list:
    """Level sets (log-spaced) and the minimum of a surface; returns the artists drawn."""
    X, Y, Z = map(np.asarray, grid(surface))
    levels = np.geomspace(max(float(Z.min()), 1e-3), float(Z.max()), n_levels)
    drawn = [ax.contour(X, Y, Z, levels=levels, colors="0.8", linewidths=0.6)]
    drawn += ax.plot(*surface.minimum, "k*", ms=9)
    ax.set(xlim=surface.xlim, ylim=surface.ylim, xlabel="x", ylabel="y")
    return drawn


def paths_figure(names: Sequence[str], surface: Surface, *, steps: int):
    """Paths (left) and losses (right) of the optimizers ``names``.

    Returns ``(fig, set_surface, draw_lines)``: ``set_surface(s)`` shows the level sets of
    surface ``s`` (drawn the first time, then only made visible); ``draw_lines(out, text)`` puts
    the ``trajectories`` result ``out`` on the animated lines and names diverged runs in the title.
    """
    fig, (ax_path, ax_loss) = viz.figure(2)
    backgrounds = {surface.name: contour(ax_path, surface)}

    def set_surface(new_surface: Surface) -> None:
        if new_surface.name not in backgrounds:
            backgrounds[new_surface.name] = contour(ax_path, new_surface)
        for name, artists in backgrounds.items():
            for artist in artists:
                artist.set_visible(name == new_surface.name)
        ax_path.set(xlim=new_surface.xlim, ylim=new_surface.ylim)

    lines, curves = {}, {}
    for name in names:
        (lines[name],) = ax_path.plot([], [], lw=1, color=COLORS[name], animated=True)
        (curves[name],) = ax_loss.plot(
            [], [], lw=1.2, color=COLORS[name], label=name, animated=True
        )
    ax_loss.set(yscale="log", xlim=(0, steps), ylim=(1e-10, 1e4), xlabel="step", ylabel="f(x, y)")
    ax_loss.minorticks_off()  # fewer artists to walk through on every redraw
    ax_loss.legend(
        handles=[ax_loss.plot([], [], color=COLORS[n], label=n)[0] for n in names],
        loc="upper right",
        fontsize=7,
        ncols=2,
    )
    title = ax_path.set_title("", animated=True, fontsize=8)

    def draw_lines(out, text: str) -> None:
        diverged = []
        for name in names:
            path, loss = out[name]
            lines[name].set_data(path[:, 0], path[:, 1])
            curves[name].set_data(np.arange(len(loss)), np.where(np.isfinite(loss), loss, np.nan))
            if not np.isfinite(loss[-1]):
                diverged.append(name)
        title.set_text(text + (f" | diverged: {' '.join(diverged)}" if diverged else ""))

    return fig, set_surface, draw_lines


MOMENTUM_NAMES = ("GD", "momentum", "Nesterov")


def _gd_sliders(hp: Mapping[str, float], lr_label: str, beta_label: str) -> dict:
    lr = viz.slider(lr_label, value=hp["lr"], min=0.0, max=0.006, step=0.0001, readout_format=".4f")
    return {
        "lr": lr,
        "beta": viz.slider(beta_label, value=hp["beta"], min=0.0, max=0.99, step=0.01),
    }


def momentum_panel(hp: Mapping[str, float], *, steps: int = 400) -> viz.Panel:
    """Step size (0 .. 0.006) and momentum (0 .. 0.99) on the quadratic: GD (black; it ignores the
    momentum), momentum (blue) and Nesterov (cyan), their paths and losses. ``hp`` holds the
    starting values (and ``lr_adaptive``, ``b1`` for the other optimizers' signature)."""
    steps = _checks.positive_int("steps", steps)
    fig, _, draw_lines = paths_figure(MOMENTUM_NAMES, SURFACES["quadratic"], steps=steps)

    def draw(lr, beta):
        out = trajectories("quadratic", {**hp, "lr": lr, "beta": beta}, steps=steps)
        draw_lines(jax.device_get(out), f"η = {lr:.4f}, μ = {beta:.2f}")

    return viz.Panel(fig, draw, **_gd_sliders(hp, "step size η", "momentum μ"))


ROTATION_NAMES = ("GD", "momentum", "AdaGrad", "RMSProp", "Adam")


def rotation_panel(hp: Mapping[str, float], *, steps: int = 400) -> viz.Panel:
    """A slider rotating the quadratic by 0..90 degrees; GD, momentum and three adaptive methods
    at the settings ``hp``, their paths drawn in the bowl's own axes (so the level sets stay put)
    and their losses."""
    steps = _checks.positive_int("steps", steps)
    fig, _, draw_lines = paths_figure(ROTATION_NAMES, SURFACES["quadratic"], steps=steps)

    def draw(angle):
        out = rotated_trajectories(np.deg2rad(angle), hp, names=ROTATION_NAMES, steps=steps)
        draw_lines(jax.device_get(out), f"bowl rotated by {angle:.0f}° (drawn in its own axes)")

    return viz.Panel(
        fig, draw, angle=viz.slider("rotation (°)", value=0.0, min=0.0, max=90.0, step=5.0)
    )


def paths_panel(hp: Mapping[str, float], *, steps: int = 400) -> viz.Panel:
    """All eight optimizers on a surface chosen from a dropdown. The gradient-descent family reads
    ``lr`` and ``beta``, the adaptive family ``lr_adaptive`` and ``b1`` (one slider each; ``hp``
    holds the starting values). Switching the surface only toggles pre-drawn level sets, and the
    panel keeps one blitting background per surface, so a switch redraws no contour set."""
    steps = _checks.positive_int("steps", steps)
    fig, set_surface, draw_lines = paths_figure(tuple(COLORS), SURFACES["quadratic"], steps=steps)
    set_surface(SURFACES["rosenbrock"])  # draw both surfaces' level sets now
    set_surface(SURFACES["quadratic"])
    shown = {"surface": "quadratic"}

    def draw(surface, lr, beta, lr_adaptive, b1):
        if surface != shown["surface"]:  # the level sets are part of the static background
            set_surface(SURFACES[surface])
            shown["surface"] = surface
        values = {"lr": lr, "beta": beta, "lr_adaptive": lr_adaptive, "b1": b1}
        out = trajectories(surface, values, steps=steps)
        text = f"η={lr:.4f} μ={beta:.2f} | η={lr_adaptive:.3g} β1={b1:.2f}"
        draw_lines(jax.device_get(out), text)
        return ("background", surface)

    controls = dict(
        surface=widgets.Dropdown(options=list(SURFACES), value="quadratic", description="surface"),
        **_gd_sliders(hp, "η (GD)", "μ"),
        lr_adaptive=viz.log_slider("η (adaptive)", value=hp["lr_adaptive"], min_exp=-3, max_exp=0),
        b1=viz.slider("β1", value=hp["b1"], min=0.0, max=0.99, step=0.01),
    )
    # One layout for both surfaces (each keeps its background, which must line up with the
    # animated paths): laid out once with the starting title in place, then fixed.
    draw(**{name: c.value for name, c in controls.items()})
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine("none")
    return viz.Panel(fig, draw, **controls)
