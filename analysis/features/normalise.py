"""Per-worker normalisation of absolute behaviour features (optional, label-free).

Why: reading speed, calibration quality and how much a worker moves the mouse differ a lot
between workers, so "40 s on the left answer" means different things for different people. A
model trained on other workers generalises better from values relative to the worker's own
habits. Only the worker's unlabelled features are used (available at prediction time for any
worker with a few turns), never labels.
"""

from __future__ import annotations

import pandas as pd

#: Per-side absolute features that get a worker-relative copy.
ABSOLUTE_FEATURES = ("total_time", "reviewing_time", "late_time", "total_points", "reviewing_points",
                     "total_records", "max_char")


def add_worker_normalised(features: pd.DataFrame, *, eps: float = 1.0) -> pd.DataFrame:
    """Add ``<signal>.<feature>_wn.<side>`` = value / (worker's median of the per-turn mean of
    both sides + eps), computed within each (worker, mode).

    Parameters
    ----------
    features : DataFrame
        The feature table (``worker``, ``mode`` and ``<signal>.<feature>.<1|2>`` columns).
    eps : float
        Keeps the ratio finite for workers whose median is 0.

    Returns
    -------
    DataFrame
        A copy with the new columns appended.
    """
    out = features.copy()
    keys = [features["worker"], features["mode"]]
    new = {}
    for signal in ("gaze", "mouse"):
        for name in ABSOLUTE_FEATURES:
            c1, c2 = f"{signal}.{name}.1", f"{signal}.{name}.2"
            if c1 not in features.columns or c2 not in features.columns:
                continue
            turn_mean = features[[c1, c2]].mean(axis=1)
            scale = turn_mean.groupby(keys).transform("median") + eps
            new[f"{signal}.{name}_wn.1"] = features[c1] / scale
            new[f"{signal}.{name}_wn.2"] = features[c2] / scale
    return pd.concat([out, pd.DataFrame(new, index=features.index)], axis=1)
