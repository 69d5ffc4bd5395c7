"""The eye-tracker check's pass rule on synthetic predictions (issue 20, item 1): a tracker frozen
at the centre (what WebGazer gives for eyes that never move: the mean of the click positions) fails
at every common screen size, a tracker that follows the eyes with a realistic error passes, and each
check (coverage, accuracy, spread, follows, face) fails on its own when only it is violated."""

from __future__ import annotations

import numpy as np
import pytest

from collection.gaze_quality import (
    ValidationRule,
    centre_score,
    prediction_share,
    s2s_rms,
    validation_points,
    validation_verdict,
)

#: Common screen sizes (CSS px of the browser's viewport), 1024x768 to 2560x1440.
SIZES = [(1024, 768), (1280, 720), (1280, 800), (1366, 768), (1440, 900), (1536, 864), (1600, 900),
         (1680, 1050), (1920, 1080), (2560, 1440)]
#: The calibration page's band at the top (webcam preview, message): targets lie in the area below.
BAND = 140
RULE = ValidationRule()


def targets(w: int, h: int) -> list[tuple[float, float, bool]]:
    """The validation targets where calibrate.mjs places them (centre first, then the four quarters)."""
    ah = h - BAND
    return [(w * fx, BAND + ah * fy, i == 0)
            for i, (fx, fy) in enumerate([(.5, .5), (.25, .25), (.75, .25), (.25, .75), (.75, .75)])]


def raw(w: int, h: int, predict, *, n: int = 20, frames: int | None = None, seed: int = 0) -> list[dict]:
    """The page's raw targets: ``predict(tx, ty, rng)`` gives one prediction per frame."""
    rng = np.random.default_rng(seed)
    out = []
    for x, y, c in targets(w, h):
        samples = []
        for i in range(n):
            px, py = predict(x, y, rng)
            samples.append({"x": float(px), "y": float(py), "t": 1000.0 + 66.0 * i})
        out.append({"x": x, "y": y, "centre": c, "frames": n if frames is None else frames, "samples": samples})
    return out


def judge(points: list[dict], face: float | None = 1.0, rule: ValidationRule = RULE):
    return validation_verdict(validation_points(points, radius=100), face_found_share=face, rule=rule)


def frozen_at(fx: float, fy: float):
    return lambda x, y, rng: (fx + rng.normal(0, 3), fy + rng.normal(0, 3))


def following(err: float, noise: float = 40.0):
    """Predictions ``err`` px from the target in a random direction per target, with frame noise."""
    def predict(x, y, rng, cache={}):  # noqa: B006 - one bias per target, fixed across its frames
        key = (x, y)
        if key not in cache:
            a = rng.uniform(0, 2 * np.pi)
            cache[key] = (err * np.cos(a), err * np.sin(a))
        bx, by = cache[key]
        return x + bx + rng.normal(0, noise), y + by + rng.normal(0, noise)
    return predict


@pytest.mark.parametrize("w, h", SIZES)
def test_tracker_frozen_at_the_centre_fails_although_its_centre_score_is_high(w, h):
    cx, cy = w / 2, BAND + (h - BAND) / 2  # the mean of the nine click positions
    points = raw(w, h, frozen_at(cx, cy))
    passed, judged, failures = judge(points)
    assert not passed
    corners = [p for p in judged if not p["centre"]]
    assert all(not p["checks"]["accuracy"] and not p["checks"]["follows"] for p in corners), failures
    assert judged[0]["passed"]  # the centre target alone looks perfect...
    c = points[0]
    assert centre_score([s["x"] for s in c["samples"]], [s["y"] for s in c["samples"]],
                        target=(c["x"], c["y"]), height=h) > 95  # ...and so does the paper's score


@pytest.mark.parametrize("w, h", SIZES)
def test_tracker_frozen_anywhere_fails(w, h):
    """Frozen off-centre (a bias): some corner is always far, and no corner's mean follows it."""
    for fx in np.linspace(0.1, 0.9, 5):
        for fy in np.linspace(0.1, 0.9, 5):
            passed, _, failures = judge(raw(w, h, frozen_at(w * fx, BAND + (h - BAND) * fy)))
            assert not passed and sum(f.startswith("follows") for f in failures) >= 2, (fx, fy, failures)


@pytest.mark.parametrize("w, h", SIZES)
@pytest.mark.parametrize("err", [60.0, 135.0, 170.0])
def test_tracker_that_follows_passes(w, h, err):
    """Errors as measured with the following-eyes camera (corner targets 105-135 px, README) and
    somewhat worse, with 40 px of frame-to-frame noise."""
    passed, judged, failures = judge(raw(w, h, following(err), seed=int(err)))
    assert passed, failures
    assert all(p["passed"] and p["prediction_share"] == 1.0 for p in judged)


def test_each_check_fails_on_its_own():
    w, h = 1366, 768
    good = following(100.0, noise=20.0)
    assert judge(raw(w, h, good))[0]
    # data loss: predictions on 8 of 20 frames at every target
    passed, _, failures = judge(raw(w, h, good, n=8, frames=20))
    assert not passed and {f.split("@")[0] for f in failures} == {"coverage"}
    # the camera rarely found a face
    passed, _, failures = judge(raw(w, h, good), face=0.2)
    assert not passed and failures == ["no_face"]
    # accuracy: every target 260 px off (each still nearer its own target than the centre one)
    passed, _, failures = judge(raw(w, h, lambda x, y, rng: (x + 260 * np.sign(x - w / 2), y)))
    assert not passed and {f.split("@")[0] for f in failures} == {"accuracy"}
    # spread: accurate on average, scattered 400 px around the target
    passed, _, failures = judge(raw(w, h, lambda x, y, rng: (x + rng.choice([-400, 400]), y), n=40))
    assert not passed and "spread" in {f.split("@")[0] for f in failures}
    # no prediction at all
    passed, _, failures = judge(raw(w, h, good, n=0, frames=0))
    assert not passed and {"coverage@1", "accuracy@1", "follows@1"} <= set(failures)


def test_thresholds_come_from_the_rule_and_metrics_are_recorded():
    w, h = 1366, 768
    points = raw(w, h, following(150.0, noise=10.0))
    assert judge(points)[0]
    passed, judged, failures = judge(points, rule=ValidationRule(max_distance_px=120.0))
    assert not passed and all(f.startswith("accuracy") for f in failures)
    p = judged[1]
    assert {"mean_distance", "share_within_radius", "precision_rms", "precision_s2s", "prediction_share",
            "frames", "distance_from_centre_px", "checks", "passed", "centre"} <= set(p)
    assert p["distance_from_centre_px"] == pytest.approx(np.hypot(w / 4, (h - BAND) / 4))


def test_helpers():
    assert prediction_share(5, 10) == 0.5 and prediction_share(0, 0) == 0.0 and prediction_share(3, None) is None
    assert s2s_rms([0, 3], [0, 4]) == pytest.approx(5.0) and s2s_rms([1], [1]) is None
    with pytest.raises(ValueError):
        validation_verdict([], face_found_share=None, rule=RULE)
