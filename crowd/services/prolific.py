"""Prolific through its API: drafts, publish/pause, submission sync, decisions, bonuses.

Every call goes through :func:`prolific_for`, whose client writes each HTTP attempt to
:class:`~crowd.models.AuditLog` (platform ``prolific``) whatever happens. The token is read from
``PROLIFIC_API_TOKEN`` at each use and never stored.

Money and decisions need ``crowd.pay_workers``; syncing needs ``crowd.change_assignment``.

Bonuses (:func:`prolific_bonus_pay`) are two calls, create then pay, and pay is not idempotent.
The rule, since Prolific lists no bulk bonus payments to look a lost one up in:

* a create whose answer was lost leaves the row ``pending``; the retry creates another bulk
  bonus payment. The lost one is never paid (only the id recorded on the row is ever paid), and
  an unpaid bulk bonus payment costs nothing;
* the row is marked ``paying`` and committed *before* the pay call; a row found ``paying`` is
  never paid again by the site: a lost answer (timeout, dropped connection, 5xx) leaves it so,
  and staff check the study's bonuses on Prolific and confirm (:func:`prolific_bonus_confirm`);
* a refusal (4xx, or 429 after the bounded retries) means nothing was paid: the row goes back
  to ``created`` and a retry pays that same bulk bonus payment.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from collection.models import Task

from .. import prolific, prolific_api
from ..models import Assignment, AuditLog, Payment, Study
from .base import CrowdError, _acting, _jsonable, _require

#: Prolific's submission status -> ours.
STATUS = {
    prolific_api.ACTIVE: Assignment.Status.ACTIVE,
    prolific_api.AWAITING_REVIEW: Assignment.Status.SUBMITTED,
    prolific_api.APPROVED: Assignment.Status.APPROVED,
    prolific_api.REJECTED: Assignment.Status.REJECTED,
    prolific_api.RETURNED: Assignment.Status.RETURNED,
    prolific_api.TIMED_OUT: Assignment.Status.TIMED_OUT,
    prolific_api.SCREENED_OUT: Assignment.Status.SCREENED_OUT,
}
#: Kept while Prolific still says "awaiting review": staff's hold, and approvals (Prolific's bulk
#: approve is asynchronous, so a sync right after it may still see the submission waiting).
LOCAL_DECISIONS = (Assignment.Status.REVIEW, Assignment.Status.APPROVED, Assignment.Status.REJECTED)
NO_TOKEN = (f"Prolific is not configured: set {prolific_api.TOKEN_ENV} (the API token from Prolific's "
            "settings) in the environment of the web and worker processes. It is never stored in the database.")


def prolific_configured() -> bool:
    return bool(os.environ.get(prolific_api.TOKEN_ENV))


def prolific_for(*, study: Study | None = None, user: Any = None) -> prolific_api.ProlificClient:
    """A client whose every HTTP attempt is written to the audit log; CrowdError without a token."""
    if study is not None and study.platform != Study.Platform.PROLIFIC:
        raise CrowdError(f"study {study} is not on Prolific")
    if not prolific_configured():
        raise CrowdError(NO_TOKEN)

    def audit(operation: str, sent: dict, answer: Any, error: str) -> None:
        AuditLog.objects.create(
            user=_acting(user), platform=Study.Platform.PROLIFIC, environment="", operation=operation[:64],
            request=_jsonable(sent), response=_jsonable(answer) if answer is not None else None,
            ok=not error, error=error, study=study,
        )

    return prolific_api.ProlificClient(os.environ[prolific_api.TOKEN_ENV],
                                       os.environ.get(prolific_api.URL_ENV) or prolific_api.API_URL,
                                       float(os.environ.get("PROLIFIC_API_TIMEOUT", "15")), audit=audit)


def _internal_name(study: Study) -> str:
    """Unique per lab study: how a draft whose answer was lost is found again."""
    return f"ifllm-study-{study.pk}: {study.name}"[:200]


# --------------------------------------------------------------------------- studies
def prolific_study_draft_create(*, study: Study, user: Any = None) -> Study:
    """Create the study on Prolific as a draft (UNPUBLISHED) from its settings, once.

    A study that has a ``prolific_study_id`` is not created again (a double click waits on the
    row lock and finds it). Before creating, the researcher's studies are listed: a draft with
    this study's internal name (an earlier attempt whose answer was lost) is adopted instead.
    """
    _require(user, "crowd.pay_workers")
    if not study.external_url:
        raise ValidationError({"external_url": "The study needs the site's HTTPS entry URL."})
    if not study.code_completed:
        raise ValidationError({"code_completed": "Prolific needs a completion code for completed submissions."})
    try:
        payload = prolific_api.study_payload(
            name=study.title, internal_name=_internal_name(study), description=study.description,
            external_url=study.external_url, places=study.max_assignments, reward=study.reward,
            estimated_minutes=study.estimated_minutes, max_minutes=max(1, study.assignment_duration_s // 60),
            devices=[d.strip() for d in study.devices.split(",")], webcam=study.require_webcam,
            codes=study.prolific_codes(),
        )
    except ValueError as exc:
        raise ValidationError({"devices": str(exc)}) from None
    failure: prolific_api.ProlificError | None = None
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.prolific_study_id:
            return study
        try:
            with prolific_for(study=study, user=user) as api:
                found = next((s for s in api.studies() if s.get("internal_name") == payload["internal_name"]), None)
                if found is None:
                    found = api.study_create(payload)
        except prolific_api.ProlificError as exc:  # raised after the commit, which keeps its audit rows
            failure = exc
        else:
            study.prolific_study_id = found["id"]
            study.prolific_status = found.get("status", "UNPUBLISHED")
            study.save(update_fields=["prolific_study_id", "prolific_status"])
    if failure is not None:
        raise failure
    return study


def _transition(*, study: Study, user: Any, action: str) -> Study:
    _require(user, "crowd.pay_workers")
    if not study.prolific_study_id:
        raise CrowdError(f"study {study.name} has no Prolific study yet: create the draft first")
    with prolific_for(study=study, user=user) as api:
        answer = api.study_transition(study.prolific_study_id, action)
    study.prolific_status = answer.get("status", study.prolific_status)
    fields = ["prolific_status"]
    if action == "PUBLISH" and study.prolific_published_at is None:
        study.prolific_published_at = parse_datetime(answer.get("published_at") or "") or timezone.now()
        fields.append("prolific_published_at")
    study.save(update_fields=fields)
    return study


def prolific_study_publish(*, study: Study, user: Any = None) -> Study:
    """Publish the draft (or resume a paused study): participants can take it from now on."""
    return _transition(study=study, user=user, action="PUBLISH")


def prolific_study_pause(*, study: Study, user: Any = None) -> Study:
    """Pause: no new participants; those already in it can finish."""
    return _transition(study=study, user=user, action="PAUSE")


# --------------------------------------------------------------------------- submissions
def prolific_submissions_sync(*, study: Study, user: Any = None) -> dict[str, int]:
    """Mirror every submission of the study (all pages), match each to its task and verify the
    entries it vouches for. Local decisions are kept while Prolific still says "awaiting review"
    (:data:`LOCAL_DECISIONS`); a status this code does not know is held for review."""
    from .platform import _entry_verified, assignment_match
    from .qc import _enqueue_qc

    _require(user, "crowd.change_assignment")
    if not study.prolific_study_id:
        raise CrowdError(f"study {study.name} has no Prolific study yet")
    counts = {"seen": 0, "new": 0, "flagged": 0, "returned": 0}
    now = timezone.now()
    with prolific_for(study=study, user=user) as api:
        items = list(api.submissions(study.prolific_study_id))
        remote_study = api.study_get(study.prolific_study_id)  # e.g. AWAITING REVIEW once places are full
    for item in items:
        counts["seen"] += 1
        with transaction.atomic():
            row, created = Assignment.objects.select_for_update().get_or_create(
                platform=Study.Platform.PROLIFIC, assignment_id=item["id"],
                defaults={"study": study, "platform_worker_id": item.get("participant_id") or ""},
            )
            counts["new"] += created
            remote = STATUS.get(item.get("status", ""), Assignment.Status.REVIEW)  # unknown: a person looks
            if remote != Assignment.Status.SUBMITTED or row.status not in LOCAL_DECISIONS:
                row.status = remote
            row.platform_status = item.get("status", "")[:32]
            row.completion_code = (item.get("study_code") or item.get("entered_code") or "").strip()[:64]
            row.accepted_at = parse_datetime(item.get("started_at") or "")
            row.submitted_at = parse_datetime(item.get("completed_at") or "")
            row.synced_at = now
            if row.status in (Assignment.Status.SUBMITTED, Assignment.Status.REVIEW, Assignment.Status.APPROVED):
                assignment_match(assignment=row)
            else:  # active, returned, timed out: nothing to check yet, only who it is
                row.flags, row.flagged = [], False
                row.task = Task.objects.filter(assignment_id=row.assignment_id).first()
            row.save()
            _entry_verified(row, by="Prolific sync")
            counts["flagged"] += row.flagged
            counts["returned"] += row.status == Assignment.Status.RETURNED
            if row.task is not None and row.task.status == Task.Status.COMPLETED and not row.flagged:
                transaction.on_commit(lambda pk=row.task.pk: _enqueue_qc(pk))
    study.prolific_synced_at = now
    study.prolific_status = str(remote_study.get("status") or study.prolific_status)[:32]
    study.save(update_fields=["prolific_synced_at", "prolific_status"])
    return counts


def _prolific_rows(assignments: list[Assignment]) -> list[Assignment]:
    from .platform import _decidable

    for a in assignments:
        if a.platform != Study.Platform.PROLIFIC:
            raise CrowdError(f"{a} is not a Prolific submission")
        _decidable(a)
    return assignments


def prolific_approve(*, assignments: list[Assignment], user: Any = None) -> list[Assignment]:
    """Approve submissions in one bulk call (Prolific pays the reward). A lost answer changes
    nothing here: approving is harmless to repeat and the next sync shows what Prolific did."""
    _require(user, "crowd.pay_workers")
    rows = _prolific_rows(list(assignments))
    if not rows:
        return []
    with prolific_for(study=rows[0].study, user=user) as api:
        api.submissions_approve([a.assignment_id for a in rows])
    now = timezone.now()
    for a in rows:
        a.status, a.decided_at, a.decided_by = Assignment.Status.APPROVED, now, _acting(user)
        a.save(update_fields=["status", "decided_at", "decided_by"])
    return rows


def rejection_check(*, message: str, category: str) -> None:
    """What Prolific requires of a rejection, as a ValidationError naming the field."""
    errors = {}
    if len((message or "").strip()) < prolific_api.REJECTION_MESSAGE_MIN:
        errors["message"] = (f"Prolific requires a rejection message of at least "
                             f"{prolific_api.REJECTION_MESSAGE_MIN} characters that tells the participant why.")
    if category not in prolific_api.REJECTION_CATEGORIES:
        errors["rejection_category"] = ("Prolific requires a rejection category, one of "
                                        f"{', '.join(prolific_api.REJECTION_CATEGORIES)}.")
    if errors:
        raise ValidationError(errors)


def prolific_reject(*, assignments: list[Assignment], user: Any = None, message: str, category: str
                    ) -> list[Assignment]:
    """Reject each submission with the message and category Prolific requires (checked before
    any call). Prolific has no bulk reject: one call each; a failure stops at that submission."""
    _require(user, "crowd.pay_workers")
    rejection_check(message=message, category=category)
    rows = _prolific_rows(list(assignments))
    done = []
    with prolific_for(study=rows[0].study if rows else None, user=user) as api:
        for a in rows:
            api.submission_reject(a.assignment_id, message=message, category=category)
            a.status, a.requester_feedback, a.rejection_category = Assignment.Status.REJECTED, message.strip(), category
            a.decided_at, a.decided_by = timezone.now(), _acting(user)
            a.save(update_fields=["status", "requester_feedback", "rejection_category", "decided_at", "decided_by"])
            done.append(a)
    return done


def prolific_request_return(*, assignment: Assignment, user: Any = None, reasons: list[str]) -> Assignment:
    """Ask the participant to return the submission (e.g. no data reached the site)."""
    _require(user, "crowd.pay_workers")
    reasons = [r.strip() for r in reasons if r and r.strip()]
    if not reasons:
        raise ValidationError({"reasons": "Give the participant at least one reason to return the submission."})
    if assignment.platform != Study.Platform.PROLIFIC:
        raise CrowdError(f"{assignment} is not a Prolific submission")
    with prolific_for(study=assignment.study, user=user) as api:
        api.submission_request_return(assignment.assignment_id, reasons=reasons)
    assignment.return_requested_at = timezone.now()
    assignment.save(update_fields=["return_requested_at"])
    return assignment


# --------------------------------------------------------------------------- bonuses
def prolific_bonus_pay(*, assignment: Assignment, user: Any = None, amount: Decimal, reason: str,
                       key: str = "bonus") -> Payment:
    """Pay a bonus once per (assignment, key), in Prolific's two steps (see the module docstring)."""
    _require(user, "crowd.pay_workers")
    amount = Decimal(str(amount))
    if amount <= 0:
        raise ValidationError({"amount": "A bonus must be positive."})
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say what the bonus is for (kept in the lab's records)."})
    if assignment.platform != Study.Platform.PROLIFIC or not assignment.study.prolific_study_id:
        raise CrowdError(f"{assignment} is not a submission of a Prolific study created through the API")
    # Made first: without a token nothing is recorded as sent (a row marked "paying" must mean a
    # pay call really left).
    with prolific_for(study=assignment.study, user=user) as api:
        return _bonus_pay(api=api, assignment=assignment, user=user, amount=amount, reason=reason, key=key)


def _bonus_pay(*, api: prolific_api.ProlificClient, assignment: Assignment, user: Any, amount: Decimal,
               reason: str, key: str) -> Payment:
    import uuid

    failure: Exception | None = None
    with transaction.atomic():
        payment, _created = Payment.objects.select_for_update().get_or_create(
            assignment=assignment, key=key,
            defaults={"amount": amount, "reason": reason, "created_by": _acting(user),
                      "unique_request_token": f"ifllm-prolific-bonus-{uuid.uuid4().hex}"},
        )
        if payment.status == Payment.Status.PAID:
            return payment
        if payment.status == Payment.Status.PAYING:
            raise CrowdError(
                f"bonus '{key}' of {assignment}: the pay call for bulk bonus payment {payment.platform_batch_id} "
                f"was sent at {payment.pay_sent_at:%Y-%m-%d %H:%M:%S} UTC and is not confirmed (still in progress, or "
                "its answer was lost). It is never sent twice: check the study's bonuses on Prolific, then confirm "
                "the payment (paid or not paid) in the admin.")
        if payment.amount != amount:
            raise CrowdError(f"bonus '{key}' of this assignment was started with {payment.amount}, not {amount}")
        if not payment.platform_batch_id:
            try:
                bulk = api.bonus_create(assignment.study.prolific_study_id,
                                        [(assignment.platform_worker_id, payment.amount)])
            except prolific_api.ProlificError as exc:
                # Unpaid drafts cost nothing: a retry creates a new one; only the recorded id is paid.
                payment.status = Payment.Status.PENDING if exc.outcome_unknown else Payment.Status.FAILED
                payment.error = str(exc)
                payment.save(update_fields=["status", "error"])
                failure = exc
            else:
                payment.platform_batch_id, payment.batch_created_at = bulk["id"], timezone.now()
        if failure is None:
            # Recorded (and committed with this transaction) before the pay call is sent.
            payment.status, payment.pay_sent_at, payment.error = Payment.Status.PAYING, timezone.now(), ""
            payment.save(update_fields=["platform_batch_id", "batch_created_at", "status", "pay_sent_at", "error"])
    if failure is not None:
        raise failure
    try:
        api.bonus_pay(payment.platform_batch_id)
    except prolific_api.ProlificError as exc:
        if exc.outcome_unknown:
            payment.error = f"{exc} -- may have been paid: check on Prolific, then confirm in the admin."
            payment.save(update_fields=["error"])
        else:  # refused: nothing was paid, the same bulk bonus payment may be paid later
            payment.status, payment.error = Payment.Status.CREATED, str(exc)
            payment.save(update_fields=["status", "error"])
        raise
    payment.status, payment.paid_at, payment.error = Payment.Status.PAID, timezone.now(), ""
    payment.save(update_fields=["status", "paid_at", "error"])
    return payment


def prolific_bonus_confirm(*, payment: Payment, user: Any = None, paid: bool) -> Payment:
    """Settle a row left ``paying`` (answer lost), after staff looked at the study's bonuses on
    Prolific: paid -> ``paid``; not paid -> ``created``, so the next attempt pays it once."""
    _require(user, "crowd.pay_workers")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != Payment.Status.PAYING:
            raise CrowdError(f"{payment} is {payment.get_status_display()}: only a payment whose answer was lost "
                             "needs confirming")
        if paid:
            payment.status, payment.paid_at = Payment.Status.PAID, timezone.now()
        else:
            payment.status = Payment.Status.CREATED
        payment.error = f"confirmed {'paid' if paid else 'not paid'} by {getattr(user, 'username', 'system')}"
        payment.save(update_fields=["status", "paid_at", "error"])
    return payment


# --------------------------------------------------------------------------- the site's side
def site_completion(*, study_id: str, outcome: str) -> dict[str, str] | None:
    """The code (and Prolific's completion URL) a participant of Prolific study ``study_id`` gets
    for ``outcome`` (completed, screened_out, partial), or None when the lab's study has none.
    The site asks this through ``IFLLM_PROLIFIC_COMPLETION`` (collection does not import crowd)."""
    if not study_id:
        return None
    study = Study.objects.filter(platform=Study.Platform.PROLIFIC, prolific_study_id=study_id).first()
    code = (study.prolific_codes().get(outcome) if study is not None else "") or ""
    return {"code": code, "url": prolific.completion_url(code)} if code else None
