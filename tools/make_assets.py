"""Draw the course's diagrams into ``assets/figures/`` (``make assets``).

The notebooks show these pictures from markdown cells (``![...](../assets/figures/NAME.svg)``);
they are generated here, never edited by hand, and the test suite checks that the committed files
are exactly what this script writes (``tests/test_assets.py``). The output is deterministic: fixed
data, no dates in the SVG metadata, a fixed salt for the SVG element ids, text drawn as paths with
matplotlib's bundled font. Every geometric claim a diagram makes is computed and asserted here
(the constrained optima touch the constraint sets where the caption says they do).

    python tools/make_assets.py              # rewrite assets/figures/*.svg
    python tools/make_assets.py --check      # exit 1 if a committed figure differs
    python tools/make_assets.py --out DIR    # write the figures to DIR instead
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "assets" / "figures"

RC = {
    "svg.hashsalt": "lessonlib-assets",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
BLUE, ORANGE, GREY, RED = "#1f77b4", "#ff7f0e", "#9a9a9a", "#d62728"


# ----------------------------------------------------------------------------- chapter 01


def _quadratic(H: np.ndarray, w_star: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """loss(w) = 1/2 (w - w*)^T H (w - w*) for points w of shape (..., 2)."""

    def loss(w):
        d = w - w_star
        return 0.5 * np.einsum("...i,ij,...j->...", d, H, d)

    return loss


def l2_constrained_optimum(H, w_star, radius):
    """argmin loss on the disc ||w|| <= radius: w(lam) = (H + lam I)^-1 H w*, lam by bisection."""
    if np.linalg.norm(w_star) <= radius:
        return w_star, 0.0
    lo, hi = 0.0, 1.0
    while np.linalg.norm(np.linalg.solve(H + hi * np.eye(2), H @ w_star)) > radius:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.linalg.norm(np.linalg.solve(H + mid * np.eye(2), H @ w_star)) > radius:
            lo = mid
        else:
            hi = mid
    return np.linalg.solve(H + hi * np.eye(2), H @ w_star), hi


def l1_constrained_optimum(loss, radius, n=400_001):
    """argmin loss on the diamond |w1| + |w2| <= radius, by a dense walk along its boundary
    (the optimum lies on the boundary when w* is outside the diamond)."""
    s = np.linspace(0.0, 4.0, n)[:-1]  # four edges, one unit of s each
    edge, t = np.floor(s).astype(int), s - np.floor(s)
    corners = radius * np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [1, 0]], float)
    pts = corners[edge] * (1 - t)[:, None] + corners[edge + 1] * t[:, None]
    return pts[np.argmin(loss(pts))]


def constraint_ball() -> plt.Figure:
    """Chapter 01: the penalized optimum is where a loss contour touches the norm ball (L2), and
    the L1 diamond is touched at a corner, where one weight is exactly zero."""
    H = np.array([[1.0, 0.6], [0.6, 2.0]])
    w_star = np.array([1.6, 1.9])
    loss = _quadratic(H, w_star)
    radius = 1.0

    w_l2, lam = l2_constrained_optimum(H, w_star, radius)
    grad = H @ (w_l2 - w_star)
    # KKT: grad + lam w = 0, i.e. the contour's normal is parallel to w (tangency)
    assert abs(np.linalg.norm(w_l2) - radius) < 1e-9 and lam > 0
    assert np.allclose(grad + lam * w_l2, 0.0, atol=1e-9)
    assert min(abs(w_l2)) > 0.2  # L2: both weights shrink, neither is zero

    w_l1 = l1_constrained_optimum(loss, radius)
    assert np.allclose(w_l1, [0.0, radius], atol=1e-4)  # L1: a corner, w1 = 0 exactly

    g = np.linspace(-1.6, 2.6, 300)
    W1, W2 = np.meshgrid(g, g)
    Z = loss(np.stack([W1, W2], axis=-1))

    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.9))
    for ax, name, w_opt in ((axes[0], "L2", w_l2), (axes[1], "L1", w_l1)):
        level = float(loss(w_opt))
        ax.contour(W1, W2, Z, levels=level * np.array([0.15, 0.4]), colors=GREY, linewidths=0.8)
        ax.contour(W1, W2, Z, levels=[level], colors=ORANGE, linewidths=1.6)
        if name == "L2":
            phi = np.linspace(0, 2 * np.pi, 400)
            ax.fill(radius * np.cos(phi), radius * np.sin(phi), color=BLUE, alpha=0.18, lw=0)
            ax.plot(radius * np.cos(phi), radius * np.sin(phi), color=BLUE, lw=1.4)
            ball = r"$\|w\|_2^2 \leq \theta$"
            title = "L2: the contour touches the ball"
        else:
            d = radius * np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [1, 0]])
            ax.fill(d[:, 0], d[:, 1], color=BLUE, alpha=0.18, lw=0)
            ax.plot(d[:, 0], d[:, 1], color=BLUE, lw=1.4)
            ball = r"$\|w\|_1 \leq r$"
            title = "L1: it touches a corner, $w_1 = 0$"
        ax.plot(*w_star, "o", color="k", ms=5)
        ax.annotate(r"minimum of $\ell$", w_star, (6, -12), textcoords="offset points")
        ax.plot(*w_opt, "o", color=RED, ms=6, zorder=5)
        ax.annotate("penalized optimum", w_opt, (8, 8), textcoords="offset points", color=RED)
        ax.text(-1.45, -1.45, ball, color=BLUE)
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set(xlim=(-1.6, 2.6), ylim=(-1.6, 2.6), aspect="equal", title=title)
        ax.set_xlabel("$w_1$")
        ax.set_ylabel("$w_2$")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- chapter 02


def inverted_dropout() -> plt.Figure:
    """Chapter 02: a training step drops hidden units with probability p and scales the survivors
    by 1/(1-p); evaluation uses every unit unscaled. Inputs and outputs are never dropped."""
    p = 0.5
    sizes = [4, 6, 6, 2]
    rng = np.random.default_rng(7)
    keep = [np.ones(sizes[0], bool)]
    for n in sizes[1:-1]:
        while True:  # a picture with at least two units kept and two dropped per layer
            mask = rng.random(n) >= p
            if 2 <= mask.sum() <= n - 2:
                break
        keep.append(mask)
    keep.append(np.ones(sizes[-1], bool))
    assert all(k.all() for k in (keep[0], keep[-1]))

    def draw(ax, masks, title, scaled):
        xs = np.arange(len(sizes)) * 1.6
        ys = [np.linspace(-(n - 1) / 2, (n - 1) / 2, n) * 0.8 for n in sizes]
        for layer in range(len(sizes) - 1):
            for i, y0 in enumerate(ys[layer]):
                for j, y1 in enumerate(ys[layer + 1]):
                    alive = masks[layer][i] and masks[layer + 1][j]
                    ax.plot(
                        [xs[layer], xs[layer + 1]],
                        [y0, y1],
                        color=GREY if alive else "#e6e6e6",
                        lw=0.8 if alive else 0.5,
                        zorder=1,
                    )
        for layer, (x, y) in enumerate(zip(xs, ys, strict=True)):
            hidden = 0 < layer < len(sizes) - 1
            for i, yi in enumerate(y):
                if masks[layer][i]:
                    ax.scatter(x, yi, s=260, color=BLUE if hidden else "#555555", zorder=3)
                    if hidden and scaled:
                        ax.text(x + 0.22, yi + 0.12, r"$\times 2$", fontsize=8, color=BLUE)
                else:
                    ax.scatter(x, yi, s=260, facecolor="white", edgecolor=GREY, zorder=3)
                    ax.plot(x, yi, "x", color=RED, ms=9, mew=2, zorder=4)
        for x, label in zip(xs, ["input", "hidden", "hidden", "output"], strict=True):
            ax.text(x, -3.0, label, ha="center", fontsize=9)
        ax.set(xlim=(-0.6, xs[-1] + 0.8), ylim=(-3.3, 2.6), title=title)
        ax.axis("off")

    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.6))
    draw(
        axes[0],
        keep,
        f"training step, p = {p:g}:\ndrop units, scale the rest by 1/(1-p) = {1 / (1 - p):g}",
        scaled=True,
    )
    draw(axes[1], [np.ones(n, bool) for n in sizes], "evaluation:\nevery unit, no scaling", False)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- writing

FIGURES_BY_NAME: dict[str, Callable[[], plt.Figure]] = {
    "ch01_constraint_ball.svg": constraint_ball,
    "ch02_inverted_dropout.svg": inverted_dropout,
}


def render(make: Callable[[], plt.Figure]) -> bytes:
    with plt.rc_context(RC):
        fig = make()
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder to write into")
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    args = parser.parse_args(argv)
    stale = []
    for name, make in FIGURES_BY_NAME.items():
        data, path = render(make), args.out / name
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            print(f"wrote {path}")
    if stale:
        print("out of date (run `make assets`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
