"""Achieved sampling rates of a task's gaze and mouse streams (pure: no Django).

The page promises a sampling clock (the study's *sample interval*, 100 ms = 10 Hz) but can only
log a gaze sample when WebGazer has made a prediction, which on a busy computer is much rarer. What
a task really got is measured here from the samples the server stored, so a browser cannot claim
a rate it did not deliver. The site stores the result on the task when the chat ends
(``Task.gaze_rate_hz``, ``Task.mouse_rate_hz``; see ``collection.services.trajectory``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def instant_rows(samples: pd.DataFrame, signal: str) -> pd.DataFrame:
    """One row per recorded instant of ``signal``.

    One instant has an ``abs`` row and a row per box: the ``abs`` rows are taken (else ``box1``,
    for data without them), one per (page timer, epoch) pair.
    """
    sig = samples[samples["signal"].astype(str) == signal]
    for frame in ("abs", "box1"):
        part = sig[sig["frame"].astype(str) == frame]
        if len(part):
            return part.drop_duplicates(["page_timer_ms", "epoch_ms"])
    return sig.iloc[0:0]


def signal_instants(samples: pd.DataFrame, signal: str) -> np.ndarray:
    """Sorted epoch times (ms) of the distinct instants of one signal (:func:`instant_rows`)."""
    if samples.empty:
        return np.empty(0)
    return np.sort(instant_rows(samples, signal)["epoch_ms"].dropna().to_numpy(dtype="float64"))


def achieved_rates(samples: pd.DataFrame) -> dict[str, Any]:
    """Samples per second of gaze and of mouse over the task's logged window.

    The window runs from the first to the last instant of *either* signal, so a stream that stopped
    early (a tracker that hung) shows a lower rate instead of the rate of its good part. A gaze
    instant without a face or a prediction still counts: it is a tracker frame that was logged
    (its share is data loss, a separate figure).

    Parameters
    ----------
    samples : DataFrame
        One task's samples, long format (``collection.release.schema``).

    Returns
    -------
    dict
        ``gaze_rate_hz``, ``mouse_rate_hz`` (None with no window: fewer than two instants),
        ``n_gaze``, ``n_mouse`` (instants) and ``window_s``.
    """
    gaze, mouse = signal_instants(samples, "gaze"), signal_instants(samples, "mouse")
    both = np.concatenate([gaze, mouse])
    window = float((both.max() - both.min()) / 1000.0) if len(both) >= 2 else 0.0

    def rate(t: np.ndarray) -> float | None:
        # n instants spread evenly over the window are n - 1 intervals.
        return float((len(t) - 1) / window) if window > 0 and len(t) >= 1 else None

    return {
        "gaze_rate_hz": rate(gaze) if len(gaze) else (0.0 if window > 0 else None),
        "mouse_rate_hz": rate(mouse) if len(mouse) else (0.0 if window > 0 else None),
        "n_gaze": len(gaze),
        "n_mouse": len(mouse),
        "window_s": window,
    }
