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

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import IdentityEvent, Invitation, Platform, Task, Worker
from .study import OPEN_STATUSES, Entry, StudyError, worker_get_or_create

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
