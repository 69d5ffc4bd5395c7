"""A frozen selection after a participant's withdrawal, in Chromium (uvicorn, PostgreSQL).

Staff open the selection's admin page (the summary says one kept task was withdrawn — deleted),
follow the review queue link, see "1 of 2" with "+ 1 withdrawn — deleted (skipped)", keep the
first task with the keyboard and reach the end after the second; the page of a selection that
left the withdrawn task out marks it instead of linking it. No page error, no request fails.
Screenshots at 1366x768 and 1920x1080 (set IFLLM_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re

import pytest

from collection.models import DataSelection
from crowd import services
from crowd.models import ReviewCall
from crowd.qc import THRESHOLD_NAMES
from crowd.services.withdrawal import participant_withdraw
from tests.support.admin_browser import admin_page
from tests.support.site_tasks import site_task

from .test_study_browser import shot

SIZES = {"1366": (1366, 768), "1920": (1920, 1080)}


def _shots(page, name: str) -> None:
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(150)
        assert page.evaluate("document.documentElement.scrollWidth") <= w
        shot(page, f"withdrawn-{name}-{label}")
    page.set_viewport_size({"width": 1366, "height": 768})


@pytest.mark.django_db(transaction=True)
def test_a_selection_with_a_withdrawn_task_in_the_browser(browser, asgi_server, django_user_model) -> None:
    tasks = [site_task(name=f"wd{n}", n_turns=2) for n in range(3)]
    for task in tasks:
        services.task_qc_compute(task=task)
    keep = services.data_selection_create(name="before the withdrawal", thresholds=dict.fromkeys(THRESHOLD_NAMES),
                                          require_qc=False, validation=False)
    gone = tasks[0]
    strict = DataSelection.objects.create(
        name="strict", task_ids=[t.pk for t in tasks[1:]], n_kept=2, n_candidates=3, n_left_out=1,
        left_out=[{"task": gone.pk, "worker": gone.worker.pseudonym, "task_id": gone.pk, "reasons": ["calibration"],
                   "messages": ["calibration below threshold"]}],
        summary={"kept_despite": [], "by_reason": {}},
    )
    participant_withdraw(worker=gone.worker, channel="command")
    remaining = sorted(t.pk for t in tasks[1:])

    errors: list[str] = []
    failed: list[str] = []
    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
            and "favicon" not in r.url else None)
    lab = django_user_model.objects.get(username="lab")

    page.goto(f"/admin/collection/dataselection/{keep.pk}/change/")
    notice = page.locator(".ifllm-withdrawn").first
    assert notice.is_visible() and "1 of the kept tasks withdrawn — deleted" in notice.inner_text()
    _shots(page, "selection")
    page.locator("a.review-queue-link").first.click()
    page.wait_for_selector("#rq[data-keys=ready]")
    assert page.locator("#rq-position").inner_text() == "1 of 2"
    assert page.locator("#rq-gone").is_visible()
    assert "withdrawn — deleted" in page.locator("#rq-gone").inner_text()
    _shots(page, "queue")
    with page.expect_navigation(url=re.compile(r"i=2")):
        page.keyboard.press("a")
    page.wait_for_selector("#rq[data-keys=ready]")
    assert page.locator("#rq-position").inner_text() == "2 of 2"
    assert ReviewCall.objects.get(task_id=remaining[0], reviewer=lab).call == "keep"
    with page.expect_navigation(url=re.compile(r"i=3")):
        page.keyboard.press("j")
    assert "end of queue (2 tasks)" in page.locator("#rq-position").inner_text()

    page.goto(f"/admin/collection/dataselection/{strict.pk}/change/")
    cell = page.get_by_text(f"task {gone.pk} (withdrawn — deleted)")
    assert cell.is_visible()
    assert page.locator(f"a[href$='/task/{gone.pk}/']").count() == 0
    _shots(page, "strict")
    assert not errors, errors
    assert not failed, failed
