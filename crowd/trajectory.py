"""What the replay page shows of one turn: samples on a time axis and dwell time per character.

Pure module (no Django).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Longest time one sample may stand for: a longer pause is missing data, not reading.
DWELL_CAP_MS = 1000.0


def char_dwell(
    t_ms: np.ndarray, char_index: np.ndarray, text_length: int, *, cap_ms: float = DWELL_CAP_MS
) -> np.ndarray:
    """Dwell time per character: each sample holds its character until the next sample.

    Parameters
    ----------
    t_ms : ndarray, shape (n,)
        Sample times in ms, sorted.
    char_index : ndarray, shape (n,)
        Character under the point (NaN or < 0 when none).
    text_length : int
        Characters of the response.
    cap_ms : float
        A sample counts for at most this long (the last one counts for the median interval).

    Returns
    -------
    ndarray, shape (text_length,)
        Milliseconds spent on each character.
    """
    out = np.zeros(max(int(text_length), 0))
    t = np.asarray(t_ms, dtype="float64")
    c = np.asarray(char_index, dtype="float64")
    if len(t) == 0 or text_length <= 0:
        return out
    dt = np.diff(t)
    last = float(np.median(dt)) if len(dt) else 0.0
    dwell = np.minimum(np.append(dt, last), cap_ms)
    valid = ~np.isnan(c) & (c >= 0) & (c < text_length)
    np.add.at(out, c[valid].astype(int), dwell[valid])
    return out


def replay_series(samples: pd.DataFrame, *, signal: str, frame: str) -> dict[str, list]:
    """One signal in one frame as parallel lists (time from 0 in ms, x, y, char index).

    ``x``/``y`` are None outside the box (the release's ``-1, -1``); ``c`` is None off text.
    """
    part = samples[(samples["signal"].astype(str) == signal) & (samples["frame"].astype(str) == frame)]
    part = part.sort_values(["epoch_ms", "row"], kind="stable")
    t = part["epoch_ms"].to_numpy(dtype="float64", na_value=np.nan)
    x = part["x"].to_numpy(dtype="float64", na_value=np.nan)
    y = part["y"].to_numpy(dtype="float64", na_value=np.nan)
    c = part["char_index"].to_numpy(dtype="float64", na_value=np.nan)
    outside = (x < 0) & (y < 0)
    return {
        "t": [None if np.isnan(v) else float(v) for v in t],
        "x": [None if (o or np.isnan(v)) else round(float(v), 1) for v, o in zip(x, outside, strict=True)],
        "y": [None if (o or np.isnan(v)) else round(float(v), 1) for v, o in zip(y, outside, strict=True)],
        "c": [None if np.isnan(v) else int(v) for v in c],
    }
