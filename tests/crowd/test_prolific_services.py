"""Prolific services and admin actions on PostgreSQL, against the loopback fake API.

Money and decisions: a double click or a retry never pays twice (the fake's ledger says what
was paid), every call is in the audit log, and a researcher without the token set, or a staff
user without ``crowd.pay_workers``, gets a clear refusal and sends nothing.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse

from collection.models import Platform, Task, Topic, Worker
from crowd import services
from crowd.models import Assignment, AuditLog, Payment, Study
from crowd.prolific_api import ProlificError, ProlificTimeout
from jobs.models import Job
from tests.support.fake_prolific import FakeProlific

from .conftest import client_for

pytestmark = pytest.mark.django_db
REASON = "Your gaze data did not reach our site for most of the task, so we cannot use this submission. " + "-" * 20


@pytest.fixture
def fake(monkeypatch):
    with FakeProlific(token="tok-lab") as server:
        monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-lab")
        monkeypatch.setenv("PROLIFIC_API_URL", server.url)
        monkeypatch.setenv("PROLIFIC_API_TIMEOUT", "1")
        yield server


@pytest.fixture
def pstudy(db) -> Study:
    return Study.objects.create(
        name="prolific pilot", platform=Study.Platform.PROLIFIC, external_url="https://lab.example.org/start/",
        reward=Decimal("3.00"), max_assignments=5, estimated_minutes=25, devices="desktop", require_webcam=True,
        code_completed="C0MPL3T", code_screened_out="SCR33N", code_partial="PART1AL",
    )


def _published(pstudy: Study, researcher) -> Study:
    return services.prolific_study_draft_create(study=pstudy, user=researcher)


def _submission(fake: FakeProlific, study: Study, pid: str, *, task: bool = True, status: str = "AWAITING REVIEW",
                code: str = "C0MPL3T") -> dict:
    sub = fake.add_submission(study.prolific_study_id, pid, status=status, study_code=code)
    if task:
        worker = Worker.objects.create(pseudonym=f"p-{pid}", platform=Platform.PROLIFIC, platform_worker_id=pid)
        Task.objects.create(worker=worker, topic=Topic.objects.create(title=f"T-{pid}"), status="completed",
                            assignment_id=sub["id"], hit_id=study.prolific_study_id, completion_code=f"SITE-{pid}")
    return sub


def test_codes_are_kept_consistent(pstudy):
    assert pstudy.prolific_completion_codes == {"C0MPL3T": "approve", "SCR33N": "review", "PART1AL": "review"}


def test_draft_is_created_once_from_the_settings(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (made,) = fake.studies.values()
    assert study.prolific_study_id == made["id"] and study.prolific_status == "UNPUBLISHED"
    assert made["reward"] == 300 and made["total_available_places"] == 5 and made["estimated_completion_time"] == 25
    assert made["peripheral_requirements"] == ["camera"] and made["device_compatibility"] == ["desktop"]
    assert {c["code_type"] for c in made["completion_codes"]} == {"COMPLETED", "SCREENED_OUT", "OTHER"}
    assert "{{%SESSION_ID%}}" in made["external_study_url"]
    again = services.prolific_study_draft_create(study=study, user=researcher)
    assert again.prolific_study_id == study.prolific_study_id and len(fake.studies) == 1
    assert fake.count("POST", "/studies/$") == 1
    assert AuditLog.objects.filter(platform="prolific", operation="study_create", ok=True).count() == 1


def test_draft_whose_answer_was_lost_is_adopted_not_duplicated(fake, pstudy, researcher):
    fake.fail("POST", "/studies/$", lost=True)
    with pytest.raises(ProlificTimeout):
        services.prolific_study_draft_create(study=pstudy, user=researcher)
    pstudy.refresh_from_db()
    assert not pstudy.prolific_study_id and len(fake.studies) == 1  # made on Prolific, answer lost
    study = services.prolific_study_draft_create(study=pstudy, user=researcher)
    assert study.prolific_study_id in fake.studies and len(fake.studies) == 1
    assert AuditLog.objects.filter(operation="study_create", ok=False).exists()


def test_draft_needs_a_completed_code(fake, pstudy, researcher):
    pstudy.code_completed = ""
    pstudy.save()
    with pytest.raises(ValidationError) as err:
        services.prolific_study_draft_create(study=pstudy, user=researcher)
    assert "code_completed" in err.value.message_dict and not fake.calls


def test_publish_and_pause(fake, pstudy, researcher, viewer):
    study = _published(pstudy, researcher)
    with pytest.raises(PermissionDenied):
        services.prolific_study_publish(study=study, user=viewer)
    study = services.prolific_study_publish(study=study, user=researcher)
    assert study.prolific_status == "ACTIVE" and study.prolific_published_at is not None
    assert services.prolific_study_pause(study=study, user=researcher).prolific_status == "PAUSED"


def test_sync_all_pages_matches_tasks_and_verifies(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    subs = [_submission(fake, study, f"P{i}") for i in range(3)]
    _submission(fake, study, "PRET", task=False, status="RETURNED", code="")
    _submission(fake, study, "PBAD", code="WRONG")
    fake.studies[study.prolific_study_id]["status"] = "AWAITING REVIEW"  # places full
    counts = services.prolific_submissions_sync(study=study, user=researcher)
    assert counts == {"seen": 5, "new": 5, "flagged": 1, "returned": 1}
    study.refresh_from_db()
    assert study.prolific_synced_at is not None and study.prolific_status == "AWAITING REVIEW"
    assert fake.count("GET", "/submissions/$") == 3  # pages of 2
    ok = Assignment.objects.get(assignment_id=subs[0]["id"])
    assert ok.status == Assignment.Status.SUBMITTED and ok.task is not None and not ok.flagged
    assert ok.accepted_at is not None and ok.submitted_at is not None and ok.platform_status == "AWAITING REVIEW"
    assert Assignment.objects.get(platform_worker_id="PRET").status == Assignment.Status.RETURNED
    bad = Assignment.objects.get(platform_worker_id="PBAD")
    assert bad.status == Assignment.Status.REVIEW and "unknown_code" in bad.flags
    # a second sync keeps the local review decision and adds nothing
    assert services.prolific_submissions_sync(study=study, user=researcher)["new"] == 0
    assert Assignment.objects.get(platform_worker_id="PBAD").status == Assignment.Status.REVIEW


def _synced(fake, study, researcher, *pids):
    subs = [_submission(fake, study, pid) for pid in pids]
    services.prolific_submissions_sync(study=study, user=researcher)
    return [Assignment.objects.get(assignment_id=s["id"]) for s in subs]


def test_bulk_approve_in_one_call(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    rows = _synced(fake, study, researcher, "PA", "PB")
    services.prolific_approve(assignments=rows, user=researcher)
    assert fake.count("POST", "bulk-approve") == 1
    assert {fake.submissions[a.assignment_id]["status"] for a in rows} == {"APPROVED"}
    assert {a.status for a in Assignment.objects.filter(pk__in=[r.pk for r in rows])} == {"Approved"}


def test_sync_keeps_an_approval_prolific_has_not_applied_yet(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    a, b = _synced(fake, study, researcher, "PASY", "PUNK")
    services.prolific_approve(assignments=[a], user=researcher)
    fake.submissions[a.assignment_id]["status"] = "AWAITING REVIEW"  # bulk approve is asynchronous
    fake.submissions[b.assignment_id]["status"] = "SOMETHING NEW"
    services.prolific_submissions_sync(study=study, user=researcher)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == Assignment.Status.APPROVED
    assert b.status == Assignment.Status.REVIEW and b.platform_status == "SOMETHING NEW"


def test_generic_approve_and_reject_route_to_prolific(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    a, b = _synced(fake, study, researcher, "PGA", "PGB")
    services.assignment_approve(assignment=a, user=researcher)
    assert fake.submissions[a.assignment_id]["status"] == "APPROVED"
    with pytest.raises(ValidationError) as err:
        services.assignment_reject(assignment=b, user=researcher, feedback=REASON)
    assert "rejection_category" in err.value.message_dict
    services.assignment_reject(assignment=b, user=researcher, feedback=REASON, rejection_category="NO_DATA")
    assert fake.submissions[b.assignment_id]["status"] == "REJECTED"
    b.refresh_from_db()
    assert b.status == "Rejected" and b.rejection_category == "NO_DATA"


def test_reject_needs_reason_and_category(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PR")
    with pytest.raises(ValidationError) as err:
        services.prolific_reject(assignments=[a], user=researcher, message="bad", category="")
    assert set(err.value.message_dict) == {"message", "rejection_category"}
    assert fake.count("POST", "/transition/") == 0
    services.prolific_reject(assignments=[a], user=researcher, message=REASON, category="LOW_EFFORT")
    assert fake.submissions[a.assignment_id]["status"] == "REJECTED"


def test_request_return(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PRR")
    with pytest.raises(ValidationError):
        services.prolific_request_return(assignment=a, user=researcher, reasons=[""])
    services.prolific_request_return(assignment=a, user=researcher, reasons=["No gaze data reached the site"])
    assert fake.submissions[a.assignment_id]["return_requested"] and a.return_requested_at is not None


def test_bonus_two_steps_recorded_and_paid_once(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PBON")
    payment = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.25"), reason="Careful reading")
    assert payment.status == Payment.Status.PAID and payment.platform_batch_id in fake.bulk_bonuses
    assert payment.batch_created_at and payment.pay_sent_at and payment.paid_at
    again = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.25"), reason="Careful reading")
    assert again.pk == payment.pk and fake.paid_to("PBON") == Decimal("1.25")
    assert fake.count("POST", "/pay/$") == 1 and fake.count("POST", "bonus-payments/$") == 1
    ops = list(AuditLog.objects.filter(platform="prolific").values_list("operation", flat=True))
    assert "bonus_create" in ops and "bonus_pay" in ops


def test_lost_pay_answer_never_pays_twice(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PLOST")
    fake.fail("POST", "/pay/$", lost=True)
    with pytest.raises(ProlificTimeout):
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("2.00"), reason="Bonus")
    payment = Payment.objects.get(assignment=a)
    assert payment.status == Payment.Status.PAYING and fake.paid_to("PLOST") == Decimal("2.00")
    for _ in range(2):  # retries refuse: the site cannot know, staff check on Prolific
        with pytest.raises(services.CrowdError, match="never sent twice"):
            services.bonus_pay(assignment=a, user=researcher, amount=Decimal("2.00"), reason="Bonus")
    assert fake.count("POST", "/pay/$") == 1 and fake.paid_to("PLOST") == Decimal("2.00")
    services.prolific_bonus_confirm(payment=payment, user=researcher, paid=True)
    assert services.bonus_pay(assignment=a, user=researcher, amount=Decimal("2.00"), reason="Bonus").status == "paid"
    assert fake.paid_to("PLOST") == Decimal("2.00")


def test_pay_confirmed_not_paid_is_paid_once_on_retry(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PNOT")
    fake.fail("POST", "/pay/$", status=503)  # scripted 503: Prolific did nothing, but we cannot know
    with pytest.raises(ProlificError) as err:
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    assert err.value.outcome_unknown and fake.paid_to("PNOT") == 0
    payment = Payment.objects.get(assignment=a)
    assert payment.status == Payment.Status.PAYING
    services.prolific_bonus_confirm(payment=payment, user=researcher, paid=False)
    paid = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    assert paid.status == Payment.Status.PAID and fake.paid_to("PNOT") == Decimal("1.00")
    assert fake.count("POST", "bonus-payments/$") == 1  # the same bulk bonus payment was paid


def test_lost_create_answer_makes_an_unpaid_draft_only(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PCRE")
    fake.fail("POST", "bonus-payments/$", lost=True)
    with pytest.raises(ProlificTimeout):
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    payment = Payment.objects.get(assignment=a)
    assert payment.status == Payment.Status.PENDING and not payment.platform_batch_id
    paid = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    assert paid.status == "paid" and len(fake.bulk_bonuses) == 2  # the lost one stays an unpaid draft
    assert fake.paid_to("PCRE") == Decimal("1.00")


def test_refused_pay_goes_back_to_created(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PREF")
    fake.fail("POST", "/pay/$", status=400,
              body={"error": {"error_code": 400001, "title": "Bad request", "detail": "Insufficient balance."}})
    with pytest.raises(ProlificError, match="Insufficient balance"):
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    assert Payment.objects.get(assignment=a).status == Payment.Status.CREATED
    services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    assert fake.paid_to("PREF") == Decimal("1.00") and fake.count("POST", "/pay/$") == 2


@pytest.mark.django_db(transaction=True)
def test_double_click_pays_once(fake, pstudy, researcher):
    """Two requests at once (threads, each its own database connection): one pays, one waits on
    the row lock and then finds it paying or paid; the fake's ledger holds one payment."""
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PDBL")
    fake.fail("POST", "/pay/$", delay=0.4)  # slow enough for the clicks to overlap, within the timeout
    results: list[object] = []

    def click() -> None:
        try:
            results.append(services.bonus_pay(assignment=Assignment.objects.get(pk=a.pk), user=researcher,
                                              amount=Decimal("1.50"), reason="Bonus").status)
        except services.CrowdError as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.paid_to("PDBL") == Decimal("1.50") and fake.count("POST", "/pay/$") == 1
    assert "paid" in results and Payment.objects.get(assignment=a).status == Payment.Status.PAID


def test_no_permission_no_call(fake, pstudy, researcher, viewer):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PPERM")
    calls = len(fake.calls)
    with pytest.raises(PermissionDenied):
        services.bonus_pay(assignment=a, user=viewer, amount=Decimal("1"), reason="x")
    with pytest.raises(PermissionDenied):
        services.prolific_approve(assignments=[a], user=viewer)
    assert len(fake.calls) == calls


def test_no_token_is_a_clear_error(monkeypatch, pstudy, researcher):
    monkeypatch.delenv("PROLIFIC_API_TOKEN", raising=False)
    with pytest.raises(services.CrowdError, match="PROLIFIC_API_TOKEN"):
        services.prolific_study_draft_create(study=pstudy, user=researcher)


def test_no_token_never_marks_a_bonus_as_being_paid(fake, pstudy, researcher, monkeypatch):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PTOK")
    fake.fail("POST", "/pay/$", status=400)
    with pytest.raises(ProlificError):  # refused: the row stays "created" with its bulk bonus payment
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    monkeypatch.delenv("PROLIFIC_API_TOKEN")
    with pytest.raises(services.CrowdError, match="PROLIFIC_API_TOKEN"):
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("1.00"), reason="Bonus")
    assert Payment.objects.get(assignment=a).status == Payment.Status.CREATED and fake.paid_to("PTOK") == 0


def test_site_completion_gives_the_study_codes(fake, pstudy, researcher):
    from crowd.services.prolific import site_completion

    study = _published(pstudy, researcher)
    found = site_completion(study_id=study.prolific_study_id, outcome="screened_out")
    assert found == {"code": "SCR33N", "url": "https://app.prolific.com/submissions/complete?cc=SCR33N"}
    assert site_completion(study_id="OTHER", outcome="completed") is None


# --------------------------------------------------------------------------- admin
def _act(client, model: str, action: str, pks: list[int], **data):
    return client.post(reverse(f"admin:crowd_{model}_changelist"),
                       {"action": action, "_selected_action": pks, **data}, follow=True)


def _messages(response) -> str:
    return " | ".join(str(m) for m in response.context["messages"])


def test_admin_study_actions_draft_publish_pause_sync(fake, pstudy, researcher, django_capture_on_commit_callbacks):
    client = client_for(researcher)
    r = _act(client, "study", "prolific_draft", [pstudy.pk])
    pstudy.refresh_from_db()
    assert f"draft {pstudy.prolific_study_id} created" in _messages(r)
    r = _act(client, "study", "prolific_draft", [pstudy.pk])
    assert "already on Prolific" in _messages(r) and len(fake.studies) == 1
    assert "published (Prolific status ACTIVE)" in _messages(_act(client, "study", "prolific_publish", [pstudy.pk]))
    assert "paused" in _messages(_act(client, "study", "prolific_pause", [pstudy.pk]))
    _submission(fake, pstudy, "PADM")
    with django_capture_on_commit_callbacks(execute=True):
        r = _act(client, "study", "prolific_sync", [pstudy.pk])
    assert "Syncing the submissions of 1 Prolific study" in _messages(r)
    job = Job.objects.get(kind="crowd.prolific_sync")
    assert job.status == "SUCCEEDED", job.error
    assert job.result == {"seen": 1, "new": 1, "flagged": 0, "returned": 0}


def test_admin_without_token_says_so(monkeypatch, pstudy, researcher):
    monkeypatch.delenv("PROLIFIC_API_TOKEN", raising=False)
    r = _act(client_for(researcher), "study", "prolific_draft", [pstudy.pk])
    assert "PROLIFIC_API_TOKEN" in _messages(r)


def test_admin_without_permission_sends_nothing(fake, pstudy, viewer):
    r = _act(client_for(viewer), "study", "prolific_draft", [pstudy.pk])
    assert r.status_code == 200 and not fake.calls and not Study.objects.get(pk=pstudy.pk).prolific_study_id


def test_admin_reject_form_in_bulk_with_category(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    rows = _synced(fake, study, researcher, "PX1", "PX2")
    client = client_for(researcher)
    pks = [a.pk for a in rows]
    page = _act(client, "assignment", "reject_assignments", pks)
    assert b'name="rejection_category"' in page.content
    r = _act(client, "assignment", "reject_assignments", pks, apply="1", feedback=REASON)
    assert "rejection_category" in _messages(r) and fake.count("POST", "/transition/") == 0
    r = _act(client, "assignment", "reject_assignments", pks, apply="1", feedback=REASON, rejection_category="NO_DATA")
    assert "Rejected: 2 done" in _messages(r) and fake.count("POST", "/submissions/.*/transition/") == 2
    assert {fake.submissions[a.assignment_id]["status"] for a in rows} == {"REJECTED"}


def test_admin_approve_return_and_bonus(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    a, b = _synced(fake, study, researcher, "PY1", "PY2")
    client = client_for(researcher)
    r = _act(client, "assignment", "approve_assignments", [a.pk])
    assert "Approved on Prolific (one bulk call per study): 1 done" in _messages(r)
    assert fake.submissions[a.assignment_id]["status"] == "APPROVED"
    r = _act(client, "assignment", "request_return", [b.pk], apply="1", reasons="No gaze data reached the site")
    assert "Return requested: 1 done" in _messages(r)
    for _ in range(2):  # a double submit of the bonus form pays once
        r = _act(client, "assignment", "bonus_assignments", [a.pk], apply="1", amount="0.75", reason="Thanks",
                 key="bonus")
        assert "Bonus paid: 1 done" in _messages(r)
    assert fake.paid_to("PY1") == Decimal("0.75")


def test_admin_confirm_lost_bonus(fake, pstudy, researcher):
    study = _published(pstudy, researcher)
    (a,) = _synced(fake, study, researcher, "PZ")
    fake.fail("POST", "/pay/$", lost=True)
    client = client_for(researcher)
    r = _act(client, "assignment", "bonus_assignments", [a.pk], apply="1", amount="1.00", reason="Thanks", key="bonus")
    assert "did not answer" in _messages(r) or "could not be reached" in _messages(r)
    payment = Payment.objects.get(assignment=a)
    r = _act(client, "payment", "confirm_bonus", [payment.pk], apply="1", outcome="paid")
    assert "Confirmed: 1 done" in _messages(r)
    payment.refresh_from_db()
    assert payment.status == "paid" and fake.paid_to("PZ") == Decimal("1.00")


def test_audit_log_hides_participant_ids_from_viewers(fake, pstudy, researcher, viewer):
    study = _published(pstudy, researcher)
    _synced(fake, study, researcher, "PSECRET42")
    log = AuditLog.objects.get(operation="submissions_list")
    url = reverse("admin:crowd_auditlog_change", args=[log.pk])
    assert "PSECRET42" not in client_for(viewer).get(url).content.decode()
    assert "PSECRET42" in client_for(researcher).get(url).content.decode()
