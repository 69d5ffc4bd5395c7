"""Achieved sampling rates (collection.sampling): instants per second of each signal over the
window of both, from stored-sample frames."""

from __future__ import annotations

import pandas as pd
import pytest

from collection.release import schema
from collection.sampling import achieved_rates

T0 = 1_700_000_000_000


def _frame(gaze_ms: list[float], mouse_ms: list[float]) -> pd.DataFrame:
    rows = []
    for signal, times in (("gaze", gaze_ms), ("mouse", mouse_ms)):
        for i, t in enumerate(times):
            for frame in ("abs", "box1"):  # one instant = an abs row and a box row
                rows.append({"signal": signal, "frame": frame, "x": 1.0, "y": 1.0, "page_timer_ms": float(t),
                             "epoch_ms": T0 + int(t), "row": i})
    return schema.conform(pd.DataFrame(rows))


def test_rates_count_instants_not_rows() -> None:
    gaze = [i * 250.0 for i in range(41)]  # 4 Hz over 10 s
    mouse = [i * 100.0 for i in range(101)]  # 10 Hz over 10 s
    r = achieved_rates(_frame(gaze, mouse))
    assert r["window_s"] == pytest.approx(10.0)
    assert r["gaze_rate_hz"] == pytest.approx(4.0) and r["mouse_rate_hz"] == pytest.approx(10.0)
    assert (r["n_gaze"], r["n_mouse"]) == (41, 101)


def test_a_stream_that_stopped_early_shows_a_lower_rate() -> None:
    """The window is both signals': a tracker that hung after 5 s of a 10 s task logged 5 s."""
    gaze = [i * 100.0 for i in range(51)]
    mouse = [i * 100.0 for i in range(101)]
    r = achieved_rates(_frame(gaze, mouse))
    assert r["gaze_rate_hz"] == pytest.approx(5.0) and r["mouse_rate_hz"] == pytest.approx(10.0)


def test_no_samples_no_rate() -> None:
    r = achieved_rates(schema.empty_frame())
    assert r["gaze_rate_hz"] is None and r["mouse_rate_hz"] is None and r["window_s"] == 0.0
    r = achieved_rates(_frame([], [0.0, 100.0, 200.0]))
    assert r["gaze_rate_hz"] == 0.0 and r["mouse_rate_hz"] == pytest.approx(10.0)
