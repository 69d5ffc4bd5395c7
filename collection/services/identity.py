"""Who may work on which task: invitations, one assignment per task, one browser session per task.

The model of identity:

* A worker id from a crowd platform (``workerId``, ``PROLIFIC_PID``) is only a claim; what the
  platform vouches for is the *assignment* (MTurk ``assignmentId``, Prolific ``SESSION_ID``).
  An open task belongs to the assignment that started it (``Task.assignment_id``): a session
  that entered with another assignment never sees it, starts its own task, and the attempt is
  recorded (:class:`IdentityEvent`, kind ``other_assignment``).
* Lab participants have no platform: staff create them and hand out one-time invitation links
  (:class:`Invitation`). Typed ids are only accepted when staff switch ``lab_typed_ids`` on.
* An open task is worked on by one browser session at a time (``Task.holder``). A second session
  is shown a page that offers to continue there; continuing is an explicit POST
  (:func:`task_take_over`), recorded, after which the first session gets a "continued in another
  window" page and its API calls are refused.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import IdentityEvent, Invitation, Platform, Task, Worker
from .study import OPEN_STATUSES, Entry, StudyError, worker_get_or_create
from .study.workers import demographics_clean

INVITATION_TOKEN_BYTES = 24


def event_record(
    *,
    kind: str,
    worker: Worker | None = None,
    task: Task | None = None,
    entry: Entry | None = None,
    detail: dict[str, Any] | None = None,
) -> IdentityEvent:
    """Record an identity event; a repeat of the same (kind, worker, task, assignment) is counted."""
    keys = {
        "kind": kind,
        "worker": worker,
        "task": task,
        "platform": entry.platform if entry else (worker.platform if worker else ""),
        "assignment_id": entry.assignment_id if entry else "",
    }
    with transaction.atomic():
        row = IdentityEvent.objects.select_for_update().filter(**keys).first()
        if row is None:
            return IdentityEvent.objects.create(
                **keys, hit_id=entry.hit_id if entry else "", detail=detail or {}
            )
        IdentityEvent.objects.filter(pk=row.pk).update(count=F("count") + 1, last_at=timezone.now())
    row.refresh_from_db()
    return row


# --- invitations (lab) --------------------------------------------------------------------------


def lab_participant_create(*, participant_id: str) -> Worker:
    """A lab participant under a staff-chosen id (the id is private, like a platform id)."""
    return worker_get_or_create(platform=Platform.LAB, platform_worker_id=participant_id)


def invitation_create(
    *, worker: Worker, user: Any = None, note: str = "", valid_days: int | None = None
) -> Invitation:
    """A new one-time link for a lab participant (earlier unused links stay valid)."""
    if worker.platform != Platform.LAB:
        raise StudyError(_("Invitations are for lab participants only."), field="worker")
    return Invitation.objects.create(
        worker=worker,
        token=secrets.token_urlsafe(INVITATION_TOKEN_BYTES),
        note=note,
        created_by=user if getattr(user, "pk", None) else None,
        expires_at=timezone.now() + timedelta(days=valid_days) if valid_days else None,
    )


def invitation_redeem(*, token: str) -> Worker:
    """Use an invitation once: returns its worker, or raises StudyError (unknown, used, expired).

    The use is a conditional UPDATE, so two browsers opening the same link at once cannot both
    get in.
    """
    invitation = Invitation.objects.select_related("worker").filter(token=token).first()
    if invitation is None:
        raise StudyError(_("This invitation link is not valid. Please ask the study staff for a new one."),
                         code="unknown")
    now = timezone.now()
    expired = invitation.expires_at is not None and invitation.expires_at <= now
    used = not expired and Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(used_at=now) == 0
    if expired or used:
        event_record(kind=IdentityEvent.Kind.INVITATION_REUSED, worker=invitation.worker,
                     detail={"invitation": invitation.pk, "reason": "expired" if expired else "used"})
        raise StudyError(
            _("This invitation link has already been used or has expired. Please ask the study staff for a new one."),
            code="used",
        )
    worker = invitation.worker
    if worker.blocked:
        raise StudyError(_("This worker ID cannot take part in the study."), code="blocked")
    event_record(kind=IdentityEvent.Kind.INVITATION_USED, worker=worker, detail={"invitation": invitation.pk})
    return worker


# --- platform entries: who vouches for a worker id --------------------------------------------------

#: An assignment / session id as the platforms make them (MTurk: 30 letters and digits; Prolific:
#: 24 hex digits); anything else (empty, spaces, punctuation, over 64) is refused at the door.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
OWN, VERIFIED, UNVERIFIED = "own", "verified", "unverified"


def _verifier(entry: Entry, worker_id: str) -> bool | None:
    from django.utils.module_loading import import_string

    check = import_string(settings.IFLLM_ENTRY_VERIFIER) if settings.IFLLM_ENTRY_VERIFIER else None
    if check is None:
        return None
    return check(platform=entry.platform, worker_id=worker_id, study_id=entry.study_id,
                 session_id=entry.session_id or entry.assignment_id)


def entry_admit(*, platform_worker_id: str, entry: Entry) -> tuple[Worker, Entry]:
    """The worker of a platform entry, and the entry marked ``unverified`` where it must be.

    A worker id in a URL is only a claim. The first assignment that brings a new worker id is
    theirs (there is nothing of theirs to take). A known worker id with a *new* assignment is
    asked to the platform (Prolific's API, when a token is configured): vouched for, it is the
    worker's; refused, the entry is refused. Where the platform cannot tell (MTurk at entry,
    Prolific without a token) the entry is *unverified*: it asks consent and demographics again
    (kept on its own tasks, never on the worker), its tasks take none of the worker's topics,
    and it may take at most one entry's worth of topics; a sync that finds the assignment
    submitted by this worker verifies it (:func:`assignment_verify`). At most
    ``IFLLM_NEW_ASSIGNMENTS_PER_HOUR`` unverified assignments per worker id and hour.
    Every step is an :class:`IdentityEvent`.
    """
    if not entry.assignment_id or not WELL_FORMED_ID.fullmatch(entry.assignment_id):
        raise StudyError(_("This link has no valid assignment id."), field="assignmentId", code="malformed")
    known = Worker.objects.filter(platform=entry.platform, platform_worker_id=platform_worker_id.strip()).exists()
    worker = worker_get_or_create(platform=entry.platform, platform_worker_id=platform_worker_id)
    refused: _Refused | None = None
    with transaction.atomic():
        worker = Worker.objects.select_for_update().get(pk=worker.pk)
        entries = dict(worker.extra.get("entries") or {})
        state = (entries.get(entry.assignment_id) or {}).get("state")
        try:
            if state is None:
                state = _new_assignment_state(worker=worker, entry=entry, entries=entries,
                                              worker_id=platform_worker_id.strip()) if known else OWN
        except _Refused as exc:
            refused = exc
        else:
            if (entries.get(entry.assignment_id) or {}).get("state") != state:
                # ``study``: the platform study (MTurk HIT / Prolific STUDY_ID) the entry came for,
                # so the study monitor counts people who entered and left before choosing a topic.
                now = timezone.now().isoformat()
                first = entries.get(entry.assignment_id) or {}
                entries[entry.assignment_id] = {"state": state, "at": now, "study": entry.hit_id,
                                                "entered": first.get("entered", now)}
                worker.extra = {**worker.extra, "entries": entries}
                worker.save(update_fields=["extra"])
    if refused is not None:  # recorded outside the transaction, which a raise would roll back
        event_record(kind=IdentityEvent.Kind.ASSIGNMENT_REFUSED, worker=worker, entry=entry, detail=refused.detail)
        raise StudyError(refused.message, code=refused.code)
    return worker, replace(entry, unverified=state == UNVERIFIED)


class _Refused(Exception):
    def __init__(self, message: str, *, code: str, detail: dict) -> None:
        super().__init__(message)
        self.message, self.code, self.detail = message, code, detail


def _new_assignment_state(*, worker: Worker, entry: Entry, entries: dict, worker_id: str) -> str:
    verdict = _verifier(entry, worker_id)
    if verdict is True:
        event_record(kind=IdentityEvent.Kind.ASSIGNMENT_VERIFIED, worker=worker, entry=entry,
                     detail={"by": "platform API at entry"})
        return VERIFIED
    if verdict is False:
        raise _Refused(_("The platform does not confirm this session for this participant ID."),
                       code="not_verified",
                       detail={"reason": "the platform does not know this session for this participant"})
    hour_ago = timezone.now() - timedelta(hours=1)
    recent = IdentityEvent.objects.filter(kind=IdentityEvent.Kind.NEW_ASSIGNMENT, worker=worker,
                                          created_at__gte=hour_ago).count()
    if recent >= settings.IFLLM_NEW_ASSIGNMENTS_PER_HOUR:
        raise _Refused(_("Too many new assignments for this worker ID in the last hour. Please try later."),
                       code="rate", detail={"reason": "too many new assignments for this worker id",
                                            "last_hour": recent})
    event_record(kind=IdentityEvent.Kind.NEW_ASSIGNMENT, worker=worker, entry=entry,
                 detail={"known_assignments": len(entries)})
    return UNVERIFIED


@transaction.atomic
def assignment_verify(*, worker: Worker, assignment_id: str, by: str) -> int:
    """The platform says this worker submitted this assignment: its tasks become the worker's
    (they count against the worker's topics), and the profile given in it fills a worker who has
    none. Returns the number of tasks changed."""
    worker = Worker.objects.select_for_update().get(pk=worker.pk)
    entries = dict(worker.extra.get("entries") or {})
    if (entries.get(assignment_id) or {}).get("state") != UNVERIFIED:
        return 0
    entries[assignment_id] = {**entries[assignment_id], "state": VERIFIED, "at": timezone.now().isoformat()}
    worker.extra = {**worker.extra, "entries": entries}
    tasks = list(Task.objects.select_for_update().filter(worker=worker, assignment_id=assignment_id,
                                                         extra__has_key="unverified"))
    for task in tasks:
        profile = task.extra.get("entry_profile") or {}
        if profile.get("consent") and worker.consent is not True:
            worker.consent, worker.consented_at = True, timezone.now()
        if "age" in profile and worker.age is None:
            for name, value in demographics_clean(**{k: profile[k] for k in (
                    "age", "location", "education", "race", "gender")}).items():
                setattr(worker, name, value)
        task.extra = {k: v for k, v in task.extra.items() if k != "unverified"}
        task.save(update_fields=["extra"])
    worker.save()
    event_record(kind=IdentityEvent.Kind.ASSIGNMENT_VERIFIED, worker=worker,
                 entry=Entry(platform=worker.platform, assignment_id=assignment_id), detail={"by": by})
    return len(tasks)


# --- assignments and browser sessions -------------------------------------------------------------


def entry_check(*, worker: Worker, entry: Entry) -> list[Task]:
    """On a platform entry: record every open task of this worker that belongs to another
    assignment (the session will not see them). Returns those tasks."""
    if not entry.assignment_id:
        return []
    others = list(
        Task.objects.filter(worker=worker, status__in=OPEN_STATUSES, release_task_id__isnull=True)
        .exclude(assignment_id=entry.assignment_id)
    )
    for task in others:
        event_record(
            kind=IdentityEvent.Kind.OTHER_ASSIGNMENT, worker=worker, task=task, entry=entry,
            detail={"task_assignment_id": task.assignment_id, "task_hit_id": task.hit_id},
        )
    return others


def task_hold(*, task: Task, holder: str) -> bool:
    """True when this browser session holds the open task (claiming it when nobody does)."""
    if task.holder == holder:
        return True
    if not task.holder and Task.objects.filter(pk=task.pk, holder="").update(holder=holder):
        task.holder = holder
        return True
    return False


@transaction.atomic
def task_take_over(*, task: Task, holder: str, entry: Entry | None = None) -> Task:
    """Move an open task to this browser session, explicitly; the previous one loses it."""
    task = Task.objects.select_for_update().get(pk=task.pk)
    if task.status not in OPEN_STATUSES:
        raise StudyError(_("This task is not open any more."), code="state")
    if task.holder != holder:
        event_record(kind=IdentityEvent.Kind.TAKEOVER, worker=task.worker, task=task, entry=entry,
                     detail={"from": task.holder[:8], "to": holder[:8]})
        task.holder = holder
        task.save(update_fields=["holder"])
    return task
