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


# --- the pass rule (issue 20) ---------------------------------------------------------------------
#
# The centre score alone passes a tracker that does not track: with eyes that never move,
# WebGazer's regression returns the mean of the click positions, which is where the centre target
# sits (83-97 points at every size tried, with 0 % of the predictions near any corner). A
# validation therefore passes only when EVERY target passes every check below; the centre score is
# still computed and stored (the paper's figure), but decides nothing.


@dataclass(frozen=True)
class ValidationRule:
    """Thresholds of the per-target pass rule; stored with each attempt (``as_dict``).

    Defaults chosen so that a frozen tracker fails at every common screen size while one that
    follows the eyes passes (README, "The eye-tracker check"): a frozen prediction is at least the
    corner-to-centre distance from some corner target (300 px at 1024x768, 376 at 1366x768, 534 at
    1920x1080), above ``max_distance_px``; and its mean prediction is never nearer a corner target
    than the centre target (``follows``), at any size.
    """

    max_distance_px: float = 200.0  #: accuracy: mean distance to each target (about 5 deg at 60 cm on a laptop)
    max_spread_px: float = 250.0  #: precision: RMS distance of a target's predictions from their own mean
    min_prediction_share: float = 0.5  #: data loss: share of the tracker's frames with a prediction, per target
    min_face_share: float = 0.5  #: share of the attempt during which the camera found a face
    name: str = "per-target-1"

    def as_dict(self) -> dict:
        return asdict(self)


#: The checks of one target, in the order a report lists them.
TARGET_CHECKS = ("coverage", "accuracy", "spread", "follows")


def target_checks(point: dict, *, centre_target: tuple[float, float], rule: ValidationRule) -> dict[str, bool]:
    """Which checks one target passes, from its metrics (``point_quality`` plus ``prediction_share``).

    ``follows`` (targets other than the centre): the mean prediction is nearer this target than the
    centre target, i.e. the tracker moved away from the centre when the eyes did.
    """
    share = point.get("prediction_share")
    dist = point.get("mean_distance")
    spread = point.get("precision_rms")
    checks = {
        "coverage": share is not None and share >= rule.min_prediction_share,
        "accuracy": dist is not None and dist <= rule.max_distance_px,
        "spread": spread is not None and spread <= rule.max_spread_px,
        "follows": True,
    }
    if not point.get("centre"):
        if dist is None:
            checks["follows"] = False
        else:
            mx = point["target_x"] + point["mean_offset_x"]
            my = point["target_y"] + point["mean_offset_y"]
            checks["follows"] = bool(dist < float(np.hypot(mx - centre_target[0], my - centre_target[1])))
    return checks


def validation_verdict(
    points: Sequence[dict], *, face_found_share: float | None, rule: ValidationRule
) -> tuple[bool, list[dict], list[str]]:
    """Apply the rule to every target.

    Parameters
    ----------
    points : list of dict
        One per target, with ``point_quality``'s keys, ``centre`` and ``prediction_share``.
    face_found_share : float or None
        Share of the attempt with a face (None: not measured, not checked).

    Returns
    -------
    (passed, points, failures)
        ``points`` are copies with ``checks`` (check -> bool) and ``passed`` added; ``failures``
        lists ``"<check>@<target index>"`` and ``"no_face"``, empty when the attempt passed.
    """
    centre = next((p for p in points if p.get("centre")), None)
    if centre is None:
        raise ValueError("one target must be the centre")
    centre_target = (centre["target_x"], centre["target_y"])
    failures: list[str] = []
    if face_found_share is not None and face_found_share < rule.min_face_share:
        failures.append("no_face")
    out = []
    for i, p in enumerate(points):
        checks = target_checks(p, centre_target=centre_target, rule=rule)
        failures += [f"{name}@{i}" for name in TARGET_CHECKS if not checks[name]]
        out.append({**p, "checks": checks, "passed": all(checks.values())})
    return not failures, out, failures


def prediction_share(n_samples: int, frames: int | None) -> float | None:
    """Share of the tracker's frames (its gaze-listener calls) that brought a prediction."""
    if frames is None:
        return None
    if frames <= 0:
        return 0.0
    return min(1.0, n_samples / frames)


def s2s_rms(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Precision as eye-tracking reports give it: RMS of the distances between successive samples."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.size < 2:
        return None
    return float(np.sqrt(np.mean(np.diff(x) ** 2 + np.diff(y) ** 2)))


def validation_points(raw_points: Sequence[dict], *, radius: float) -> list[dict]:
    """Per-target metrics from the page's raw targets ``{"x", "y", "centre", "frames", "samples"}``.

    Keys: :class:`PointQuality`'s, ``centre``, ``frames``, ``prediction_share``, ``precision_s2s``
    and ``distance_from_centre_px`` (how far a prediction frozen at the centre target would be).
    """
    centre = next((p for p in raw_points if p.get("centre")), None)
    out = []
    for p in raw_points:
        s = p.get("samples") or []
        xs, ys = [v["x"] for v in s], [v["y"] for v in s]
        q = point_quality(xs, ys, [v["t"] for v in s], target=(p["x"], p["y"]), radius=radius)
        frames = p.get("frames")
        out.append({
            **q.as_dict(),
            "centre": bool(p.get("centre")),
            "frames": frames,
            "prediction_share": prediction_share(q.n_samples, frames),
            "precision_s2s": s2s_rms(xs, ys),
            "distance_from_centre_px": (
                float(np.hypot(p["x"] - centre["x"], p["y"] - centre["y"])) if centre is not None else None
            ),
        })
    return out
