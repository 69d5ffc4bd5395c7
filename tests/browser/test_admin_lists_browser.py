"""The crowd admin's change lists fit a 1366x768 laptop screen with the admin's left navigation
open (Chromium, uvicorn, PostgreSQL): the Study, Assignment, Payment and Audit log lists, filled
with rows as long as Prolific's (24-character ids, several flags, a long error), make no page
scroll sideways. Long values are cut with the whole value in a tooltip. Screenshots at 1366x768
and 1920x1080 (set IFLLM_SCREENSHOT_DIR)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from collection.models import Platform, Task, Topic, Worker
from crowd.models import Assignment, AuditLog, Payment, Study
from tests.support.admin_browser import admin_page

from .test_study_browser import shot

SIZES = {"1366": (1366, 768), "1920": (1920, 1080)}
LISTS = {"study": "/admin/crowd/study/", "assignment": "/admin/crowd/assignment/",
         "payment": "/admin/crowd/payment/", "auditlog": "/admin/crowd/auditlog/"}
ERROR = ("HTTP 429 from POST /api/v1/submissions/65a1b2c3d4e5f6a7b8c9d0e1/transition/: Request was throttled. "
         "Expected available in 37 seconds; retried 3 times with backoff, giving up for this submission")


def _rows() -> None:
    """A Prolific study with the longest values staff meet in practice, and an MTurk one."""
    study = Study.objects.create(
        name="Reading LLM answers with gaze — Prolific pilot 2 (desktop, webcam)", platform=Study.Platform.PROLIFIC,
        prolific_study_id="65a1b2c3d4e5f6a7b8c9d0aa", prolific_status="AWAITING REVIEW", reward=Decimal("3.75"),
        max_assignments=300, external_url="https://lab.example.org/start/")
    Study.objects.create(name="MTurk sandbox check", platform=Study.Platform.MTURK, reward=Decimal("2.00"))
    topic = Topic.objects.create(title="Volcanoes")
    now = timezone.now()
    for n in range(6):
        pid = f"5f{n:02d}a1b2c3d4e5f6a7b8c9d0"
        worker = Worker.objects.create(pseudonym=f"p-{n}", platform=Platform.PROLIFIC, platform_worker_id=pid)
        sub = f"65a1b2c3d4e5f6a7b8c9d0{n:02d}"
        task = Task.objects.create(worker=worker, topic=topic, status="completed", assignment_id=sub,
                                   hit_id=study.prolific_study_id, completion_code=f"S-{n}")
        assignment = Assignment.objects.create(
            study=study, platform="prolific", assignment_id=sub, platform_worker_id=pid, worker=worker, task=task,
            status=["Submitted", "review", "Approved", "Rejected", "returned", "screened_out"][n],
            completion_code="SCR33N0UT" if n == 5 else "C0MPL3TE", submitted_at=now,
            flags=["code_mismatch", "worker_mismatch", "unknown_code"] if n == 1 else [], flagged=n == 1)
        Payment.objects.create(
            assignment=assignment, key=f"bonus-study-{study.pk}-accuracy-and-summary", amount=Decimal("1.25"),
            reason="Bonus for a careful summary", unique_request_token=f"tok-{n}-" + "x" * 40,
            status=["paid", "paying", "created", "failed", "pending", "paid"][n],
            platform_batch_id=f"65b1c2d3e4f5a6b7c8d9e0{n:02d}", paid_at=now if n in (0, 5) else None,
            error=ERROR if n == 3 else "")
        AuditLog.objects.create(platform="prolific", operation="prolific.submission.transition",
                                request={"id": sub}, ok=n % 2 == 0, error="" if n % 2 == 0 else ERROR, study=study)


def _overflow(page) -> int:
    """How far the page, or the list's own box, scrolls sideways (0 when it fits): Django lets the
    list's ``.results`` box scroll, which hides the last columns without widening the page."""
    return page.evaluate("""() => {
        const doc = document.documentElement, box = document.querySelector('#changelist-form .results');
        return Math.max(doc.scrollWidth - doc.clientWidth, box ? box.scrollWidth - box.clientWidth : 0);
    }""")


@pytest.mark.django_db(transaction=True)
def test_the_crowd_change_lists_fit_a_laptop_screen_with_the_navigation_open(
        browser, asgi_server, django_user_model) -> None:
    _rows()
    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    for name, url in LISTS.items():
        page.goto(url)
        assert page.locator("#nav-sidebar").is_visible()  # the left navigation is open
        assert page.locator("#result_list tbody tr").count() >= 2
        for label, (w, h) in SIZES.items():
            page.set_viewport_size({"width": w, "height": h})
            shot(page, f"admin-list-{name}-{label}")
            widths = page.evaluate("[...document.querySelectorAll('#result_list thead th')]"
                                   ".map(th => th.className + ' ' + Math.round(th.getBoundingClientRect().width))")
            assert _overflow(page) <= 0, (name, label, _overflow(page), widths)
        page.set_viewport_size({"width": 1366, "height": 768})
    # A cut value keeps the whole of it in its tooltip.
    page.goto(LISTS["auditlog"])
    cut = page.locator("#result_list td.field-error_short span[title]").first
    assert cut.get_attribute("title") == ERROR and len(cut.inner_text()) < len(ERROR)
    page.goto(LISTS["payment"])
    assert page.locator("#result_list span[title*='accuracy-and-summary']").count() == 6


@pytest.mark.django_db(transaction=True)
def test_the_overflow_check_sees_a_list_that_runs_past_the_edge(browser, asgi_server, django_user_model) -> None:
    """The check above would catch a list wider than the screen (the failing case)."""
    _rows()
    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    page.goto(LISTS["auditlog"])
    assert _overflow(page) <= 0
    page.evaluate("document.querySelector('#result_list td').style.minWidth = '900px'")
    assert _overflow(page) > 0
