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
