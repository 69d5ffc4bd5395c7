"""The REAL WebGazer with Chromium's default fake camera, which shows no face: the badge says
"no face" (never "not calibrated yet"), each failed attempt says why, and after the staff-set
number of attempts the worker gets the way out the study defines, recorded on the task; that page
forgets WebGazer's stored calibration (the study keeps none by default)."""

from __future__ import annotations

import re

import pytest

from collection.models import Task
from collection.services import study

from .real_webgazer import (
    SHORT_VALIDATION,
    STORED_CALIBRATION,
    WATCH_TARGETS,
    click_all_points,
    enter_to_calibration,
    shot,
    shots,
    study_content,
)


@pytest.mark.django_db(transaction=True)
def test_no_face_leads_to_the_way_out(browser, asgi_server):
    study_content()
    cfg = study.study_settings_get()
    cfg.max_calibration_attempts = 2
    cfg.calibration_clicks_per_point = 1
    cfg.calibration_way_out = "code"
    cfg.partial_payment_code = "PARTIAL-42"
    cfg.researcher_contact = "IFllm Lab, lab@example.org"
    cfg.save()
    context = browser.new_context(viewport={"width": 1280, "height": 720}, base_url=asgi_server)
    context.add_init_script(WATCH_TARGETS)
    context.add_init_script(SHORT_VALIDATION)
    page = context.new_page()
    worker = enter_to_calibration(page, "no-face-worker")
    page.get_by_role("button", name="Start").click()
    click_all_points(page)
    page.wait_for_selector("#failed:not([hidden])", timeout=90_000)
    shot(page, "noface-failed-1280x720")
    assert "did not find your face" in page.locator("#failed-reason").inner_text()
    assert "1" in page.locator("#attempts-left").inner_text()
    # WebGazer wrote its (empty: no face, no eye features) click data to the browser's storage
    assert page.evaluate(STORED_CALIBRATION) == 0
    states = page.evaluate("window.__faceStates")
    assert "no-face" in states and "not-calibrated" not in states and "ok" not in states, states
    page.get_by_role("button", name="Try again").click()
    click_all_points(page)
    page.wait_for_url(re.compile(r"/calibration-failed/$"), timeout=90_000)
    shot(page, "noface-way-out-1280x720")
    shots(page, "way-out")
    assert "did not find your face" in page.locator("#failure-reason").inner_text()
    assert page.locator("#partial-code").inner_text() == "PARTIAL-42"
    assert "lab@example.org" in page.locator("#contact").inner_text()
    page.wait_for_selector("body[data-webgazer-data='cleared']", timeout=10_000)
    assert page.evaluate(STORED_CALIBRATION) is None
    task = Task.objects.get(worker=worker)
    assert task.status == Task.Status.ABANDONED and task.calibration_way_out == "code"
    assert task.calibration_failed_at is not None
    assert [a.passed for a in task.calibration_attempts.all()] == [False, False]
    assert all(a.face_found_share == 0 for a in task.calibration_attempts.all())
    # Back, or the study's own links, cannot put the worker back into the failed calibration
    page.goto(f"/task/{task.pk}/calibrate/")
    assert "/calibrate/" not in page.url
    context.close()
