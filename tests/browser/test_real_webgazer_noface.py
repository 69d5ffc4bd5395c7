"""The REAL WebGazer with Chromium's default fake camera, which shows no face (issue 20, item 8): no
calibration dot is shown without a face; the page waits with camera tips (not "look at the
screen"), and the worker can say at once that the camera does not find them, or the wait ends by
itself; each such attempt fails as "no face" without 9 dots and a validation; after the staff-set
number of attempts the worker gets the way out the study defines, recorded on the task, that page
forgets WebGazer's stored calibration, and Back, /continue/ and the topics page show only that way
out (never the topics again)."""

from __future__ import annotations

import re

import pytest

from collection.models import Task
from collection.services import study

from .real_webgazer import STORED_CALIBRATION, WATCH_TARGETS, enter_to_calibration, shot, shots, study_content

#: The test hook of calibrate.mjs (an object, so the real WebGazer runs); set to shorten the wait
#: for a face from 30 s before the second attempt.
HOOKS = "window.IFLLM_TEST_GAZE = {};"


@pytest.mark.django_db(transaction=True)
def test_no_face_waits_with_camera_tips_then_leads_to_the_way_out(browser, asgi_server):
    study_content()
    cfg = study.study_settings_get()
    cfg.max_calibration_attempts = 2
    cfg.calibration_way_out = "code"
    cfg.partial_payment_code = "PARTIAL-42"
    cfg.researcher_contact = "IFllm Lab, lab@example.org"
    cfg.save()
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=asgi_server)
    context.add_init_script(WATCH_TARGETS)
    context.add_init_script(HOOKS)
    page = context.new_page()
    worker = enter_to_calibration(page, "no-face-worker")
    page.get_by_role("button", name="Start").click()
    # Waiting for a face: the tips about camera and light, the badge says so, and no dot at all.
    page.wait_for_selector("#face-wait:not([hidden])", timeout=60_000)
    page.wait_for_function("() => window.__faceStates.includes('no-face')", timeout=60_000)
    tips = page.locator("#camera-tips").inner_text()
    assert "facing the camera" in tips and "Light your face from the front" in tips
    badge = page.locator("#head-status").inner_text()
    assert "face the camera" in badge and "look at the screen" not in badge
    shots(page, "noface-waiting")
    assert page.locator(".calib-point").count() == 0
    # The worker says the camera cannot find them: the attempt ends at once, as "no face".
    page.get_by_role("button", name="The camera does not find my face").click()
    page.wait_for_selector("#failed:not([hidden])", timeout=30_000)
    shots(page, "noface-failed")
    assert "did not find your face" in page.locator("#failed-reason").inner_text()
    assert "1" in page.locator("#attempts-left").inner_text()
    states = page.evaluate("window.__faceStates")
    assert "no-face" in states and "not-calibrated" not in states and "ok" not in states, states
    assert page.evaluate("window.__targets.length") == 0  # no dot, no validation target was ever shown
    # The second attempt: the wait ends by itself (shortened here) and leads to the way out.
    page.evaluate("window.IFLLM_TEST_GAZE.faceWaitMs = 3000")
    page.get_by_role("button", name="Try again").click()
    page.wait_for_selector("#face-wait:not([hidden])", timeout=10_000)
    page.wait_for_url(re.compile(r"/calibration-failed/$"), timeout=60_000)
    shot(page, "noface-way-out-1366x768")
    shots(page, "way-out")
    assert "did not find your face" in page.locator("#failure-reason").inner_text()
    assert page.locator("#partial-code").inner_text() == "PARTIAL-42"
    assert "lab@example.org" in page.locator("#contact").inner_text()
    page.wait_for_selector("body[data-webgazer-data='cleared']", timeout=10_000)
    assert page.evaluate(STORED_CALIBRATION) is None
    task = Task.objects.get(worker=worker)
    assert task.status == Task.Status.ABANDONED and task.calibration_way_out == "code"
    assert task.calibration_failed_at is not None
    attempts = list(task.calibration_attempts.order_by("pk"))
    assert [a.passed for a in attempts] == [False, False] and all(a.n_clicks == 0 for a in attempts)
    assert all(a.face_found_share == 0 and "no_face" in a.rule["failures"] for a in attempts)
    # Back, the study's own links or the topics page show only the way out
    way_out = page.url
    page.go_back()
    page.wait_for_load_state()
    assert page.url == way_out or "/calibrate/" not in page.url
    for path in (f"/task/{task.pk}/calibrate/", "/continue/", "/topics/"):
        page.goto(path)
        assert page.url == way_out, path
    assert page.locator("input[name='topics']").count() == 0
    context.close()
