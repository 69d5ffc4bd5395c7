"""Services that create, start and cancel jobs (the only code that writes Job state outside the
runner).

Who may start, cancel or re-run a job is decided here, once, by the permission its kind declares
(``job_task(..., permission=...)``): views and admin actions pass the acting user, and a user
without that permission gets :class:`PermissionDenied` whatever page they came from.
``user=None`` means the system itself (a signal, a command, another job) and is not checked.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from .exceptions import JobStateError, UnknownJobKind
from .models import Job
from .runner import REGISTRY


def _task_for(kind: str) -> Any:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UnknownJobKind(f"no job task is registered as {kind!r}") from None


def job_permission(kind: str) -> str:
    """The permission (``app_label.codename``) needed to start, cancel or re-run ``kind``."""
    return _task_for(kind).job_permission


def job_user_may_run(user: AbstractBaseUser | None, kind: str) -> bool:
    """Whether ``user`` may start, cancel and re-run jobs of ``kind`` (``None``: the system)."""
    return user is None or user.has_perm(job_permission(kind))


def job_kinds_user_may_run(user: AbstractBaseUser | None) -> list[str]:
    """The registered kinds ``user`` may run (what admin actions offer and pages show)."""
    return sorted(kind for kind in REGISTRY if job_user_may_run(user, kind))


def _require(user: AbstractBaseUser | None, kind: str, verb: str) -> None:
    if not job_user_may_run(user, kind):
        name = getattr(user, "username", "") or "anonymous"
        raise PermissionDenied(f"{name} may not {verb} {kind} jobs (needs {job_permission(kind)})")


def job_create(
    *,
    kind: str,
    params: dict[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
    rerun_of: Job | None = None,
) -> Job:
    """Create a PENDING job of a registered kind, on the queue its task is routed to.

    Raises PermissionDenied when ``user`` lacks the kind's permission.
    """
    task = _task_for(kind)
    _require(user, kind, "re-run" if rerun_of is not None else "start")
    return Job.objects.create(
        kind=kind,
        params=params or {},
        queue=task.job_queue,
        created_by=user if user is not None and user.is_authenticated else None,
        rerun_of=rerun_of,
    )


def job_enqueue(*, job: Job) -> Job:
    """Send the job's task to its queue once the current transaction commits.

    After commit, because a worker that receives the message before the row is visible would
    find no job. The Celery task id is chosen here and stored first, so the row always names
    the message that runs it. Without Redis (eager mode) the job runs right there, in-process.
    """
    if job.status != Job.Status.PENDING:
        raise JobStateError(f"job {job.pk} is {job.status}; only PENDING jobs can be enqueued")
    task = _task_for(job.kind)
    job.celery_task_id = str(uuid.uuid4())
    job.save(update_fields=["celery_task_id"])
    task_id, queue, job_pk = job.celery_task_id, job.queue, job.pk
    transaction.on_commit(
        lambda: task.apply_async(kwargs={"job_pk": job_pk}, task_id=task_id, queue=queue)
    )
    return job


def job_start(
    *,
    kind: str,
    params: dict[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
    rerun_of: Job | None = None,
) -> Job:
    """Create and enqueue a job: what views and admin actions call (checks ``user`` may)."""
    with transaction.atomic():
        job = job_create(kind=kind, params=params, user=user, rerun_of=rerun_of)
        job_enqueue(job=job)
    return job


def job_cancel(*, job: Job, user: AbstractBaseUser | None = None) -> Job:
    """Cancel a PENDING or RUNNING job, recording who did.

    A PENDING job will not run (the runner refuses non-PENDING rows). A RUNNING job stops at its
    next ``ctx.progress()`` call; cancellation is cooperative, nothing is killed. Raises
    PermissionDenied when ``user`` lacks the kind's permission.
    """
    _require(user, job.kind, "cancel")
    now = timezone.now()
    acting = user if user is not None and user.is_authenticated else None
    updated = Job.objects.filter(
        pk=job.pk, status__in=[Job.Status.PENDING, Job.Status.RUNNING]
    ).update(status=Job.Status.CANCELLED, finished_at=now, cancelled_by=acting)
    job.refresh_from_db()
    if not updated:
        raise JobStateError(f"job {job.pk} is {job.status}; it cannot be cancelled")
    return job


def job_rerun(*, job: Job, user: AbstractBaseUser | None = None) -> Job:
    """Start a new job with the same kind and params (the old row is kept as history and the new
    one points at it). Raises PermissionDenied when ``user`` lacks the kind's permission.

    Rows that follow their job (a model with ``job_follows_reruns = True`` and a ``job`` foreign
    key, e.g. a training run) are moved to the new job in the same transaction, so a run's page
    never shows the cancelled job beside the re-run's results.
    """
    with transaction.atomic():
        new = job_create(kind=job.kind, params=job.params, user=user, rerun_of=job)
        job_relink(old=job, new=new)
        job_enqueue(job=new)
    return new


def job_relink(*, old: Job, new: Job) -> int:
    """Point every row that follows its job (``job_follows_reruns``) from ``old`` to ``new``.

    Found through the reverse relations of Job, so this app imports none of the apps that own
    the rows. Returns the number of rows moved.
    """
    moved = 0
    for rel in Job._meta.related_objects:
        model = rel.related_model
        if rel.one_to_many and getattr(model, "job_follows_reruns", False) and rel.field.name == "job":
            moved += model._default_manager.filter(job=old).update(job=new)
    return moved
