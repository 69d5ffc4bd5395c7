"""Crowd-platform writes: HITs, assignment sync and matching, approve/reject, bonuses, blocks,
notifications (MTurk through :mod:`crowd.mturk`, every call audited), Prolific submissions (the
CSV import here; the API in :mod:`crowd.services.prolific`, to which approve, reject and bonus
route Prolific assignments)."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from collection.models import Platform, Task, Worker
from collection.services import identity

from .. import mturk, prolific
from ..models import HIT, Assignment, AuditLog, Payment, Study
from .base import CrowdError, _acting, _jsonable, _require
from .qc import _enqueue_qc


def mturk_client(*, environment: str) -> Any:
    """The boto3 client for ``environment`` (tests replace this function with a stubbed client)."""
    return mturk.make_client(environment)


def mturk_for(*, study: Study, user: Any = None) -> mturk.MTurk:
    """An :class:`crowd.mturk.MTurk` for the study's environment that audits every call."""
    if study.platform != Study.Platform.MTURK:
        raise CrowdError(f"study {study} is not on MTurk")

    def audit(operation: str, params: dict, response: dict | None, error: str) -> None:
        AuditLog.objects.create(
            user=_acting(user),
            platform=Study.Platform.MTURK,
            environment=study.environment,
            operation=operation,
            request=_jsonable(params),
            response=_jsonable(response) if response is not None else None,
            ok=not error,
            error=error,
            study=study,
        )

    return mturk.MTurk(environment=study.environment, client=mturk_client(environment=study.environment), audit=audit)


def _study_qualification(*, study: Study, api: mturk.MTurk) -> str | None:
    """The study's retake-blocking qualification, created on first use."""
    if not study.block_retakes:
        return None
    if not study.retake_qualification_id:
        study.retake_qualification_id = api.create_qualification_type(
            name=f"IFllm Lab: took part in {study.name} ({study.pk})",
            description="Granted when a worker completes this study; the study's HITs are hidden from them.",
        )
        study.save(update_fields=["retake_qualification_id"])
    return study.retake_qualification_id


def hit_create(*, study: Study, user: Any = None, request_key: str = "") -> HIT:
    """Create one HIT for the study. The HIT row and its token are stored before the call, so a
    retry (:func:`hit_create_retry`) can never create a second HIT on MTurk.

    ``request_key`` makes the request idempotent: the admin's button carries a key made when the
    page was drawn, so a double click (two POSTs with the same key) finds the first row, waits
    for its call and returns that HIT instead of creating a second one.
    """
    _require(user, "crowd.pay_workers")
    if not study.external_url:
        raise CrowdError("the study has no external URL (the site's HTTPS entry page)")
    if request_key:
        digest = hashlib.sha256(f"{study.pk}:{request_key}".encode()).hexdigest()[:40]
        token = f"ifllm-hit-{digest}"
    else:
        token = f"ifllm-hit-{uuid.uuid4().hex}"
    hit, _created = HIT.objects.get_or_create(
        unique_request_token=token,
        defaults={"study": study, "environment": study.environment,
                  "max_assignments": study.max_assignments, "reward": study.reward},
    )
    if hit.study_id != study.pk:
        raise CrowdError("this request key belongs to another study")
    return hit_create_retry(hit=hit, user=user)


def hit_create_retry(*, hit: HIT, user: Any = None) -> HIT:
    """(Re)send CreateHIT for a HIT row that is still CREATING or FAILED, with its own token.

    The row stays locked for the whole call: a second request for the same row waits, then
    finds the HIT id and makes no call.
    """
    _require(user, "crowd.pay_workers")
    failure: mturk.MTurkError | None = None
    with transaction.atomic():
        hit = HIT.objects.select_for_update().select_related("study").get(pk=hit.pk)
        if hit.hit_id:
            return hit
        try:
            _hit_send(hit=hit, user=user)
        except mturk.MTurkError as exc:  # stored (with its audit rows) before it is raised
            failure = exc
    if failure is not None:
        raise failure
    return hit


def _hit_send(*, hit: HIT, user: Any) -> None:
    study = hit.study
    api = mturk_for(study=study, user=user)
    try:
        qualification = _study_qualification(study=study, api=api)
        answer = api.create_hit(
            title=study.title,
            description=study.description,
            keywords=study.keywords,
            url=study.external_url,
            frame_height=study.frame_height,
            reward=hit.reward,
            max_assignments=hit.max_assignments,
            assignment_duration_s=study.assignment_duration_s,
            lifetime_s=study.lifetime_s,
            auto_approval_delay_s=study.auto_approval_delay_s,
            qualification_requirements=mturk.qualification_requirements(
                environment=study.environment,
                masters=study.require_masters,
                min_percent_approved=study.min_percent_approved,
                min_hits_approved=study.min_hits_approved,
                locales=[c for c in study.locales.split(",") if c.strip()],
                retake_qualification_id=qualification,
            ),
            unique_request_token=hit.unique_request_token,
            annotation=f"study {study.pk}",
        )
    except mturk.MTurkError as exc:
        existing = mturk.existing_hit_id(exc) if mturk.already_done(exc) else None
        if existing is None:
            hit.status, hit.error = HIT.Status.FAILED, str(exc)
            hit.save(update_fields=["status", "error"])
            raise
        # The first call went through but its answer was lost: MTurk names the HIT it made.
        hit.hit_id, hit.status, hit.error = existing, HIT.Status.ASSIGNABLE, ""
        hit.save(update_fields=["hit_id", "status", "error"])
        return
    hit.hit_id = answer["HITId"]
    hit.hit_type_id = answer.get("HITTypeId", "")
    hit.status = answer.get("HITStatus", HIT.Status.ASSIGNABLE)
    hit.expires_at = answer.get("Expiration")
    hit.error = ""
    hit.save()


def _withdrew(assignment: Assignment) -> bool:
    """Whether the person behind this submission withdrew (``collection.Withdrawal.subject_key``)."""
    from collection.services.study import platform_id_withdrew

    platform = Platform.MTURK if assignment.platform == Study.Platform.MTURK else Platform.PROLIFIC
    return platform_id_withdrew(platform=platform, platform_worker_id=assignment.platform_worker_id)


def assignment_match(*, assignment: Assignment) -> Assignment:
    """Find the task this submission is for and record what does not add up.

    Matching: the task that stored this assignment id, else the task with the submitted
    completion code. Flags: no task; task not completed; code differs from the task's; task
    belongs to another platform worker; (Prolific) code not listed by the study.
    """
    if _withdrew(assignment):
        # Their task and worker were deleted: keep the payment record, link it to no one, and
        # say why there is no task (staff still decide: the work was done, the data is gone).
        assignment.task, assignment.worker = None, None
        assignment.flags, assignment.flagged = [str(Assignment.Flag.WITHDRAWN)], True
        if assignment.status == Assignment.Status.SUBMITTED:
            assignment.status = Assignment.Status.REVIEW
        return assignment
    task = Task.objects.select_related("worker").filter(assignment_id=assignment.assignment_id).first()
    if task is None and assignment.completion_code:
        task = Task.objects.select_related("worker").filter(completion_code=assignment.completion_code).first()
    flags: list[str] = []
    if task is None:
        flags.append(Assignment.Flag.NO_TASK)
    else:
        if task.status != Task.Status.COMPLETED:
            flags.append(Assignment.Flag.NOT_COMPLETED)
        if assignment.platform == Study.Platform.MTURK and (task.completion_code or "") != assignment.completion_code:
            flags.append(Assignment.Flag.CODE_MISMATCH)
        if task.worker.platform_worker_id and task.worker.platform_worker_id != assignment.platform_worker_id:
            flags.append(Assignment.Flag.WORKER_MISMATCH)
    if assignment.platform == Study.Platform.PROLIFIC:
        if prolific.completion_decision(assignment.completion_code, assignment.study.prolific_completion_codes) != (
            prolific.APPROVE
        ):
            flags.append(Assignment.Flag.UNKNOWN_CODE)
    assignment.task = task
    assignment.worker = (
        task.worker
        if task is not None
        else Worker.objects.filter(
            platform=assignment.platform, platform_worker_id=assignment.platform_worker_id
        ).first()
    )
    assignment.flags = [str(f) for f in flags]
    assignment.flagged = bool(flags)
    if flags and assignment.status == Assignment.Status.SUBMITTED:
        assignment.status = Assignment.Status.REVIEW
    return assignment


def _entry_verified(row: Assignment, *, by: str) -> None:
    """The platform lists this assignment as this worker's: an unverified entry with it is now
    verified (its tasks count as the worker's; ``collection.services.identity``)."""
    if row.task is not None and row.task.worker.platform_worker_id == row.platform_worker_id:
        identity.assignment_verify(worker=row.task.worker, assignment_id=row.assignment_id, by=by)


def hit_sync_assignments(*, hit: HIT, user: Any = None) -> dict[str, int]:
    """Mirror every assignment of a HIT (all pages) and match each to its task.

    Local decisions are kept: a row this lab marked for review stays so until staff decide,
    unless MTurk says it was approved or rejected meanwhile (e.g. auto-approval).
    """
    _require(user, "crowd.change_assignment")
    if not hit.hit_id:
        raise CrowdError("this HIT was never created on MTurk")
    api = mturk_for(study=hit.study, user=user)
    counts = {"seen": 0, "new": 0, "flagged": 0}
    now = timezone.now()
    for item in api.list_assignments(hit.hit_id):
        counts["seen"] += 1
        answer = mturk.parse_answer(item.get("Answer"))
        with transaction.atomic():
            row, created = Assignment.objects.select_for_update().get_or_create(
                platform=Study.Platform.MTURK,
                assignment_id=item["AssignmentId"],
                defaults={"study": hit.study, "hit": hit, "platform_worker_id": item["WorkerId"]},
            )
            counts["new"] += created
            remote = item.get("AssignmentStatus", Assignment.Status.SUBMITTED)
            if remote != Assignment.Status.SUBMITTED or row.status != Assignment.Status.REVIEW:
                row.status = remote
            row.answer = {} if _withdrew(row) else answer  # what a withdrawn worker typed is not stored again
            row.completion_code = (
                answer.get("completion_code") or answer.get("completionCode") or answer.get("code") or ""
            ).strip()
            row.accepted_at = item.get("AcceptTime")
            row.submitted_at = item.get("SubmitTime")
            row.synced_at = now
            assignment_match(assignment=row)
            row.save()
            _entry_verified(row, by="MTurk sync")
            counts["flagged"] += row.flagged
            if row.task is not None and row.task.status == Task.Status.COMPLETED and not row.flagged:
                task_pk = row.task.pk
                transaction.on_commit(lambda pk=task_pk: _enqueue_qc(pk))
    hit.synced_at = now
    hit.save(update_fields=["synced_at"])
    return counts


def _decidable(assignment: Assignment) -> None:
    if assignment.status not in (Assignment.Status.SUBMITTED, Assignment.Status.REVIEW):
        raise CrowdError(f"assignment {assignment} is {assignment.status}; only submitted ones can be decided")


def assignment_approve(
    *,
    assignment: Assignment,
    user: Any = None,
    feedback: str = "",
    bonus: Decimal | None = None,
    bonus_reason: str = "",
) -> Assignment:
    """Approve a submitted assignment; a bonus, if any, is paid FIRST (an approved assignment
    cannot be taken back, so a failed bonus must stop the approval, not follow it).
    Leaves the assignment APPROVED, and grants the retake-blocking qualification."""
    _require(user, "crowd.pay_workers")
    _decidable(assignment)
    if bonus:
        bonus_pay(assignment=assignment, user=user, amount=bonus, reason=bonus_reason or "Thank you!")
    if assignment.platform == Study.Platform.PROLIFIC:
        from .prolific import prolific_approve

        prolific_approve(assignments=[assignment], user=user)
    if assignment.platform == Study.Platform.MTURK:
        api = mturk_for(study=assignment.study, user=user)
        api.approve(assignment.assignment_id, feedback=feedback)
        _grant_retake_block(assignment=assignment, api=api)
    assignment.status = Assignment.Status.APPROVED
    assignment.requester_feedback = feedback
    assignment.decided_at, assignment.decided_by = timezone.now(), _acting(user)
    assignment.save()
    return assignment


def assignment_reject(*, assignment: Assignment, user: Any = None, feedback: str,
                      rejection_category: str = "") -> Assignment:
    """Reject with feedback for the worker (required). Leaves the assignment REJECTED.
    Prolific also requires a ``rejection_category`` and a longer message."""
    _require(user, "crowd.pay_workers")
    if not (feedback or "").strip():
        raise ValidationError("A rejection needs feedback that tells the worker why.", code="feedback_required")
    _decidable(assignment)
    if assignment.platform == Study.Platform.PROLIFIC:
        from .prolific import prolific_reject

        return prolific_reject(assignments=[assignment], user=user, message=feedback,
                               category=rejection_category)[0]
    if assignment.platform == Study.Platform.MTURK:
        mturk_for(study=assignment.study, user=user).reject(assignment.assignment_id, feedback=feedback)
    assignment.status = Assignment.Status.REJECTED
    assignment.requester_feedback = feedback
    assignment.decided_at, assignment.decided_by = timezone.now(), _acting(user)
    assignment.save()
    return assignment


def _grant_retake_block(*, assignment: Assignment, api: mturk.MTurk) -> None:
    qualification = assignment.study.retake_qualification_id
    if not qualification or assignment.qualification_granted or not assignment.study.block_retakes:
        return
    api.grant_qualification(qualification, assignment.platform_worker_id)
    assignment.qualification_granted = True


def bonus_pay(*, assignment: Assignment, user: Any = None, amount: Decimal, reason: str, key: str = "bonus") -> Payment:
    """Pay a bonus once per (assignment, key).

    The payment row is locked for the whole MTurk call, so concurrent clicks wait and then find
    it paid. A row that existed before this call (an earlier attempt failed, timed out or died
    mid-call) is only sent again after ``ListBonusPayments`` shows that MTurk has not paid it:
    its token protects a retry for 24 hours only, the check protects it for good. A refusal
    that says the token was already used means the first call paid.
    """
    _require(user, "crowd.pay_workers")
    if assignment.platform == Study.Platform.PROLIFIC:
        from .prolific import prolific_bonus_pay

        return prolific_bonus_pay(assignment=assignment, user=user, amount=amount, reason=reason, key=key)
    amount = Decimal(str(amount))
    if amount <= 0:
        raise ValidationError("A bonus must be positive.", code="bonus_amount")
    if not (reason or "").strip():
        raise ValidationError("Workers see the bonus reason; it cannot be empty.", code="bonus_reason")
    failure: mturk.MTurkError | None = None
    with transaction.atomic():
        payment, created = Payment.objects.select_for_update().get_or_create(
            assignment=assignment,
            key=key,
            defaults={
                "amount": amount,
                "reason": reason,
                "unique_request_token": f"ifllm-bonus-{uuid.uuid4().hex}",
                "created_by": _acting(user),
            },
        )
        if payment.status == Payment.Status.PAID:
            return payment
        if payment.amount != amount:
            raise CrowdError(f"bonus '{key}' of this assignment was started with ${payment.amount}, not ${amount}")
        if assignment.platform != Study.Platform.MTURK:
            raise CrowdError("bonuses on this platform are paid by hand")
        api = mturk_for(study=assignment.study, user=user)
        try:
            if created or not _bonus_found(api=api, payment=payment):
                api.send_bonus(
                    worker_id=assignment.platform_worker_id,
                    assignment_id=assignment.assignment_id,
                    amount=payment.amount,
                    reason=payment.reason,
                    unique_request_token=payment.unique_request_token,
                )
        except mturk.MTurkError as exc:
            if not mturk.already_done(exc):
                payment.status, payment.error = Payment.Status.FAILED, str(exc)
                payment.save(update_fields=["status", "error"])
                failure = exc
        if failure is None:
            payment.status, payment.error, payment.paid_at = Payment.Status.PAID, "", timezone.now()
            payment.save(update_fields=["status", "error", "paid_at"])
    if failure is not None:
        raise failure
    return payment


def _bonus_found(*, api: mturk.MTurk, payment: Payment) -> bool:
    """Whether MTurk lists a bonus for this payment that no other paid row of the assignment
    accounts for (same worker, amount and reason)."""
    assignment = payment.assignment
    same = [
        b for b in api.bonus_payments(assignment.assignment_id)
        if b.get("WorkerId") == assignment.platform_worker_id
        and mturk.money(b.get("BonusAmount", "0")) == mturk.money(payment.amount)
        and (b.get("Reason") or "") == payment.reason
    ]
    accounted = (
        Payment.objects.filter(assignment=assignment, status=Payment.Status.PAID, amount=payment.amount,
                               reason=payment.reason).exclude(pk=payment.pk).count()
    )
    return len(same) > accounted


def worker_block(*, worker: Worker, user: Any = None, reason: str, study: Study | None = None) -> Worker:
    """Block a worker: on MTurk (CreateWorkerBlock, through ``study``'s environment or the
    environment of their latest assignment), and locally (``Worker.blocked``)."""
    _require(user, "crowd.pay_workers")
    if not (reason or "").strip():
        raise ValidationError("MTurk requires a reason to block a worker.", code="block_reason")
    if worker.platform == Platform.MTURK and worker.platform_worker_id:
        if study is None:
            last = Assignment.objects.filter(worker=worker, platform=Study.Platform.MTURK).first()
            study = last.study if last else Study.objects.filter(platform=Study.Platform.MTURK).first()
        if study is None:
            raise CrowdError("no MTurk study to block this worker through")
        mturk_for(study=study, user=user).block(worker.platform_worker_id, reason=reason)
    worker.blocked = True
    worker.save(update_fields=["blocked"])
    return worker


def assignment_worker(*, assignment: Assignment) -> Worker:
    """The local worker of an assignment, made from its platform worker id when no task matched
    (so that blocking it also keeps that id out of the study site).

    Never for a person who withdrew: that would record them again (a pseudonym and a platform id
    in ``collection.Worker``) after their data was deleted; their re-entry is refused anyway
    (:class:`CrowdError`; :func:`assignment_block` blocks them on the platform without a worker).
    """
    if assignment.worker is not None:
        return assignment.worker
    if _withdrew(assignment):
        raise CrowdError("this participant withdrew and their data was deleted: no local worker is made for them "
                         "(re-entry is already refused)")
    from collection.services.study import worker_pseudonym

    platform = Platform.MTURK if assignment.platform == Study.Platform.MTURK else Platform.PROLIFIC
    worker, _created = Worker.objects.get_or_create(
        platform=platform, platform_worker_id=assignment.platform_worker_id,
        defaults={"pseudonym": worker_pseudonym(platform=platform, platform_worker_id=assignment.platform_worker_id),
                  "created_at": timezone.now()},
    )
    Assignment.objects.filter(pk=assignment.pk).update(worker=worker)
    assignment.worker = worker
    return worker


def assignment_block(*, assignment: Assignment, user: Any = None, reason: str, study: Study | None = None) -> None:
    """Block the person of a submission (the admin's "Block the workers of selected assignments").

    Through their local worker (:func:`worker_block`), made from the platform id when no task
    matched. A person who withdrew gets no new worker row: on MTurk they are blocked on the
    platform by their id alone; on the site their re-entry is already refused by the withdrawal.
    """
    _require(user, "crowd.pay_workers")
    if assignment.worker is not None or not _withdrew(assignment):
        worker_block(worker=assignment_worker(assignment=assignment), user=user, reason=reason, study=study)
        return
    if not (reason or "").strip():
        raise ValidationError("MTurk requires a reason to block a worker.", code="block_reason")
    if assignment.platform == Study.Platform.MTURK:
        mturk_for(study=study or assignment.study, user=user).block(assignment.platform_worker_id, reason=reason)


def workers_notify(*, study: Study, worker_ids: list[str], subject: str, message: str, user: Any = None) -> list:
    """Send a message to MTurk workers (by platform id); returns MTurk's per-worker failures."""
    _require(user, "crowd.pay_workers")
    if not subject.strip() or not message.strip():
        raise ValidationError("Subject and message are required.", code="notify_empty")
    return mturk_for(study=study, user=user).notify(sorted(set(worker_ids)), subject=subject, message=message)


def prolific_submissions_import(*, study: Study, csv_text: str, user: Any = None) -> dict[str, int]:
    """Record the submissions of a Prolific export, matched to tasks like MTurk assignments.

    A submission is the task whose ``assignment_id`` is its session/submission id (the site
    stores ``SESSION_ID`` there), else the task with its completion code. Codes the study maps
    to ``approve`` on a completed task are left SUBMITTED (ready to approve); others need review.
    """
    _require(user, "crowd.change_assignment")
    counts = {"seen": 0, "new": 0, "flagged": 0}
    for row in prolific.parse_submissions_csv(csv_text):
        counts["seen"] += 1
        with transaction.atomic():
            item, created = Assignment.objects.get_or_create(
                platform=Study.Platform.PROLIFIC,
                assignment_id=row["submission_id"],
                defaults={"study": study, "platform_worker_id": row["participant_id"]},
            )
            counts["new"] += created
            item.completion_code = row.get("completion_code", "")
            item.synced_at = timezone.now()
            assignment_match(assignment=item)
            item.save()
            _entry_verified(item, by="Prolific submissions export")
            counts["flagged"] += item.flagged
    return counts
