"""The REAL WebGazer on a camera video of a face (no injected gaze), in one browser page so that
WebGazer starts once: every calibration and validation target is the element at its own centre at
five screen sizes, the badge tells "not calibrated yet" from "no face", the low-score path leads
on to a pairwise task that runs to its completion code, QC then judges the task for the reason it
states, and the study setting ``keep_webgazer_data`` decides whether the next person on the same
browser inherits WebGazer's calibration.

WebGazer's face mesh takes most of a CPU core per video frame (about 5 frames/s on the 2-core CI
machine), so the page's clicks and timers run slowly while it tracks: the study is set to one
click per calibration dot and the validation targets are shortened (``SHORT_VALIDATION``).
"""

from __future__ import annotations

import re

import pytest

from collection.models import Mode, Task
from collection.sentences import split_sentences
from collection.services import study
from crowd.services import task_qc_compute

from .real_webgazer import (
    SHORT_VALIDATION,
    STORED_CALIBRATION,
    WATCH_TARGETS,
    click_all_points,
    enter_to_calibration,
    heading_clear,
    shot,
    shots,
    study_content,
)

#: The issue's four sizes and 1366x800; the last attempt (1366x768, the commonest laptop screen)
#: passes and goes on to the chat, the others fail on purpose so that "Try again" re-runs the
#: calibration at the next size with the same WebGazer.
SIZES = [(1280, 720), (1440, 900), (1920, 1080), (1366, 800), (1366, 768)]


def _states(page) -> list[str]:
    return page.evaluate("window.__faceStates")


def _calibrate_at_every_size(page, cfg) -> None:
    for i, (w, h) in enumerate(SIZES):
        page.set_viewport_size({"width": w, "height": h})
        last = i == len(SIZES) - 1
        if last:  # a still photograph's gaze barely moves: the low-score path must be usable
            cfg.pass_threshold = 0.0
            cfg.save()
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
        assert page.locator("#passed" if last else "#failed").is_visible()


@pytest.mark.django_db(transaction=True)
def test_real_webgazer_face_sizes_pairwise_qc_and_stored_calibration(face_browser, asgi_server):
    study_content()
    cfg = study.study_settings_get()
    cfg.calibration_clicks_per_point = 1
    cfg.max_calibration_attempts = 0  # sizes are checked first: failing must not end the task
    cfg.pass_threshold = 100.0  # unreachable: every size but the last fails, and "Try again" follows
    cfg.min_turns, cfg.min_seconds, cfg.pointwise_quota = 1, 5, 0  # pairwise only
    cfg.keep_webgazer_data = True  # checked at the end: the next person inherits the calibration
    cfg.researcher_contact, cfg.payment_info = "IFllm Lab, lab@example.org", "USD 4 for about 20 minutes"
    cfg.save()
    context = face_browser.new_context(viewport={"width": 1280, "height": 720}, base_url=asgi_server)
    context.add_init_script(WATCH_TARGETS)
    context.add_init_script(SHORT_VALIDATION)
    page = context.new_page()
    worker = enter_to_calibration(page, "webcam-worker")
    assert "click it, until it turns yellow" in page.locator("#intro").inner_text()  # 1 click, said so

    _calibrate_at_every_size(page, cfg)
    task = Task.objects.get(worker=worker)
    attempts = list(task.calibration_attempts.order_by("pk"))
    assert [(a.viewport_w, a.viewport_h) for a in attempts] == SIZES
    assert [a.passed for a in attempts] == [False] * (len(SIZES) - 1) + [True]
    assert all(a.n_clicks == 9 for a in attempts)
    assert all(a.face_found_share > 0.9 for a in attempts), [a.face_found_share for a in attempts]
    # the real tracker predicted during validation: the centre stare and the corners together
    for a in attempts:
        centre = next(p for p in a.points if p["centre"])
        assert centre["n_samples"] > 0 and sum(p["n_samples"] for p in a.points if not p["centre"]) > 0, a.points
    assert attempts[-1].score > 0

    # The pairwise task, WebGazer running again on the chat page with the stored calibration.
    page.get_by_role("button", name="Continue to the questions").click()
    page.wait_for_url(re.compile(r"/chat/$"))
    task.refresh_from_db()
    assert task.mode == Mode.PAIRWISE
    # The logger starts once WebGazer runs (seconds on a loaded machine): ask only then, so
    # that the question and its answers are logged.
    page.wait_for_function("() => !!window.ifllmLogger", timeout=60_000)
    page.get_by_label("Your question").fill("What is this topic about?")
    page.get_by_role("button", name="Ask").click()
    page.wait_for_selector("#rating:not([hidden])", timeout=60_000)
    page.wait_for_timeout(3000)  # reading time: the real tracker keeps sampling
    page.wait_for_function("() => window.ifllmLogger.stats.acked > 0", timeout=30_000)
    shots(page, "chat-pairwise")
    page.locator('input[name="likert_1"][value="4"]').check()
    page.locator('input[name="likert_2"][value="3"]').check()
    page.locator('input[name="preferred"][value="1"]').check()
    page.wait_for_function("() => !document.querySelector('#finish').disabled", timeout=30_000)
    page.get_by_role("button", name="I am done with this topic").click()
    page.wait_for_url(re.compile(r"/after/$"))
    page.get_by_label(re.compile("what did you learn")).fill("It explained the topic and its history well.")
    page.get_by_role("button", name="Continue").click()
    page.locator('input[name="understand_before"][value="2"]').check()
    page.locator('input[name="understand_after"][value="4"]').check()
    page.get_by_role("button", name="Continue").click()
    answer = task.turns.get().response_1
    page.get_by_label(re.compile("Copy the most important sentence")).fill(split_sentences(answer)[0].lstrip("- "))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/done/$"))
    shots(page, "done")
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED

    row = task_qc_compute(task=task)
    codes = {r["code"] for r in row.reasons}
    # The real tracker's samples reached the server (how many per second depends on the CPU:
    # a few on a loaded 2-core CI machine, so the sampling-rate rule may flag it too).
    assert row.n_gaze_samples > 0 and row.sampling_rate_hz > 0
    # A minute or so of chat is far below the 240 s a real worker needs: QC fails the task for
    # that stated reason, with the measured value in its message.
    assert row.flagged and "time_on_task_s" in codes
    reason = next(r for r in row.reasons if r["code"] == "time_on_task_s")
    assert reason["value"] < 240 and reason["message"].startswith("time on task (s)") and "< 240" in reason["message"]
    # The paper's two scores are measured from the site's own data (issue 10, item 8): a score is
    # "not measured" only when no gaze sample fell on text at all.
    if row.response_score is None:
        assert "response_score" in codes
    else:
        assert 0.0 <= row.response_score <= 1.0 and row.max_index_score is not None

    # keep_webgazer_data on: the completion page leaves WebGazer's calibration in the browser
    # (one example per click of the passing attempt), and the next person's full calibration
    # starts from it: predictions, so "Face found", before any click.
    assert page.evaluate(STORED_CALIBRATION) >= 9
    assert page.evaluate("document.body.dataset.webgazerData") is None  # the forgetting script did not run
    context.clear_cookies()  # a new browser session on the same computer
    enter_to_calibration(page, "next-person-kept")
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => window.__faceStates.includes('ok')", timeout=60_000)

    # keep_webgazer_data off (the default): a full calibration forgets what was stored before
    # WebGazer reads it, so the face is found but nothing is predicted until the dots are clicked.
    cfg.keep_webgazer_data = False
    cfg.save()
    assert page.evaluate(STORED_CALIBRATION) >= 9
    context.clear_cookies()
    enter_to_calibration(page, "next-person-forgotten")
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => window.__faceStates.includes('not-calibrated')", timeout=60_000)
    page.wait_for_timeout(2000)  # WebGazer would have loaded stored data by now
    assert "ok" not in _states(page) and page.evaluate(STORED_CALIBRATION) is None, _states(page)
    context.close()
