"""Admin actions as a researcher clicks them: forms first where input is needed, then services."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber
from django.test import Client, override_settings
from django.urls import reverse

from collection.models import Platform, Task, Topic, Worker
from crowd.models import HIT, Assignment, AuditLog, Payment, Study, TaskQC
from jobs.models import Job

from .conftest import client_for

pytestmark = pytest.mark.django_db

URL = "admin:crowd_assignment_changelist"


@pytest.fixture
def assignment(study: Study) -> Assignment:
    hit = HIT.objects.create(
        study=study, environment="sandbox", hit_id="H1", unique_request_token="t", max_assignments=1, reward="1.00"
    )
    worker = Worker.objects.create(pseudonym="p1", platform=Platform.MTURK, platform_worker_id="W1")
    task = Task.objects.create(
        worker=worker,
        topic=Topic.objects.create(title="T"),
        status="completed",
        assignment_id="A1",
        completion_code="C1",
    )
    return Assignment.objects.create(
        study=study,
        hit=hit,
        platform="mturk",
        assignment_id="A1",
        platform_worker_id="W1",
        task=task,
        worker=worker,
        completion_code="C1",
    )


def _post(client: Client, action: str, pk: int, **data) -> object:
    return client.post(reverse(URL), {"action": action, "_selected_action": [pk], **data}, follow=True)


def test_reject_asks_for_feedback_then_rejects(researcher, assignment: Assignment, stub: Stubber) -> None:
    client = client_for(researcher)
    page = _post(client, "reject_assignments", assignment.pk)
    assert b'name="feedback"' in page.content and page.templates[0].name == "crowd/admin/action_form.html"
    page = _post(client, "reject_assignments", assignment.pk, apply="1", feedback="")
    assert b"This field is required" in page.content
    assignment.refresh_from_db()
    assert assignment.status == "Submitted"
    stub.add_response("reject_assignment", {}, {"AssignmentId": "A1", "RequesterFeedback": "No gaze data."})
    page = _post(client, "reject_assignments", assignment.pk, apply="1", feedback="No gaze data.")
    assignment.refresh_from_db()
    assert assignment.status == "Rejected" and assignment.decided_by == researcher
    assert b"Rejected: 1 done." in page.content


def test_approve_action_and_its_audit_trail(researcher, assignment: Assignment, stub: Stubber) -> None:
    stub.add_response("approve_assignment", {}, {"AssignmentId": "A1"})
    stub.add_response("associate_qualification_with_worker", {}, None)
    _post(client_for(researcher), "approve_assignments", assignment.pk)
    assignment.refresh_from_db()
    assert assignment.status == "Approved"
    logs = list(AuditLog.objects.order_by("pk").values_list("operation", "ok", "user__username"))
    assert logs == [("approve_assignment", True, "rita"), ("associate_qualification_with_worker", True, "rita")]
    body = client_for(researcher).get(reverse("admin:crowd_auditlog_changelist")).content
    assert b"approve_assignment" in body


def test_api_refusal_is_shown_not_raised(researcher, assignment: Assignment, stub: Stubber) -> None:
    stub.add_client_error("approve_assignment", "RequestError", "Assignment A1 does not exist", 400)
    page = _post(client_for(researcher), "approve_assignments", assignment.pk)
    assert b"does not exist" in page.content
    assert AuditLog.objects.get().ok is False


def test_bonus_action_is_idempotent(researcher, assignment: Assignment, stub: Stubber) -> None:
    client = client_for(researcher)
    assert b'name="amount"' in _post(client, "bonus_assignments", assignment.pk).content
    stub.add_response("send_bonus", {}, None)
    data = {"apply": "1", "amount": "0.75", "reason": "careful reading", "key": "reading"}
    _post(client, "bonus_assignments", assignment.pk, **data)
    _post(client, "bonus_assignments", assignment.pk, **data)  # no second MTurk call (no stub left)
    assert Payment.objects.get().status == "paid" and AuditLog.objects.count() == 1


def test_block_action_blocks_assignments_without_a_task(researcher, study, stub: Stubber) -> None:
    """Issue 22, item 10: "Block workers" silently did nothing for an assignment with no task."""


    lone = Assignment.objects.create(study=study, platform="mturk", assignment_id="3LONE", platform_worker_id="A2SLONE")
    stub.add_response("create_worker_block", {}, {"WorkerId": "A2SLONE", "Reason": "bot"})
    page = _post(client_for(researcher), "block_workers", lone.pk, apply="1", reason="bot")
    assert b"Blocked: 1 done." in page.content
    worker = Worker.objects.get(platform="mturk", platform_worker_id="A2SLONE")
    assert worker.blocked and Assignment.objects.get(pk=lone.pk).worker == worker


def test_block_and_notify_actions(researcher, assignment: Assignment, stub: Stubber) -> None:
    client = client_for(researcher)
    stub.add_response("create_worker_block", {}, {"WorkerId": "W1", "Reason": "bot"})
    _post(client, "block_workers", assignment.pk, apply="1", reason="bot")
    assert Worker.objects.get(pk=assignment.worker_id).blocked
    stub.add_response("notify_workers", {}, {"Subject": "Bonus", "MessageText": "Thanks", "WorkerIds": ["W1"]})
    page = _post(client, "notify_workers", assignment.pk, apply="1", subject="Bonus", message="Thanks")
    assert b"Notified: 1 done." in page.content


def test_qc_actions_compute_exclude_keep(
    researcher, assignment: Assignment, django_capture_on_commit_callbacks
) -> None:
    client = client_for(researcher)
    qc = TaskQC.objects.create(task=assignment.task)
    url = reverse("admin:crowd_taskqc_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "compute_qc", "_selected_action": [qc.pk]}, follow=True)
    job = Job.objects.get(kind="crowd.compute_qc")
    assert job.status == "SUCCEEDED", job.error
    qc.refresh_from_db()
    assert qc.flagged and "response_score" in qc.flag_codes()  # no samples at all
    client.post(url, {"action": "exclude_tasks", "_selected_action": [qc.pk]})
    assert Task.objects.get(pk=assignment.task_id).excluded
    client.post(url, {"action": "keep_tasks", "_selected_action": [qc.pk]})
    assert not Task.objects.get(pk=assignment.task_id).excluded
    assert TaskQC.objects.get(pk=qc.pk).decision == "keep"
    # filter by flag
    body = client.get(url + "?flag=response_score").content.decode()
    assert f"review task {assignment.task_id}" in body
    assert f"review task {assignment.task_id}" not in client.get(url + "?flag=calibration_score").content.decode()


def test_export_action_runs_the_export_job(
    researcher,
    viewer,
    assignment: Assignment,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
) -> None:
    qc = TaskQC.objects.create(task=assignment.task)
    url = reverse("admin:crowd_taskqc_changelist")
    client_for(viewer).post(url, {"action": "export_dataset", "_selected_action": [qc.pk]})
    assert not Job.objects.exists()
    with override_settings(VAR_DIR=tmp_path), django_capture_on_commit_callbacks(execute=True):
        client_for(researcher).post(url, {"action": "export_dataset", "_selected_action": [qc.pk]})
    job = Job.objects.get(kind="crowd.export_dataset")
    assert job.status == "SUCCEEDED", job.error
    assert job.result["tasks"] == 1 and Path(job.params["path"], "manifest.json").exists()


def test_sync_action_starts_a_job(researcher, study: Study, stub: Stubber, django_capture_on_commit_callbacks) -> None:
    HIT.objects.create(
        study=study, environment="sandbox", hit_id="H1", unique_request_token="t", max_assignments=1, reward="1.00"
    )
    stub.add_response(
        "list_assignments_for_hit",
        {"Assignments": [{"AssignmentId": "A7", "WorkerId": "W7", "AssignmentStatus": "Submitted"}]},
        None,
    )
    with django_capture_on_commit_callbacks(execute=True):
        client_for(researcher).post(
            reverse("admin:crowd_study_changelist"), {"action": "sync_assignments", "_selected_action": [study.pk]}
        )
    job = Job.objects.get(kind="crowd.sync_assignments")
    assert job.status == "SUCCEEDED", job.error
    assert job.result == {"seen": 1, "new": 1, "flagged": 1}
    assert Assignment.objects.get(assignment_id="A7").flags == ["no_task"]
