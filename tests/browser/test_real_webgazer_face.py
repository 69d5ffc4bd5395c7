"""The REAL WebGazer on a camera video of a still face (no injected gaze; its eyes never move), in
one browser page so that WebGazer starts once: every calibration and validation target is the
element at its own centre at five screen sizes, the badge tells "not calibrated yet" from "no face",
and the eye-tracker check FAILS the still face at every size with the default pass rule although the
paper's centre score would pass it (issue 20, item 1): WebGazer's regression then returns the mean
of the click positions, which is where the centre target sits, so only the corner targets tell.
(A camera whose eyes follow the targets passes the same check: test_real_webgazer_follow.py.)

WebGazer's face mesh takes most of a CPU core per video frame (about 5 frames/s on the 2-core CI
machine), so the page's clicks and timers run slowly while it tracks: the study is set to one
click per calibration dot and the validation targets are shortened (``SHORT_VALIDATION``).
"""

from __future__ import annotations

import json

import pytest

from collection.models import Task
from collection.services import study

from .real_webgazer import (
    SHORT_VALIDATION,
    WATCH_TARGETS,
    click_all_points,
    enter_to_calibration,
    heading_clear,
    shot,
    shots,
    study_content,
)

#: The issue's four sizes and 1366x800; every attempt fails, and "Try again" re-runs the
#: calibration at the next size with the same WebGazer.
SIZES = [(1280, 720), (1440, 900), (1920, 1080), (1366, 800), (1366, 768)]


def _states(page) -> list[str]:
    return page.evaluate("window.__faceStates")


def _calibrate_at_every_size(page) -> None:
    for i, (w, h) in enumerate(SIZES):
        page.set_viewport_size({"width": w, "height": h})
        seen_before = page.evaluate("window.__targets.length")
        if i == 0:
            shots(page, "calibrate-intro")
            assert not page.locator("#error").is_visible()  # no empty error box on the intro
            page.get_by_role("button", name="Start").click()
            # WebGazer's face mesh finds the face before any click: "not calibrated yet", not "no face"
            page.wait_for_function("() => window.__faceStates.includes('not-calibrated')", timeout=60_000)
            assert "no-face" not in _states(page), _states(page)
        else:
            page.get_by_role("button", name="Try again").click()
        click_all_points(page, shot_name=f"calibration-{w}x{h}")
        if w in (1366, 1920) and h in (768, 1080):
            page.wait_for_selector(".calib-target", timeout=30_000)
            shot(page, f"validation-{w}x{h}")
        page.wait_for_selector("#result:not([hidden])", timeout=90_000)
        shot(page, f"result-{w}x{h}")
        targets = page.evaluate("window.__targets")[seen_before:]
        points = [t for t in targets if t["kind"].startswith("calib-point")]
        checks = [t for t in targets if t["kind"].startswith("calib-target")]
        assert len(points) == 9 and len(checks) == 5, targets
        assert all((t["w"], t["h"]) == (w, h) for t in targets), targets
        blocked = [t for t in targets if not t["ok"]]
        assert not blocked, f"{w}x{h}: targets under something else: {blocked}"
        assert heading_clear(page, "#result h1"), f"{w}x{h}: the preview covers the result heading"
        assert page.locator("#failed").is_visible() and not page.locator("#passed").is_visible()


@pytest.mark.django_db(transaction=True)
def test_real_webgazer_still_face_fails_the_check_at_every_size(face_browser, asgi_server):
    study_content()
    cfg = study.study_settings_get()
    cfg.calibration_clicks_per_point = 1
    cfg.max_calibration_attempts = 0  # every size is tried: failing must not end the task
    cfg.save()
    context = face_browser.new_context(viewport={"width": 1280, "height": 720}, base_url=asgi_server)
    context.add_init_script(WATCH_TARGETS)
    context.add_init_script(SHORT_VALIDATION)
    page = context.new_page()
    worker = enter_to_calibration(page, "webcam-worker")
    assert "click it, until it turns yellow" in page.locator("#intro").inner_text()  # 1 click, said so

    _calibrate_at_every_size(page)
    task = Task.objects.get(worker=worker)
    attempts = list(task.calibration_attempts.order_by("pk"))
    assert [(a.viewport_w, a.viewport_h) for a in attempts] == SIZES
    assert not any(a.passed for a in attempts)
    assert all(a.n_clicks == 9 for a in attempts)
    assert all(a.face_found_share > 0.9 for a in attempts), [a.face_found_share for a in attempts]
    for a in attempts:
        print(json.dumps({"viewport": [a.viewport_w, a.viewport_h], "centre_score": round(a.score, 1),
                          "failures": a.rule["failures"],
                          "mean_px": [None if p["mean_distance"] is None else round(p["mean_distance"])
                                      for p in a.points]}))
        # the real tracker predicted during the validation; the defaults of the rule were applied
        assert sum(p["n_samples"] for p in a.points) > 0, a.points
        assert a.rule["max_distance_px"] == 200.0
        # the still face fails for what it is: its corners are missed or not followed (a corner
        # that the regression happens to land near may pass on its own; most cannot)
        assert any(f.split("@")[0] in ("accuracy", "follows") for f in a.rule["failures"]), a.rule
        corners = [p for p in a.points if not p["centre"]]
        missed = [p for p in corners if not (p["checks"]["accuracy"] and p["checks"]["follows"])]
        assert len(missed) >= 3, (a.viewport_w, corners)
    context.close()
