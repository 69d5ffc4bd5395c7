"""Services that create, start and cancel jobs (the only code that writes Job state outside the
runner)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
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


def job_create(
    *, kind: str, params: dict[str, Any] | None = None, user: AbstractBaseUser | None = None
) -> Job:
    """Create a PENDING job of a registered kind, on the queue its task is routed to."""
    task = _task_for(kind)
    return Job.objects.create(
        kind=kind,
        params=params or {},
        queue=task.job_queue,
        created_by=user if user is not None and user.is_authenticated else None,
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
    *, kind: str, params: dict[str, Any] | None = None, user: AbstractBaseUser | None = None
) -> Job:
    """Create and enqueue a job: what views and admin actions call."""
    with transaction.atomic():
        job = job_create(kind=kind, params=params, user=user)
        job_enqueue(job=job)
    return job


def job_cancel(*, job: Job) -> Job:
    """Cancel a PENDING or RUNNING job.

    A PENDING job will not run (the runner refuses non-PENDING rows). A RUNNING job stops at its
    next ``ctx.progress()`` call; cancellation is cooperative, nothing is killed.
    """
    now = timezone.now()
    updated = Job.objects.filter(
        pk=job.pk, status__in=[Job.Status.PENDING, Job.Status.RUNNING]
    ).update(status=Job.Status.CANCELLED, finished_at=now)
    job.refresh_from_db()
    if not updated:
        raise JobStateError(f"job {job.pk} is {job.status}; it cannot be cancelled")
    return job


def job_rerun(*, job: Job, user: AbstractBaseUser | None = None) -> Job:
    """Start a new job with the same kind and params (the old row is kept as history)."""
    return job_start(kind=job.kind, params=job.params, user=user)
