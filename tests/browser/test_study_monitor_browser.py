"""The live study monitor in Chromium against uvicorn and PostgreSQL: staff open it, a task
advances in the database and the page shows the new count without a reload (and not while its
tab is hidden); the preview button opens the worker site with the preview banner, and the quotas
do not move. Screenshots at 1366x768 and 1920x1080 go to IFLLM_SCREENSHOT_DIR when set."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from collection.models import CalibrationAttempt, LLMModel, Task, Topic, Worker
from crowd import views
from crowd.models import Assignment, Study, TaskQC
from tests.support.admin_browser import admin_page

STUDY_ID = "d" * 24
SIZES = {"1366": (1366, 768), "1920": (1920, 1080)}


def _shots(page, name: str) -> None:
    folder = os.environ.get("IFLLM_SCREENSHOT_DIR")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(Path(folder) / f"{name}-{label}.png"), full_page=True)
        # Nothing is cut off sideways at either size.
        assert page.evaluate("document.documentElement.scrollWidth") <= w, (name, label)
        # ... and no card's tables stick out of it.
        wide = page.evaluate("""[...document.querySelectorAll('.monitor-grid .crowd-card')]
            .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.querySelector('h2').textContent)""")
        assert wide == [], (name, label, wide)


def _participant(name: str, status: str, **kw) -> Task:
    now = timezone.now()
    worker = Worker.objects.create(
        pseudonym=f"w-{name}", platform="prolific", platform_worker_id=name, consent=True, consented_at=now,
        created_at=now, extra={"entries": {f"s-{name}": {"state": "own", "at": now.isoformat(), "study": STUDY_ID,
                                                         "entered": (now - timedelta(minutes=20)).isoformat()}}})
    topic, _ = Topic.objects.get_or_create(title="Volcanoes")
    task = Task.objects.create(worker=worker, topic=topic, status=status, mode="pointwise", model_1="demo-a",
                               hit_id=STUDY_ID, assignment_id=f"s-{name}", started_at=now - timedelta(minutes=18),
                               **kw)
    CalibrationAttempt.objects.create(task=task, kind="calibration", score=80, threshold=70, passed=True,
                                      viewport_w=1366, viewport_h=768, rule={"failures": []})
    return task


def expect(locator):
    """Playwright's retrying assertions (a string ``wait_for_function`` is refused by the CSP)."""
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def _count(page, stage: str) -> str:
    return page.locator(f"#stages tr[data-stage={stage}] td.num").inner_text()


@pytest.mark.django_db(transaction=True)
def test_the_monitor_updates_itself_and_the_preview_counts_nowhere(browser, asgi_server, django_user_model,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(views, "MONITOR_POLL_MS", 700)
    for c in "ab":
        LLMModel.objects.create(name=f"demo-{c}", provider="demo", model_id=f"demo-{c}", quota=40, enabled=True)
    for i in range(4):
        Topic.objects.get_or_create(title=f"Topic {i}")
    study = Study.objects.create(name="Prolific pilot", platform=Study.Platform.PROLIFIC, prolific_study_id=STUDY_ID,
                                 reward=Decimal("2.50"))
    now = timezone.now()
    chatting = _participant("p1", "chatting", chat_started_at=now - timedelta(minutes=10))
    done = _participant("p2", "completed", chat_started_at=now - timedelta(minutes=15),
                        chat_ended_at=now - timedelta(minutes=4), finished_at=now)
    TaskQC.objects.create(task=done, flagged=True, flags=",max_log_gap_s,")
    Assignment.objects.create(study=study, platform="prolific", assignment_id="s-p2", platform_worker_id="p2",
                              worker=done.worker, task=done)
    _participant("p3", "calibrating")

    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    page.goto(f"/crowd/study/{study.pk}/monitor/")
    assert _count(page, "completed") == "1" and _count(page, "chatting") == "1"
    assert "2.50 GBP" in page.locator("#money").inner_text()
    _shots(page, "monitor-running")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.evaluate("window.__sameDocument = true")
    first_update = page.locator("#monitor-updated").get_attribute("data-at")

    # A participant finishes in the database; the page shows it without a reload.
    Task.objects.filter(pk=chatting.pk).update(status="completed", chat_ended_at=timezone.now(),
                                               finished_at=timezone.now())
    expect(page.locator("#stages tr[data-stage=completed] td.num")).to_have_text("2", timeout=10_000)
    assert _count(page, "chatting") == "0"
    assert page.evaluate("window.__sameDocument") is True  # the same document: no reload
    assert page.locator("#monitor-updated").get_attribute("data-at") != first_update

    # While the tab is hidden the page does not poll; shown again, it catches up at once.
    page.evaluate("""() => {
        window.__hidden = true;
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.__hidden});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_timeout(900)  # a poll already in flight may still land
    Task.objects.filter(worker__platform_worker_id="p3").update(status="abandoned")
    page.wait_for_timeout(2500)
    assert _count(page, "abandoned") == "0", "the hidden tab went on polling"
    page.evaluate("() => { window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); }")
    expect(page.locator("#stages tr[data-stage=abandoned] td.num")).to_have_text("1", timeout=10_000)

    # The preview button opens the worker site as a preview participant.
    live_before = Task.objects.quota_live().count()
    stages_before = page.locator("#stages tbody").inner_text()
    page.locator("#preview-button").click()
    page.wait_for_url("**/consent/")
    assert "Preview — not recorded in the study." in page.locator("#preview-banner").inner_text()
    _shots(page, "preview-consent")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.locator("input[name=consent]").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/about-you/")
    page.get_by_label("Age").fill("30")
    page.get_by_label("Country you live in").fill("Testland")
    page.locator("select[name=education]").select_option(index=1)
    page.locator("select[name=race]").select_option(index=1)
    page.locator("select[name=gender]").select_option(index=1)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/topics/")
    assert page.locator("#preview-banner").count() == 1
    page.locator("input[name=topics]").first.check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/instructions/")
    assert page.locator("#preview-banner").count() == 1
    preview = Task.objects.get(worker__is_preview=True)
    assert preview.mode and preview.model_1  # assigned like any task ...
    assert Task.objects.quota_live().count() == live_before  # ... and no quota moved
    # Back on the monitor: the same figures as before the preview.
    page.goto(f"/crowd/study/{study.pk}/monitor/")
    assert page.locator("#stages tbody").inner_text() == stages_before
    used = {m: Task.objects.quota_live().filter(mode=m).count() for m in ("pointwise", "pairwise")}
    assert used["pointwise"] == 2 and used["pairwise"] == 0  # the two finished participants, no preview
    for mode, n in used.items():
        row = page.locator("#mode-quotas tbody tr", has=page.locator(f"th:text-is('{mode}')"))
        assert row.locator("td.num").first.inner_text() == f"{n} / 100"


@pytest.mark.django_db(transaction=True)
def test_an_empty_study_monitor(browser, asgi_server, django_user_model) -> None:
    study = Study.objects.create(name="Lab study (nobody yet)", platform=Study.Platform.LAB)
    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    page.goto(f"/crowd/study/{study.pk}/monitor/")
    assert page.locator("#monitor-empty").is_visible()
    assert "No calibration attempt yet." in page.locator("#calibration-rate").inner_text()
    assert "none set" in page.locator("#money").inner_text()
    _shots(page, "monitor-empty")
