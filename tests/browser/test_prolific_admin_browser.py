"""A Prolific study run from the admin in Chromium (uvicorn, PostgreSQL, the loopback fake API):
draft, publish, sync (a job), reject in bulk through the reason + category form, a bonus.
Screenshots at 1366x768 and 1920x1080: set IFLLM_SCREENSHOT_DIR (kept out of git)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from collection.models import Platform, Task, Topic, Worker
from crowd.models import Assignment, Payment, Study
from tests.support.admin_browser import admin_page
from tests.support.fake_prolific import FakeProlific

from .real_webgazer import shots

REASON = ("Your gaze data did not reach our site for most of the task, so we cannot use this submission. "
          "Please contact us if you think this is wrong.")


@pytest.fixture
def fake(monkeypatch):
    with FakeProlific(token="tok-browser") as server:
        monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-browser")
        monkeypatch.setenv("PROLIFIC_API_URL", server.url)
        yield server


def _action(page, changelist: str, pks: list[int], action: str) -> None:
    page.goto(changelist)
    for pk in pks:
        page.locator(f'input[name="_selected_action"][value="{pk}"]').check()
    page.locator('select[name="action"]').select_option(action)
    page.locator('button[name="index"]').click()
    page.wait_for_load_state()


def _messages(page) -> str:
    return page.locator("ul.messagelist").inner_text() if page.locator("ul.messagelist").count() else ""


@pytest.mark.django_db(transaction=True)
def test_prolific_study_from_draft_to_bonus(browser, asgi_server, fake, django_user_model) -> None:
    study = Study.objects.create(
        name="Prolific pilot", platform=Study.Platform.PROLIFIC, external_url="https://lab.example.org/start/",
        reward=Decimal("3.00"), max_assignments=2, estimated_minutes=25, code_completed="C0MPL3T",
        code_screened_out="SCR33N", code_partial="PART1AL",
    )
    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    page.goto(f"/admin/crowd/study/{study.pk}/change/")
    page.locator("#id_estimated_minutes").scroll_into_view_if_needed()
    assert page.locator("#id_code_screened_out").input_value() == "SCR33N"
    shots(page, "prolific-study-settings")

    _action(page, "/admin/crowd/study/", [study.pk], "prolific_draft")
    study.refresh_from_db()
    assert f"draft {study.prolific_study_id} created on Prolific" in _messages(page)
    shots(page, "prolific-draft-created")
    _action(page, "/admin/crowd/study/", [study.pk], "prolific_publish")
    assert "published (Prolific status ACTIVE)" in _messages(page)

    subs = []
    for pid in ("PBR1", "PBR2"):
        sub = fake.add_submission(study.prolific_study_id, pid, study_code="C0MPL3T")
        worker = Worker.objects.create(pseudonym=f"p-{pid}", platform=Platform.PROLIFIC, platform_worker_id=pid)
        Task.objects.create(worker=worker, topic=Topic.objects.create(title=pid), status="completed",
                            assignment_id=sub["id"], hit_id=study.prolific_study_id, completion_code=f"S-{pid}")
        subs.append(sub)
    _action(page, "/admin/crowd/study/", [study.pk], "prolific_sync")
    assert "Syncing the submissions of 1 Prolific study" in _messages(page)
    page.wait_for_timeout(500)
    rows = list(Assignment.objects.filter(study=study).order_by("pk"))
    assert len(rows) == 2 and {a.status for a in rows} == {"Submitted"}

    _action(page, "/admin/crowd/assignment/", [a.pk for a in rows], "reject_assignments")
    assert page.locator("#id_rejection_category").count() == 1
    page.locator("#id_feedback").fill(REASON)
    shots(page, "prolific-reject-form")
    page.locator('input[name="apply"]').click()
    page.wait_for_load_state()
    assert "rejection_category" in _messages(page)  # the category is required: nothing was sent
    assert fake.count("POST", "/submissions/.*/transition/") == 0
    _action(page, "/admin/crowd/assignment/", [rows[0].pk], "reject_assignments")
    page.locator("#id_feedback").fill(REASON)
    page.locator("#id_rejection_category").select_option("NO_DATA")
    page.locator('input[name="apply"]').click()
    page.wait_for_load_state()
    assert "Rejected: 1 done" in _messages(page) and fake.submissions[subs[0]["id"]]["status"] == "REJECTED"

    _action(page, "/admin/crowd/assignment/", [rows[1].pk], "bonus_assignments")
    page.locator("#id_amount").fill("0.80")
    page.locator("#id_reason").fill("Careful reading")
    page.locator('input[name="apply"]').click()
    page.wait_for_load_state()
    assert "Bonus paid: 1 done" in _messages(page)
    shots(page, "prolific-bonus-paid")
    assert Payment.objects.get(assignment=rows[1]).status == "paid" and fake.paid_to("PBR2") == Decimal("0.80")
    page.goto("/admin/crowd/payment/")
    shots(page, "prolific-payments")
    page.goto("/admin/crowd/auditlog/")
    assert "bonus_pay" in page.locator("#result_list").inner_text()
    shots(page, "prolific-audit-log")
