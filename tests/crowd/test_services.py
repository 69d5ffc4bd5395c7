"""Crowd services against the database and a stubbed MTurk: HITs, sync, decisions, bonuses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from botocore.stub import ANY, Stubber
from django.core.exceptions import PermissionDenied, ValidationError

from collection.models import Platform, Task, Topic, Worker
from crowd import services
from crowd.models import HIT, Assignment, AuditLog, Payment, Study

pytestmark = pytest.mark.django_db

HIT_ID = "3HITAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _answer(code: str) -> str:
    return (
        '<QuestionFormAnswers xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/'
        f'QuestionFormAnswers.xsd"><Answer><QuestionIdentifier>completion_code</QuestionIdentifier>'
        f"<FreeText>{code}</FreeText></Answer></QuestionFormAnswers>"
    )


def _task(worker_id: str, assignment_id: str, code: str, status: str = Task.Status.COMPLETED) -> Task:
    worker = Worker.objects.create(pseudonym=f"p-{worker_id}", platform=Platform.MTURK, platform_worker_id=worker_id)
    topic, _ = Topic.objects.get_or_create(title="Ada Lovelace")
    return Task.objects.create(
        worker=worker, topic=topic, status=status, assignment_id=assignment_id, hit_id=HIT_ID, completion_code=code
    )


def _hit(study: Study) -> HIT:
    return HIT.objects.create(
        study=study, environment="sandbox", hit_id=HIT_ID, unique_request_token="t", max_assignments=9, reward="2.00"
    )


def _assignment(study: Study, **kw) -> Assignment:
    defaults = {"platform": "mturk", "assignment_id": "A1", "platform_worker_id": "W1", "status": "Submitted"}
    return Assignment.objects.create(study=study, hit=_hit(study), **{**defaults, **kw})


def test_hit_create_sends_study_settings_and_records_the_hit(study: Study, stub: Stubber, researcher) -> None:
    stub.add_response(
        "create_hit",
        {"HIT": {"HITId": HIT_ID, "HITTypeId": "3TYPE", "HITStatus": "Assignable"}},
        {
            "Title": study.title,
            "Description": study.description,
            "Keywords": study.keywords,
            "Question": ANY,
            "Reward": "2.00",
            "MaxAssignments": 9,
            "AssignmentDurationInSeconds": 3600,
            "LifetimeInSeconds": 604800,
            "AutoApprovalDelayInSeconds": 259200,
            "QualificationRequirements": [
                {
                    "QualificationTypeId": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
                    "Comparator": "Exists",
                    "ActionsGuarded": "Accept",
                },
                {
                    "QualificationTypeId": "000000000000000000L0",
                    "Comparator": "GreaterThanOrEqualTo",
                    "IntegerValues": [98],
                    "ActionsGuarded": "Accept",
                },
                {
                    "QualificationTypeId": "00000000000000000040",
                    "Comparator": "GreaterThanOrEqualTo",
                    "IntegerValues": [1000],
                    "ActionsGuarded": "Accept",
                },
                {
                    "QualificationTypeId": "00000000000000000071",
                    "Comparator": "In",
                    "LocaleValues": [{"Country": "US"}, {"Country": "CA"}],
                    "ActionsGuarded": "Accept",
                },
                {
                    "QualificationTypeId": "3QUALRETAKE000000000000000000",
                    "Comparator": "DoesNotExist",
                    "ActionsGuarded": "DiscoverPreviewAndAccept",
                },
            ],
            "UniqueRequestToken": ANY,
            "RequesterAnnotation": f"study {study.pk}",
        },
    )
    hit = services.hit_create(study=study, user=researcher)
    assert hit.hit_id == HIT_ID and hit.status == "Assignable" and hit.unique_request_token.startswith("ifllm-hit-")
    log = AuditLog.objects.get()
    assert log.operation == "create_hit" and log.ok and log.user == researcher and log.environment == "sandbox"


def test_hit_create_makes_the_retake_qualification_once(study: Study, stub: Stubber) -> None:
    study.retake_qualification_id = ""
    study.save()
    stub.add_response(
        "create_qualification_type",
        {"QualificationType": {"QualificationTypeId": "3NEWQUAL"}},
        {"Name": ANY, "Description": ANY, "QualificationTypeStatus": "Active"},
    )
    stub.add_response("create_hit", {"HIT": {"HITId": HIT_ID}}, None)
    services.hit_create(study=study)
    study.refresh_from_db()
    assert study.retake_qualification_id == "3NEWQUAL"


def test_hit_retry_reuses_the_token_and_adopts_the_hit_mturk_already_made(study: Study, stub: Stubber) -> None:
    stub.add_client_error("create_hit", "ServiceUnavailable", "try again", 503)
    with pytest.raises(services.mturk.MTurkError):
        services.hit_create(study=study)
    hit = HIT.objects.get()
    assert hit.status == HIT.Status.FAILED and hit.hit_id is None
    stub.add_client_error(
        "create_hit",
        "RequestError",
        f"The HIT with ID {HIT_ID} already exists (UniqueRequestToken reused)",
        400,
        expected_params={
            "Title": ANY,
            "Description": ANY,
            "Keywords": ANY,
            "Question": ANY,
            "Reward": ANY,
            "MaxAssignments": ANY,
            "AssignmentDurationInSeconds": ANY,
            "LifetimeInSeconds": ANY,
            "AutoApprovalDelayInSeconds": ANY,
            "QualificationRequirements": ANY,
            "UniqueRequestToken": hit.unique_request_token,
            "RequesterAnnotation": ANY,
        },
    )
    hit = services.hit_create_retry(hit=hit)
    assert hit.hit_id == HIT_ID and HIT.objects.count() == 1
    assert list(AuditLog.objects.order_by("pk").values_list("ok", flat=True)) == [False, False]


def test_sync_matches_tasks_and_flags_what_does_not_add_up(study: Study, stub: Stubber) -> None:
    hit = _hit(study)
    _task("W1", "A1", "GOOD1")
    _task("W2", "A2", "GOOD2", status=Task.Status.CHATTING)
    _task("W3", "A3", "GOOD3")
    items = [
        {"AssignmentId": "A1", "WorkerId": "W1", "AssignmentStatus": "Submitted", "Answer": _answer("GOOD1")},
        {"AssignmentId": "A2", "WorkerId": "W2", "AssignmentStatus": "Submitted", "Answer": _answer("GOOD2")},
        {"AssignmentId": "A3", "WorkerId": "W3", "AssignmentStatus": "Submitted", "Answer": _answer("WRONG")},
        {"AssignmentId": "A4", "WorkerId": "W4", "AssignmentStatus": "Submitted", "Answer": _answer("GOOD1")},
        {"AssignmentId": "A9", "WorkerId": "W9", "AssignmentStatus": "Submitted", "Answer": _answer("NOPE")},
    ]
    stub.add_response("list_assignments_for_hit", {"Assignments": items[:3], "NextToken": "p2"}, None)
    stub.add_response("list_assignments_for_hit", {"Assignments": items[3:]}, None)
    counts = services.hit_sync_assignments(hit=hit)
    assert counts == {"seen": 5, "new": 5, "flagged": 4}
    got = {a.assignment_id: (a.flags, a.status, a.task_id is not None) for a in Assignment.objects.all()}
    assert got["A1"] == ([], "Submitted", True)
    assert got["A2"] == (["not_completed"], "review", True)
    assert got["A3"] == (["code_mismatch"], "review", True)
    assert got["A4"] == (["worker_mismatch"], "review", True)  # W4 reused W1's code
    assert got["A9"] == (["no_task"], "review", False)
    # a second sync keeps local review state but picks up MTurk's decisions
    items[1]["AssignmentStatus"] = "Approved"
    stub.add_response("list_assignments_for_hit", {"Assignments": items}, None)
    assert services.hit_sync_assignments(hit=hit)["new"] == 0
    assert Assignment.objects.get(assignment_id="A2").status == "Approved"
    assert Assignment.objects.get(assignment_id="A9").status == "review"


def test_bonus_is_idempotent_and_retries_with_the_same_token(study: Study, stub: Stubber, researcher) -> None:
    a = _assignment(study)
    stub.add_client_error("send_bonus", "ServiceUnavailable", "timeout", 503)
    with pytest.raises(services.mturk.MTurkError):
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.50"), reason="well done")
    payment = Payment.objects.get()
    assert payment.status == Payment.Status.FAILED
    # the retry first asks what MTurk paid (nothing listed yet), then sends with the same token;
    # the first call reached MTurk after all: MTurk refuses the same token again
    stub.add_response("list_bonus_payments", {"NumResults": 0, "BonusPayments": []},
                      {"AssignmentId": "A1", "MaxResults": 100})
    stub.add_client_error(
        "send_bonus",
        "RequestError",
        "The bonus for UniqueRequestToken already exists",
        400,
        expected_params={
            "WorkerId": "W1",
            "AssignmentId": "A1",
            "BonusAmount": "0.50",
            "Reason": "well done",
            "UniqueRequestToken": payment.unique_request_token,
        },
    )
    again = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.50"), reason="well done")
    assert again.pk == payment.pk and again.status == Payment.Status.PAID
    # paid: a third call does not reach MTurk at all (no stubbed response left)
    services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.50"), reason="well done")
    assert Payment.objects.count() == 1
    with pytest.raises(ValidationError):
        services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0"), reason="x", key="other")


def test_approve_pays_the_bonus_first_then_approves_and_blocks_retakes(study: Study, stub: Stubber) -> None:
    a = _assignment(study)
    stub.add_response("send_bonus", {}, None)
    stub.add_response("approve_assignment", {}, {"AssignmentId": "A1"})
    stub.add_response(
        "associate_qualification_with_worker",
        {},
        {
            "QualificationTypeId": study.retake_qualification_id,
            "WorkerId": "W1",
            "IntegerValue": 1,
            "SendNotification": False,
        },
    )
    services.assignment_approve(assignment=a, bonus=Decimal("1.00"), bonus_reason="long answers")
    a.refresh_from_db()
    assert a.status == "Approved" and a.qualification_granted
    assert list(AuditLog.objects.order_by("pk").values_list("operation", flat=True)) == [
        "send_bonus",
        "approve_assignment",
        "associate_qualification_with_worker",
    ]
    with pytest.raises(services.CrowdError, match="only submitted"):
        services.assignment_approve(assignment=a)


def test_failed_bonus_stops_the_approval(study: Study, stub: Stubber) -> None:
    a = _assignment(study)
    stub.add_client_error("send_bonus", "ServiceFault", "Insufficient funds", 400)
    with pytest.raises(services.mturk.MTurkRefused, match="Insufficient"):
        services.assignment_approve(assignment=a, bonus=Decimal("1.00"), bonus_reason="x")
    a.refresh_from_db()
    assert a.status == "Submitted"


def test_reject_requires_feedback(study: Study, stub: Stubber) -> None:
    a = _assignment(study)
    with pytest.raises(ValidationError, match="feedback"):
        services.assignment_reject(assignment=a, feedback=" ")
    stub.add_response("reject_assignment", {}, {"AssignmentId": "A1", "RequesterFeedback": "No summary."})
    services.assignment_reject(assignment=a, feedback="No summary.")
    assert Assignment.objects.get().status == "Rejected"


def test_block_and_notify(study: Study, stub: Stubber) -> None:
    task = _task("W1", "A1", "C1")
    stub.add_response("create_worker_block", {}, {"WorkerId": "W1", "Reason": "copied answers"})
    services.worker_block(worker=task.worker, reason="copied answers", study=study)
    assert Worker.objects.get(pk=task.worker_id).blocked
    ids = [f"W{i}" for i in range(150)]
    stub.add_response(
        "notify_workers",
        {"NotifyWorkersFailureStatuses": []},
        {"Subject": "s", "MessageText": "m", "WorkerIds": sorted(ids)[:100]},
    )
    stub.add_response(
        "notify_workers",
        {"NotifyWorkersFailureStatuses": [{"NotifyWorkersFailureCode": "HardFailure", "WorkerId": "W99"}]},
        {"Subject": "s", "MessageText": "m", "WorkerIds": sorted(ids)[100:]},
    )
    failures = services.workers_notify(study=study, worker_ids=ids, subject="s", message="m")
    assert failures == [{"NotifyWorkersFailureCode": "HardFailure", "WorkerId": "W99"}]


def test_services_refuse_payments_to_viewers(study: Study, viewer) -> None:
    a = _assignment(study)
    for call in (
        lambda: services.assignment_approve(assignment=a, user=viewer),
        lambda: services.assignment_reject(assignment=a, user=viewer, feedback="x"),
        lambda: services.bonus_pay(assignment=a, user=viewer, amount=Decimal("1"), reason="x"),
        lambda: services.hit_create(study=study, user=viewer),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert not AuditLog.objects.exists() and not Payment.objects.exists()


def test_prolific_codes_map_to_approve_or_review(db) -> None:
    study = Study.objects.create(
        name="prolific pilot", platform="prolific", prolific_completion_codes={"C0DE1": "approve", "CAL0": "review"}
    )
    worker = Worker.objects.create(pseudonym="pp", platform=Platform.PROLIFIC, platform_worker_id="PID1")
    topic = Topic.objects.create(title="Rust")
    Task.objects.create(worker=worker, topic=topic, status="completed", assignment_id="S1", completion_code="C0DE1x")
    csv_text = "Submission id,Participant id,Status,Completion code\nS1,PID1,AWAITING REVIEW,C0DE1\nS2,PID2,,CAL0\n"
    assert services.prolific_submissions_import(study=study, csv_text=csv_text) == {"seen": 2, "new": 2, "flagged": 1}
    s1, s2 = Assignment.objects.get(assignment_id="S1"), Assignment.objects.get(assignment_id="S2")
    assert s1.status == "Submitted" and s1.task is not None and s1.flags == []
    assert s2.status == "review" and set(s2.flags) == {"no_task", "unknown_code"}
    from crowd.prolific import completion_url

    assert completion_url("C0DE1") == "https://app.prolific.com/submissions/complete?cc=C0DE1"
