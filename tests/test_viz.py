"""viz: the blitted panel image is the image a full redraw gives, and it is a function of the
control values; sliders validate and snap as the notebooks rely on."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lessonlib import viz


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _panel():
    fig, (ax_line, ax_img) = viz.figure(2)
    xs = np.linspace(0.0, 1.0, 50)
    ax_line.set(xlim=(0, 1), ylim=(-1.1, 1.1), xlabel="x")
    (line,) = ax_line.plot([], [], animated=True, zorder=3)
    (under,) = ax_line.plot([], [], color="0.7", lw=6, animated=True, zorder=1)
    title = ax_line.set_title("", animated=True)
    image = ax_img.imshow(np.zeros((8, 8)), vmin=-1, vmax=1, animated=True)
    static = ax_img.set_title("static title")

    def draw(freq, phase):
        line.set_data(xs, np.sin(2 * np.pi * freq * xs + phase))
        under.set_data(xs, np.cos(2 * np.pi * freq * xs))
        title.set_text(f"freq = {freq:.2f}")
        image.set_data(np.outer(np.sin(freq * np.arange(8)), np.cos(phase + np.arange(8))))

    panel = viz.Panel(
        fig,
        draw,
        freq=viz.slider("freq", value=1.0, min=0.5, max=3.0, step=0.25),
        phase=viz.log_slider("phase", value=0.1, min_exp=-2, max_exp=0),
    )
    return panel, fig, (line, under, title, image), static


def test_animated_artists_are_found_one_level_deep_in_draw_order():
    panel, fig, (line, under, title, image), static = _panel()
    found = viz._animated_artists(fig)
    assert set(map(id, found)) == {id(a) for a in (line, under, title, image)}
    assert static not in found
    assert found.index(under) < found.index(line)  # lower zorder is drawn first
    deep = fig.findobj(match=lambda a: a.get_animated())  # the slow walk finds nothing more
    assert {id(a) for a in deep} == set(map(id, found))


def test_blitted_update_matches_a_full_redraw():
    panel, fig, artists, _ = _panel()
    panel.update(freq=2.0, phase=0.5)
    blitted = _pixels(viz.to_png(fig, draw=False))
    for a in artists:
        a.set_animated(False)
    full = _pixels(viz.to_png(fig))
    assert blitted.shape == full.shape
    # Not bit for bit: blitted artists lie on top of everything static (a curve over a spine), and
    # an image drawn alone is resampled with its cell edges a pixel apart; well under 1% differs.
    differ = np.any(blitted != full, axis=-1)
    assert differ.mean() < 5e-3


def test_the_image_is_a_function_of_the_values():
    panel, fig, _, _ = _panel()
    first = viz.to_png(fig, draw=False)
    panel.update(freq=2.5)
    moved = viz.to_png(fig, draw=False)
    panel.update(freq=1.0)
    back = viz.to_png(fig, draw=False)
    assert moved != first
    assert back == first
    assert len(panel.times_ms) == 3 and all(t > 0 for t in panel.times_ms)


def test_a_control_change_redraws_once():
    panel, _, _, _ = _panel()
    n = len(panel.times_ms)
    panel.controls["freq"].value = 1.5  # what the browser does on release
    assert len(panel.times_ms) == n + 1
    assert panel.values() == {"freq": 1.5, "phase": pytest.approx(0.1)}


def test_a_failing_draw_is_shown_next_to_the_plot():
    fig, _ = viz.figure()

    def draw(x):
        if x > 1:
            raise ValueError("x too large")

    panel = viz.Panel(fig, draw, x=viz.slider("x", value=0.0, min=0.0, max=2.0, step=1.0))
    with pytest.raises(ValueError, match="x too large"):
        panel.update(x=2.0)
    assert "x too large" in panel.status.value


def test_sliders_fire_on_release():
    s = viz.slider("lr", value=0.1, min=0.0, max=1.0, step=0.1)
    log = viz.log_slider("lambda", value=3.0, min_exp=-3, max_exp=2)
    assert not s.continuous_update and not log.continuous_update
    assert log.min == -3 and log.max == 2 and log.value == pytest.approx(3.0)


def test_neighbour_values_stay_on_the_control():
    import ipywidgets as widgets

    s = viz.slider("lr", value=0.5, min=0.0, max=1.0, step=0.1)
    assert viz.neighbour(s) == pytest.approx(0.4)
    s.value = 0.0
    assert viz.neighbour(s) == pytest.approx(0.1)  # at the minimum: one step up
    log = viz.log_slider("lambda", value=1.0, min_exp=-2, max_exp=0, step=0.5)
    assert viz.neighbour(log) == pytest.approx(10**-0.5)
    ints = widgets.IntSlider(value=3, min=3, max=9, step=2)
    assert viz.neighbour(ints) == 5 and isinstance(viz.neighbour(ints), int)
    drop = widgets.Dropdown(options=[("a", 1), ("b", 2), ("c", 3)], value=1)
    assert viz.neighbour(drop) == 2
    drop.value = 3
    assert viz.neighbour(drop) == 2
    assert viz.neighbour(widgets.Checkbox(value=True)) is False
    assert viz.neighbour(widgets.Dropdown(options=["only"])) is None
    assert viz.neighbour(widgets.Text("x")) is None


def test_the_panel_warms_itself_without_showing_or_counting_it():
    calls = []
    fig, (ax,) = viz.figure()
    ax.set(xlim=(0, 1), ylim=(0, 4))
    (line,) = ax.plot([], [], animated=True)

    def draw(k, shape):
        calls.append((k, shape))
        line.set_data([0, 1], [k, k if shape == "flat" else 0])

    controls = dict(
        k=viz.slider("k", value=2.0, min=1.0, max=3.0, step=0.5),
        shape=__import__("ipywidgets").Dropdown(options=["flat", "down"], value="flat"),
    )
    panel = viz.Panel(fig, draw, **controls)
    # one draw per control at a neighbour, the current values again, and then the one image shown
    # (drawn after warming, so it is drawn the way every later image is: moving a control away and
    # back brings back exactly this image, which the browser test checks)
    assert calls == [(1.5, "flat"), (2.0, "down"), (2.0, "flat"), (2.0, "flat")]
    assert len(panel.times_ms) == 1 and panel.warm_ms > 0
    warmed = viz.to_png(fig, draw=False)
    cold_fig, (cold_ax,) = viz.figure()
    cold_ax.set(xlim=(0, 1), ylim=(0, 4))
    (cold_line,) = cold_ax.plot([], [], animated=True)

    def cold_draw(k, shape):
        cold_line.set_data([0, 1], [k, k if shape == "flat" else 0])

    cold = viz.Panel(
        cold_fig,
        cold_draw,
        warm=False,
        k=viz.slider("k", value=2.0, min=1.0, max=3.0, step=0.5),
        shape=__import__("ipywidgets").Dropdown(options=["flat", "down"], value="flat"),
    )
    assert cold.warm_ms == 0
    # after warming, the figure and its blitting background are those of the current values
    assert warmed == viz.to_png(cold_fig, draw=False)
    panel.update(k=3.0)
    cold.update(k=3.0)
    assert viz.to_png(fig, draw=False) == viz.to_png(cold_fig, draw=False)


def _two_state_panel(keyed: bool):
    """A static curve and axis limits per ``state`` (a dropdown), an animated line over them;
    ``draw`` returns ``("background", state)`` (``keyed``) or ``"full"`` on every move."""
    import ipywidgets as widgets

    fig, (ax,) = viz.figure()
    xs = np.linspace(0.0, 2.0, 40)
    statics = {"wide": ax.plot(xs, xs**2, color="0.6")[0], "narrow": ax.plot(xs, -xs, "k:")[0]}
    limits = {"wide": ((0, 2), (-1, 4)), "narrow": ((0, 1), (-2, 1))}
    (line,) = ax.plot([], [], animated=True)
    title = ax.set_title("", animated=True)
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine("none")

    def draw(state, a):
        for name, artist in statics.items():
            artist.set_visible(name == state)
        ax.set(xlim=limits[state][0], ylim=limits[state][1])
        line.set_data(xs, a * np.sin(3 * xs))
        title.set_text(f"{state}, a = {a:.1f}")
        return ("background", state) if keyed else "full"

    panel = viz.Panel(
        fig,
        draw,
        state=widgets.Dropdown(options=["wide", "narrow"], value="wide"),
        a=viz.slider("a", value=1.0, min=0.0, max=2.0, step=0.5),
    )
    return panel, fig


def test_kept_backgrounds_give_the_full_redraw_image_and_are_drawn_once_per_key(monkeypatch):
    keyed, keyed_fig = _two_state_panel(True)
    full, full_fig = _two_state_panel(False)
    redraws = []
    real_draw = keyed_fig.canvas.draw
    monkeypatch.setattr(keyed_fig.canvas, "draw", lambda: redraws.append(1) or real_draw())
    for move in ({"state": "narrow"}, {"a": 2.0}, {"state": "wide"}, {"state": "narrow", "a": 0.5}):
        keyed.update(**move)
        full.update(**move)
        assert viz.to_png(keyed_fig, draw=False) == viz.to_png(full_fig, draw=False), move
    assert redraws == []  # both backgrounds were drawn when the panel warmed itself
    # a key never seen is drawn once, then kept
    keyed._backgrounds.pop("wide")
    keyed.update(state="wide")
    keyed.update(state="narrow")
    keyed.update(state="wide")
    assert redraws == [1]


def test_png_drops_only_an_alpha_channel_that_is_opaque():
    fig, (ax,) = viz.figure()
    ax.plot([0, 1], [1, 0])
    opaque = Image.open(io.BytesIO(viz.to_png(fig)))
    assert opaque.mode == "RGB"
    fig.patch.set_alpha(0.0)  # a transparent figure keeps its alpha
    ax.patch.set_alpha(0.0)
    clear = Image.open(io.BytesIO(viz.to_png(fig)))
    assert clear.mode == "RGBA" and np.asarray(clear)[..., 3].min() == 0
    # the same pixels either way where the figure is opaque
    fig.patch.set_alpha(1.0)
    ax.patch.set_alpha(1.0)
    again = np.asarray(Image.open(io.BytesIO(viz.to_png(fig))).convert("RGBA"))
    np.testing.assert_array_equal(again, np.asarray(opaque.convert("RGBA")))
    np.testing.assert_array_equal(again[..., :3], np.asarray(fig.canvas.buffer_rgba())[..., :3])
