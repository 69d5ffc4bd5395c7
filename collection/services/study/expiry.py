"""Study flow: open tasks whose worker left are abandoned after a staff-set time.

Without this, a worker who closes the tab keeps an open task for ever, and open tasks count
against the mode and model quotas (``assignment._live_tasks``): every departure would shrink the
study. The sweep runs where the quotas are balanced (``tasks_create_for_topics``, under the lock
of the settings row) and from ``manage.py expire_open_tasks`` (cron, or by hand), so quotas are
balanced on current numbers without a scheduler. It is idempotent: a task is abandoned once,
under its row lock, only if it is still open and still idle.

Activity is read from what the task already stores, so no hot path writes anything extra: the
last page of the task the worker opened (``Task.last_seen_at``), the start of the task and of the
chat, calibration attempts, questions asked/answered/rated, and delivered gaze/mouse batches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField, Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from ...models import CalibrationAttempt, Task, TrajectoryChunk, Turn
from .base import OPEN_STATUSES
from .workers import study_settings_get

_NEVER = Value(datetime(2000, 1, 1, tzinfo=UTC), output_field=DateTimeField())


def _latest(model, field: str):
    """The task's latest ``field`` among ``model`` rows (a correlated subquery; never NULL)."""
    rows = model.objects.filter(task=OuterRef("pk")).order_by().values("task").annotate(m=Max(field)).values("m")
    return Coalesce(Subquery(rows, output_field=DateTimeField()), _NEVER)


def task_last_activity():
    """An expression: the latest sign of life of a task (SQLite's GREATEST is NULL if any
    argument is, hence every term is coalesced)."""
    return Greatest(
        Coalesce("last_seen_at", _NEVER), Coalesce("started_at", _NEVER), Coalesce("chat_started_at", _NEVER),
        _latest(CalibrationAttempt, "created_at"),
        _latest(Turn, "asked_at"), _latest(Turn, "answered_at"), _latest(Turn, "rated_at"),
        _latest(TrajectoryChunk, "received_at"),
    )


def tasks_expire_idle(*, now: datetime | None = None) -> list[int]:
    """Abandon the site's open tasks idle for longer than ``open_task_expire_s``; their ids.

    Each abandoned task keeps its data and records why (``extra["expired"]``); its holder is
    cleared. A task that shows activity between the scan and its lock is left open.
    """
    expire_s = study_settings_get().open_task_expire_s
    if not expire_s:
        return []
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=expire_s)
    # Only a task started before the cutoff can be idle since then: the scan stays small.
    idle = (
        Task.objects.filter(status__in=OPEN_STATUSES, release_task_id__isnull=True, started_at__lt=cutoff)
        .annotate(last=task_last_activity())
        .filter(last__lt=cutoff)
    )
    expired = []
    for pk in idle.values_list("pk", flat=True):
        with transaction.atomic():
            task = (
                Task.objects.select_for_update().filter(pk=pk, status__in=OPEN_STATUSES)
                .annotate(last=task_last_activity()).filter(last__lt=cutoff).first()
            )
            if task is None:
                continue
            task.extra = {**task.extra, "expired": {
                "at": now.isoformat(), "status": task.status, "last_activity": task.last.isoformat(),
                "after_s": expire_s,
            }}
            task.status = Task.Status.ABANDONED
            task.holder = ""
            task.save(update_fields=["status", "holder", "extra"])
            expired.append(pk)
    return expired


def task_seen(task: Task, *, now: datetime | None = None) -> None:
    """Record that the worker opened a page of this open task (a sign of activity for expiry)."""
    now = now or timezone.now()
    Task.objects.filter(pk=task.pk).update(last_seen_at=now)
    task.last_seen_at = now
