"""Prolific sync and blocking after a withdrawal (issue 24): the submission stays as the payment
record, but nothing records the person again (no Worker with their platform id or pseudonym).

Against the loopback fake of the Prolific API (``tests.support.fake_prolific``), on PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from collection.models import Platform, Task, Topic, Worker
from collection.services.study import platform_id_withdrew, worker_pseudonym
from crowd import services
from crowd.models import Assignment, Payment, Study
from crowd.services.withdrawal import participant_withdraw
from tests.support.fake_prolific import FakeProlific

pytestmark = pytest.mark.django_db
PID = "65f0c0ffee00withdrawn001"


@pytest.fixture
def fake(monkeypatch):
    with FakeProlific(token="tok-lab") as server:
        monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-lab")
        monkeypatch.setenv("PROLIFIC_API_URL", server.url)
        monkeypatch.setenv("PROLIFIC_API_TIMEOUT", "1")
        yield server


@pytest.fixture
def synced(fake, researcher) -> dict:
    """A published Prolific study with two completed submissions, synced and matched to tasks."""
    study = Study.objects.create(
        name="prolific pilot", platform=Study.Platform.PROLIFIC, external_url="https://lab.example.org/start/",
        reward=Decimal("3.00"), max_assignments=5, estimated_minutes=25, devices="desktop", require_webcam=True,
        code_completed="C0MPL3T", code_screened_out="SCR33N", code_partial="PART1AL",
    )
    study = services.prolific_study_draft_create(study=study, user=researcher)
    rows = {}
    for pid in (PID, "65f0c0ffee00staying00001"):
        sub = fake.add_submission(study.prolific_study_id, pid, status="AWAITING REVIEW", study_code="C0MPL3T")
        worker = Worker.objects.create(pseudonym=worker_pseudonym(platform="prolific", platform_worker_id=pid),
                                       platform=Platform.PROLIFIC, platform_worker_id=pid, consent=True)
        Task.objects.create(worker=worker, topic=Topic.objects.create(title=f"T-{pid}"), status="completed",
                            assignment_id=sub["id"], hit_id=study.prolific_study_id)
        rows[pid] = sub["id"]
    services.prolific_submissions_sync(study=study, user=researcher)
    mine = Assignment.objects.get(assignment_id=rows[PID])
    assert mine.task is not None and mine.worker is not None and not mine.flagged
    Payment.objects.create(assignment=mine, amount=Decimal("0.40"), reason="bonus", unique_request_token="b-wd")
    return {"study": study, "mine": mine, "other_id": rows["65f0c0ffee00staying00001"]}


def _withdraw(worker: Worker, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        participant_withdraw(worker=worker, channel="command")


def test_sync_after_withdrawal_keeps_the_payment_record_and_records_no_one(
    synced, researcher, django_capture_on_commit_callbacks
) -> None:
    me = Worker.objects.get(platform_worker_id=PID)
    pseudonym = me.pseudonym
    _withdraw(me, django_capture_on_commit_callbacks)
    assert platform_id_withdrew(platform="prolific", platform_worker_id=PID)

    counts = services.prolific_submissions_sync(study=synced["study"], user=researcher)

    assert counts["seen"] == 2 and counts["new"] == 0
    row = Assignment.objects.get(pk=synced["mine"].pk)
    assert (row.platform_worker_id, row.task_id, row.worker_id) == (PID, None, None)
    assert row.flags == ["withdrawn"] and row.flagged and row.status == Assignment.Status.REVIEW
    assert Payment.objects.filter(assignment=row).count() == 1  # the bonus record stays
    assert not Worker.objects.filter(platform_worker_id=PID).exists()
    assert not Worker.objects.filter(pseudonym=pseudonym).exists()
    # the other participant is matched as before
    other = Assignment.objects.get(assignment_id=synced["other_id"])
    assert other.task is not None and other.worker is not None and not other.flagged


def test_blocking_a_withdrawn_participant_makes_no_worker(synced, researcher, django_capture_on_commit_callbacks):
    _withdraw(Worker.objects.get(platform_worker_id=PID), django_capture_on_commit_callbacks)
    row = Assignment.objects.get(pk=synced["mine"].pk)

    with pytest.raises(services.CrowdError, match="withdrew"):
        services.assignment_worker(assignment=row)
    services.assignment_block(assignment=row, user=researcher, reason="withdrew")  # Prolific: nothing to make
    with pytest.raises(ValidationError):
        services.assignment_block(assignment=row, user=researcher, reason=" ")

    assert not Worker.objects.filter(platform_worker_id=PID).exists()
    assert Assignment.objects.get(pk=row.pk).worker_id is None


def test_blocking_without_a_withdrawal_still_makes_the_worker(synced, researcher) -> None:
    """The counter case: an unmatched submission of someone who never withdrew gets a local,
    blocked worker, so the block keeps their id out of the study site."""
    row = Assignment.objects.create(study=synced["study"], platform="prolific", assignment_id="SESSION-NEW",
                                    platform_worker_id="65f0c0ffee00neverseen001")
    services.assignment_block(assignment=row, user=researcher, reason="spam")
    worker = Worker.objects.get(platform_worker_id="65f0c0ffee00neverseen001")
    assert worker.blocked and Assignment.objects.get(pk=row.pk).worker_id == worker.pk


def test_admin_block_action_after_withdrawal(synced, researcher, django_capture_on_commit_callbacks) -> None:
    """The admin's "Block the workers of selected assignments" goes through ``assignment_block``:
    done, and no worker row appears."""
    from django.urls import reverse

    from .conftest import client_for

    _withdraw(Worker.objects.get(platform_worker_id=PID), django_capture_on_commit_callbacks)
    row = Assignment.objects.get(pk=synced["mine"].pk)
    client = client_for(researcher)
    url = reverse("admin:crowd_assignment_changelist")
    response = client.post(url, {"action": "block_workers", "_selected_action": [row.pk], "apply": "1",
                                 "reason": "withdrew"}, follow=True)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("Blocked: 1 done" in m for m in messages), messages
    assert not Worker.objects.filter(platform_worker_id=PID).exists()


def test_mturk_sync_and_block_after_withdrawal(study, stub, researcher, django_capture_on_commit_callbacks) -> None:
    """MTurk (existing accounts): a HIT sync after the withdrawal keeps the assignment without the
    answer they typed and without a worker; blocking goes to MTurk by the id alone."""
    from crowd.models import HIT

    from .test_services import HIT_ID, _answer

    hit = HIT.objects.create(study=study, environment="sandbox", hit_id=HIT_ID, unique_request_token="t",
                             max_assignments=9, reward="2.00")
    worker = Worker.objects.create(pseudonym=worker_pseudonym(platform="mturk", platform_worker_id="AWD1"),
                                   platform=Platform.MTURK, platform_worker_id="AWD1")
    Task.objects.create(worker=worker, topic=Topic.objects.create(title="MTurk topic"), status="completed",
                        assignment_id="ASG1", hit_id=HIT_ID, completion_code="GOOD1")
    item = {"AssignmentId": "ASG1", "WorkerId": "AWD1", "AssignmentStatus": "Submitted", "Answer": _answer("GOOD1")}
    stub.add_response("list_assignments_for_hit", {"Assignments": [item]}, None)
    services.hit_sync_assignments(hit=hit)
    row = Assignment.objects.get(assignment_id="ASG1")
    assert row.answer and row.task is not None  # before: matched, answer stored
    _withdraw(worker, django_capture_on_commit_callbacks)

    stub.add_response("list_assignments_for_hit", {"Assignments": [item]}, None)
    services.hit_sync_assignments(hit=hit)
    row.refresh_from_db()
    assert (row.answer, row.task_id, row.worker_id, row.flags) == ({}, None, None, ["withdrawn"])
    stub.add_response("create_worker_block", {}, {"WorkerId": "AWD1", "Reason": "withdrew"})
    services.assignment_block(assignment=row, user=researcher, reason="withdrew")
    stub.assert_no_pending_responses()
    assert not Worker.objects.filter(platform_worker_id="AWD1").exists()
