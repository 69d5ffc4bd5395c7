"""Quality of a WebGazer calibration, computed from raw predictions (pure: no Django).

The browser sends what WebGazer predicted while the worker looked at known targets; the score is
computed here rather than trusted from the page.

Centre score (the paper, §3.4 and appendix E; WebGazer's own demo): for each of the last 50
predictions while the worker stares at the centre, ``max(0, 100 * (1 - d / (H / 2)))`` where
``d`` is the distance in CSS pixels to the target and ``H`` the viewport height; the score is
their mean. A worker passes when it is strictly above the threshold (default 70).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Predictions that enter the centre score (the paper's "last 50").
CENTRE_WINDOW = 50


def centre_score(xs: Sequence[float], ys: Sequence[float], *, target: tuple[float, float], height: float) -> float:
    """Mean of ``max(0, 100 (1 - d / (H/2)))`` over the last :data:`CENTRE_WINDOW` predictions.

    Parameters
    ----------
    xs, ys : sequences of shape (n_predictions,)
        Predicted gaze points in viewport CSS pixels, in time order.
    target : (x, y)
        The point the worker was asked to look at.
    height : float
        Viewport height ``H`` in CSS pixels.

    Returns
    -------
    float
        Score in [0, 100]; 0 when there are no predictions.
    """
    x = np.asarray(xs, dtype=float)[-CENTRE_WINDOW:]
    y = np.asarray(ys, dtype=float)[-CENTRE_WINDOW:]
    if x.size == 0 or height <= 0:
        return 0.0
    d = np.hypot(x - target[0], y - target[1])
    return float(np.mean(np.maximum(0.0, 100.0 * (1.0 - d / (height / 2.0)))))


@dataclass(frozen=True)
class PointQuality:
    """Accuracy and precision of the predictions for one validation target."""

    target_x: float
    target_y: float
    n_samples: int
    share_within_radius: float | None  #: fraction of predictions within ``radius`` of the target
    mean_offset_x: float | None  #: mean signed error (prediction - target)
    mean_offset_y: float | None
    mean_distance: float | None  #: accuracy: mean distance to the target
    precision_rms: float | None  #: precision: RMS distance of the predictions from their own mean
    samples_per_second: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def point_quality(
    xs: Sequence[float], ys: Sequence[float], ts: Sequence[float], *, target: tuple[float, float], radius: float
) -> PointQuality:
    """Per-point metrics; ``ts`` are sample times in ms (only their span is used, for the rate)."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    t = np.asarray(ts, dtype=float)
    n = int(x.size)
    if n == 0:
        return PointQuality(target[0], target[1], 0, None, None, None, None, None, None)
    dx, dy = x - target[0], y - target[1]
    d = np.hypot(dx, dy)
    spread = np.hypot(x - x.mean(), y - y.mean())
    span_s = (t.max() - t.min()) / 1000.0 if t.size > 1 else 0.0
    # n samples span n-1 intervals: the rate is intervals per second, not samples per span.
    rate = (n - 1) / span_s if span_s > 0 else None
    return PointQuality(
        target_x=float(target[0]),
        target_y=float(target[1]),
        n_samples=n,
        share_within_radius=float(np.mean(d <= radius)),
        mean_offset_x=float(dx.mean()),
        mean_offset_y=float(dy.mean()),
        mean_distance=float(d.mean()),
        precision_rms=float(np.sqrt(np.mean(spread**2))),
        samples_per_second=rate,
    )
