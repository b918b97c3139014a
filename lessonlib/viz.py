"""Plots and slider panels: the only module that imports matplotlib and ipywidgets.

A ``Panel`` is a set of slider/dropdown controls, one matplotlib figure and a ``draw`` function.
Moving a control calls ``draw(**values)``, which retrains (or looks up) whatever it needs and
updates the figure's artists in place; the figure is then rendered once to PNG and shown in an
``Output`` widget. Updating artists instead of building a new figure is what keeps a slider move
cheap (a new figure costs ~50 ms before any training happens). ``Panel.update(**values)`` runs the
same path without a browser and returns the time it took, which is what ``make bench`` measures.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping

import matplotlib

matplotlib.use("Agg")  # render to PNG ourselves; also works headless

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
from IPython.display import Image, display  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lessonlib.train import diverged_at  # noqa: E402

COLORS = {"train": "#1f77b4", "test": "#d62728", "val": "#d62728", "norm": "#2ca02c"}


def figure(ncols: int = 1, *, width: float = 4.2, height: float = 3.2, dpi: int = 80):
    """A stand-alone Agg figure (not registered with pyplot, so it is never shown twice)."""
    fig = Figure(figsize=(width * ncols, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def to_png(fig: Figure, *, draw: bool = True) -> bytes:
    """Render ``fig`` (unless ``draw=False``: use what the canvas holds) and encode it as PNG.

    PNG compression level 1: ~5x faster to encode than the default and only slightly larger. An
    opaque figure (every pixel's alpha 255, as ``figure()`` makes them) is encoded as RGB, which
    is the same picture, ~20% faster to encode and ~10% smaller.
    """
    from PIL import Image as PILImage

    if draw:
        fig.canvas.draw()
    w, h = fig.canvas.get_width_height()
    rgba = fig.canvas.buffer_rgba()
    img = PILImage.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1)
    if np.asarray(rgba)[..., 3].min() == 255:
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def show(fig: Figure) -> None:
    """Display a figure made with ``figure()`` as a PNG in the notebook."""
    display(Image(to_png(fig)))


def finite(values) -> np.ndarray:
    """Values with every non-finite entry masked (so a diverged run plots as a broken line)."""
    return np.ma.masked_invalid(np.asarray(values, dtype=np.float64))


def mark_divergence(ax, history: Mapping[str, np.ndarray], label: str = "") -> None:
    """Say on the plot where a run diverged instead of silently drawing nothing."""
    epoch = int(diverged_at(history))
    if epoch:
        ax.axvline(epoch, color="k", ls=":", lw=1)
        ax.text(
            0.5,
            0.5,
            f"{label}diverged at epoch {epoch}\n(loss became NaN/inf)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="k",
            bbox={"facecolor": "#fff3cd", "edgecolor": "#d39e00"},
        )


def plot_history(
    ax,
    history: Mapping[str, np.ndarray],
    *,
    key: str = "loss",
    log: bool = True,
    title: str | None = None,
    labels=("train", "test"),
):
    """Train and test curves of one run (``train_<key>``, ``test_<key>``) against the epoch."""
    epochs = np.arange(1, len(history[f"train_{key}"]) + 1)
    lines = []
    for split, lab in zip(("train", "test"), labels, strict=True):
        (line,) = ax.plot(epochs, finite(history[f"{split}_{key}"]), color=COLORS[split], label=lab)
        lines.append(line)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    mark_divergence(ax, history)
    return lines


# --------------------------------------------------------------------------- slider panels


def log_slider(
    description: str, *, value: float, min_exp: float, max_exp: float, step: float = 0.1, **kwargs
) -> widgets.FloatLogSlider:
    """A slider over ``10**min_exp .. 10**max_exp`` that fires on release, not on every pixel."""
    return widgets.FloatLogSlider(
        value=value,
        base=10,
        min=min_exp,
        max=max_exp,
        step=step,
        description=description,
        continuous_update=False,
        readout_format=".3g",
        **kwargs,
    )


def slider(
    description: str, *, value: float, min: float, max: float, step: float, **kwargs
) -> widgets.FloatSlider:
    """A linear slider that fires on release (``continuous_update=False``)."""
    return widgets.FloatSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        continuous_update=False,
        **kwargs,
    )


def _animated_artists(fig: Figure) -> list:
    """The figure's and its axes' direct children drawn with ``animated=True``, in z-order.

    One level deep on purpose: ``fig.findobj`` also walks every tick of every axis, which costs
    ~15 ms per redraw, and animated artists (curves, images, titles) are children of an axes.
    """
    found = [a for a in fig.get_children() if a.get_animated()]
    for ax in fig.axes:
        found += sorted(
            (a for a in ax.get_children() if a.get_animated()), key=lambda a: a.get_zorder()
        )
    return found


def neighbour(control: widgets.ValueWidget):
    """A value next to ``control``'s current one: one step down a slider (up at its minimum), the
    previous option of a dropdown (the next one at the first), the other state of a checkbox;
    None for a control without such a value."""
    value = control.value
    if hasattr(control, "_options_values"):  # Dropdown, ToggleButtons, RadioButtons, ...
        options = list(control._options_values)
        if len(options) < 2 or control.index is None:
            return None
        return options[control.index - 1 if control.index > 0 else 1]
    if isinstance(value, bool):
        return not value
    if not all(hasattr(control, a) for a in ("min", "max", "step")) or not control.step:
        return None
    if isinstance(control, widgets.FloatLogSlider):
        exponent = np.log(value) / np.log(control.base)
        down = exponent - control.step >= control.min - 1e-9
        return float(control.base ** (exponent - control.step if down else exponent + control.step))
    down = value - control.step >= control.min
    other = value - control.step if down else value + control.step
    if other > control.max:
        return None
    return type(value)(other)


class Panel:
    """Controls + one figure + ``draw(**values)``; redraws in place when a control changes.

    ``draw`` receives the current value of every control by name and updates ``fig``'s artists.
    ``last_ms`` holds the kernel-side time of the last update (draw + PNG render), and
    ``update(**values)`` sets values and redraws synchronously (for tests and benchmarks).

    Blitting: artists created with ``animated=True`` (the curves, a title that shows the value)
    are drawn on top of a cached background holding everything else (axes, ticks, labels), which
    makes a redraw ~10x cheaper. Fix the axis limits of such plots; if ``draw`` changes anything
    static (limits, a new data set), it returns ``"full"`` and the background is rebuilt. When the
    static part is one of a few states (a surface picked from a dropdown), ``draw`` returns
    ``("background", key)`` instead, ``key`` naming the state: the background of each key is
    drawn once and kept, and returning that key again restores it (a full redraw with contour
    sets and tick labels costs ~100 ms, a restore ~1 ms). Kept backgrounds need a figure whose
    layout does not move between keys: lay it out once, then ``fig.set_layout_engine("none")``.

    Warming (``warm=True``, the default): a learner's *first* move of a control would otherwise pay
    one-time costs that every later move skips — the first call of each eager JAX operation in
    ``draw`` compiles it, matplotlib lays out new text and artists, PIL sets up its encoder. So the
    panel draws itself once per control at a neighbouring value, and then at the current values
    again, before it is shown; nothing of that is displayed and ``times_ms`` does not count it
    (``warm_ms`` holds what it cost). ``draw`` must therefore be a function of the control values
    (the same values give the same picture), which the browser tests check.
    """

    def __init__(
        self,
        fig: Figure,
        draw: Callable[..., None],
        *,
        warm: bool = True,
        **controls: widgets.ValueWidget,
    ):
        self.fig, self.draw, self.controls = fig, draw, controls
        self.out = widgets.Output()
        self._background = None
        self._backgrounds: dict = {}  # ("background", key) results of draw: key -> background
        self.status = widgets.HTML()
        self.last_ms = float("nan")
        self.warm_ms = 0.0
        self.times_ms: list[float] = []
        for control in controls.values():
            control.observe(self._on_change, names="value")
        box = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([box, self.out, self.status])
        if warm:  # before the first image, so the one shown is drawn the way every later one is
            self.warm()
        self.render()

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def render(self) -> float:
        start = time.perf_counter()
        try:
            png = self._blit(self.draw(**self.values()))
        except Exception as e:  # show the problem next to the plot instead of a silent widget
            self.status.value = f"<b style='color:#b00'>update failed:</b> {type(e).__name__}: {e}"
            raise
        self.out.clear_output(wait=True)
        with self.out:
            display(Image(png))
        self.last_ms = (time.perf_counter() - start) * 1000
        self.times_ms.append(self.last_ms)
        self.status.value = f"<small>updated in {self.last_ms:.0f} ms</small>"
        return self.last_ms

    def _blit(self, drawn, *, rebuild: bool = False) -> bytes:
        """Render after ``draw`` returned ``drawn`` (None, ``"full"`` or ``("background", key)``);
        ``rebuild`` draws the background anew even if it is kept."""
        animated = _animated_artists(self.fig)
        if not animated:
            return to_png(self.fig)
        canvas = self.fig.canvas
        keyed = isinstance(drawn, tuple) and len(drawn) == 2 and drawn[0] == "background"
        if keyed and not rebuild and drawn[1] in self._backgrounds:
            self._background = self._backgrounds[drawn[1]]
            canvas.restore_region(self._background)
        elif rebuild or keyed or drawn == "full" or self._background is None:
            canvas.draw()  # draws everything except the animated artists
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            if keyed:
                self._backgrounds[drawn[1]] = self._background
        else:
            canvas.restore_region(self._background)
        for artist in animated:
            (artist.axes or self.fig).draw_artist(artist)
        return to_png(self.fig, draw=False)

    def _on_change(self, change) -> None:
        del change
        self.render()

    def warm(self) -> float:
        """Draw and render once with each control at a neighbouring value, then at the current
        values again, showing nothing; return the milliseconds it took (also in ``warm_ms``)."""
        start = time.perf_counter()
        current = self.values()
        try:
            for name, control in self.controls.items():
                other = neighbour(control)
                if other is None or getattr(control, "disabled", False):
                    continue
                self._blit(self.draw(**{**current, name: other}))
        finally:  # leave the figure (and the blitting background) as the current values draw it
            self._blit(self.draw(**current), rebuild=True)
        self.warm_ms = (time.perf_counter() - start) * 1000
        return self.warm_ms

    def update(self, **values) -> float:
        """Set controls (without firing their callbacks one by one) and redraw once; return ms."""
        for name, value in values.items():
            control = self.controls[name]
            control.unobserve(self._on_change, names="value")
            try:
                control.value = value
            finally:
                control.observe(self._on_change, names="value")
        return self.render()

    def _ipython_display_(self) -> None:
        display(self.widget)
