"""Small numeric building blocks of the features, each defined once (pure numpy)."""

from __future__ import annotations

import numpy as np


def smoothed_time(times_s: np.ndarray, start_s: float, end_s: float, window_s: float) -> float:
    """Time covered by the union of ``[t, t + window_s]`` over ``times_s``, clipped to a span.

    The paper's one-second smoothing: a sample inside a box counts the user as looking at it for
    the next second, which bridges the frames WebGazer drops or mislocates.

    Parameters
    ----------
    times_s : ndarray, shape (n,)
        Sorted times (s) at which the point was inside the box.
    start_s, end_s : float
        The span (s) the result is clipped to.
    window_s : float
        Smoothing window (s).

    Returns
    -------
    float
        Seconds; 0 for no samples or an empty span.
    """
    if len(times_s) == 0 or not end_s > start_s:
        return 0.0
    starts = np.clip(times_s, start_s, end_s)
    ends = np.clip(times_s + window_s, start_s, end_s)
    # equal-length intervals sorted by start: each one adds up to the next start
    nxt = np.append(starts[1:], np.inf)
    return float(np.sum(np.minimum(ends, nxt) - starts))


def window_means(
    times_s: np.ndarray, values: np.ndarray, start_s: float, end_s: float, n_windows: int
) -> np.ndarray:
    """Mean of ``values`` in each of ``n_windows`` equal windows of ``[start_s, end_s]``.

    An empty window is NaN, never 0: 0 is a real position (the first character).

    Returns
    -------
    ndarray, shape (n_windows,)
    """
    out = np.full(n_windows, np.nan)
    if len(times_s) == 0 or not end_s > start_s:
        return out
    inside = (times_s >= start_s) & (times_s <= end_s)
    if not inside.any():
        return out
    rel = (times_s[inside] - start_s) / (end_s - start_s)
    idx = np.minimum((rel * n_windows).astype(np.int64), n_windows - 1)
    sums = np.bincount(idx, weights=values[inside], minlength=n_windows)
    counts = np.bincount(idx, minlength=n_windows)
    nonempty = counts > 0
    out[nonempty] = sums[nonempty] / counts[nonempty]
    return out


def eps_ratio(a: np.ndarray | float, b: np.ndarray | float, eps: float) -> np.ndarray | float:
    """``(a + eps) / (b + eps)`` (appendix B.1): finite, and near 1 when both are tiny."""
    return (np.asarray(a, dtype=float) + eps) / (np.asarray(b, dtype=float) + eps)


def safe_div(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is 0 (a normalised value of nothing is unknown, not 0)."""
    return float(a) / float(b) if b else float("nan")
