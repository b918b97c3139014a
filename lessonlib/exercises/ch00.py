"""The demo exercise of chapter 00: how an instant check and its hint look."""

from __future__ import annotations

import numpy as np

from lessonlib.exercises import Case, Exercise


def _squared_loss(y_hat, y):
    d = np.asarray(y_hat, np.float64) - np.asarray(y, np.float64)
    return np.mean(d**2 / 2)


EXERCISES = [
    Exercise(
        id="00.squared_loss",
        name="squared_loss",
        points=1,
        cases=(
            Case(
                (np.array([1.0, 2.0, 3.0], np.float32), np.array([1.0, 0.0, 5.0], np.float32)),
                note="y_hat = [1, 2, 3], y = [1, 0, 5]",
            ),
        ),
        hidden=(
            Case((np.zeros(4, np.float32), np.zeros(4, np.float32)), note="a perfect prediction"),
            Case(
                (np.linspace(-1, 1, 6, dtype=np.float32), np.ones(6, np.float32)),
                note="six points",
            ),
        ),
        reference=_squared_loss,
        hint="The mean over the examples of (y_hat - y)**2 / 2: keep the square, the 1/2 and the mean.",
    )
]
