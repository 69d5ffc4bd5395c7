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


#: The chat page's answer box (static/collection/study.css ``.response-box`` at its 18 px root):
#: the font and spacing of site turns rated before the page sent its layout.
CHAT_BOX_STYLE: dict = {
    "font_family": 'Georgia, "Liberation Serif", serif',
    "font_size_px": 24.3,
    "line_height_px": 42.525,
    "padding": [18.0, 21.6, 18.0, 21.6],
    "border": [1.0, 1.0, 1.0, 1.0],
}


def box_layout(recorded: dict | None, samples: pd.DataFrame, *, frame: str) -> dict:
    """How to draw one answer box in the replay so that its coordinates land on the same words.

    In order of preference: the layout the chat page recorded with the ratings (``Turn.box_layout``);
    the box size the logger stored with every sample (median ``box_width``/``box_height`` of the
    frame) with the chat page's font; for the release, which recorded neither, the chat page's
    font and a width estimated from the farthest point seen inside the box. ``source`` says which.
    """
    empty = pd.Series([], dtype="float64")
    part = samples[samples["frame"].astype(str) == frame] if len(samples) else samples.iloc[0:0]
    widths = part["box_width"].dropna().astype("float64") if "box_width" in part.columns else empty
    if recorded and recorded.get("width"):
        # Samples logged while the box had another width (a resized window) fall elsewhere.
        other = int((abs(widths - float(recorded["width"])) > 1).sum())
        return {**CHAT_BOX_STYLE, **recorded, "source": "recorded", "other_width_samples": other}
    if len(widths):
        heights = part["box_height"].dropna()
        width = float(widths.median())
        return {**CHAT_BOX_STYLE, "width": width, "height": float(heights.median()) if len(heights) else None,
                "source": "samples", "other_width_samples": int((abs(widths - width) > 1).sum())}
    xs = part["x"].dropna() if "x" in part.columns else empty
    xs = xs[xs >= 0]
    width = float(np.ceil(xs.max() / 10.0) * 10 + 10) if len(xs) else 560.0
    return {**CHAT_BOX_STYLE, "width": max(width, 200.0), "height": None, "source": "estimated"}
