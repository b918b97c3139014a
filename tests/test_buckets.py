"""lessonlib._buckets: how a population's rows are grouped by width (the training in buckets is
tested against full-width populations in test_search.py)."""

from __future__ import annotations

import numpy as np

from lessonlib import _buckets, search


def test_buckets_group_rows_by_rounded_up_width():
    groups = _buckets.buckets([3, 16, 17, 64, 33, 1, 48, 49], units=16, min_rows=1)
    assert [(b, r.tolist()) for b, r in groups] == [
        (16, [0, 1, 5]),
        (32, [2]),
        (48, [4, 6]),
        (64, [3, 7]),
    ]
    # 32 (1 row) joins 48 (now 3 rows); the widest keeps what is left; one width: one group
    assert [b for b, _ in _buckets.buckets([3, 16, 17, 64, 33, 1, 48, 49], min_rows=3)] == [
        16,
        48,
        64,
    ]
    assert [b for b, _ in _buckets.buckets([5.0] * 4, min_rows=8)] == [16]
    assert sum(len(r) for _, r in _buckets.buckets(np.arange(1, 65), min_rows=5)) == 64
    assert search.buckets is _buckets.buckets  # the name chapter 08 uses
