"""The house decorator for background jobs: ``@job_task``.

A job function is plain code that receives a :class:`JobContext` and the job's params::

    @job_task("analysis.extract_features")
    def extract_features(ctx: JobContext, *, dataset_id: int) -> dict:
        ctx.progress(10, "loading")
        ...
        return {"rows": 1234}

``job_task`` wraps it in a Celery task taking only ``job_pk`` and owns the Job's state machine::

    PENDING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED

The task is ``acks_late`` with ``reject_on_worker_lost``: a message is acknowledged only after
the job ran, so a crashed worker's job is redelivered. That is safe only because the runner is
idempotent: it locks the row and refuses to run unless the job is PENDING, so a redelivered
message for a RUNNING or finished job does nothing.

Exceptions from the job function never escape the task: they are stored (with the traceback) on
the Job, which is where users look, and the worker stays healthy.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .exceptions import JobCancelled
from .models import Job

logger = logging.getLogger(__name__)

JobFunction = Callable[..., dict | None]

#: kind (== Celery task name) -> Celery task; filled by :func:`job_task` at import time.
REGISTRY: dict[str, Any] = {}
#: kind -> permission needed to download the folder its job wrote (``job_task(download_permission=)``).
DOWNLOADABLE_KINDS: dict[str, str] = {}
#: Permission of a kind that declares none: researchers have it, viewers do not (access.roles).
DEFAULT_JOB_PERMISSION = "jobs.add_job"


def default_queue_for(name: str) -> str:
    """The queue ``CELERY_TASK_ROUTES`` sends task ``name`` to (globs), else the default queue."""
    for pattern, route in getattr(settings, "CELERY_TASK_ROUTES", {}).items():
        if fnmatch.fnmatchcase(name, pattern) and "queue" in route:
            return route["queue"]
    return getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "default")


class JobContext:
    """What a running job may do to its own row: report progress and log lines.

    Every call writes to the database at once, so pages polling the Job see it; a job that
    reports thousands of times per second should report less often.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.params: dict[str, Any] = dict(job.params or {})
        self._log_lines: deque[str] = deque(
            job.log_tail.splitlines() if job.log_tail else (),
            maxlen=settings.IFLLM_JOB_LOG_LINES,
        )

    def progress(self, pct: float, message: str = "") -> None:
        """Store progress (clamped to 0..100) and the current step.

        Raises :class:`JobCancelled` if the job was cancelled meanwhile: this is the point where
        a long job notices a cancellation, so call it regularly.
        """
        pct_int = max(0, min(100, int(pct)))
        message = message[: Job._meta.get_field("message").max_length]
        updated = Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING).update(
            progress=pct_int, message=message
        )
        if not updated:
            raise JobCancelled(f"job {self.job.pk} is no longer running")
        self.job.progress, self.job.message = pct_int, message

    def log(self, line: str) -> None:
        """Append lines to the job's log tail (only the last ``IFLLM_JOB_LOG_LINES`` are kept)."""
        self._log_lines.extend(str(line).splitlines() or [""])
        self.job.log_tail = "\n".join(self._log_lines)
        Job.objects.filter(pk=self.job.pk).update(log_tail=self.job.log_tail)
        logger.info("job %s: %s", self.job.pk, line)


def _claim(job_pk: int, kind: str) -> Job | None:
    """Lock the row and move it PENDING -> RUNNING; None if this delivery must not run it."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_pk).first()
        if job is None:
            logger.warning("job %s does not exist; message dropped", job_pk)
            return None
        if job.kind != kind:
            # A stale message from another database (or a bug) must not run the wrong code.
            logger.error("job %s is of kind %r, not %r; message dropped", job_pk, job.kind, kind)
            return None
        if job.status != Job.Status.PENDING:
            logger.info("job %s is %s, not PENDING; redelivery ignored", job_pk, job.status)
            return None
        job.status = Job.Status.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
    return job


def _finish(job: Job, **fields: Any) -> None:
    """Write the final state, unless the job left RUNNING meanwhile (it was cancelled)."""
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        finished_at=timezone.now(), **fields
    )


def run_job(fn: JobFunction, kind: str, job_pk: int) -> str | None:
    """Run ``fn`` for job ``job_pk``; return the final status, or None if it did not run."""
    job = _claim(job_pk, kind)
    if job is None:
        return None
    ctx = JobContext(job)
    try:
        result = fn(ctx, **ctx.params)
        json.dumps(result)  # fail here, as a job error, rather than when saving
    except JobCancelled:
        # Usually job_cancel already set CANCELLED; this covers a job that cancels itself.
        logger.info("job %s cancelled", job_pk)
        _finish(job, status=Job.Status.CANCELLED)
    except Exception:
        logger.exception("job %s (%s) failed", job_pk, kind)
        _finish(job, status=Job.Status.FAILED, error=traceback.format_exc())
    else:
        _finish(job, status=Job.Status.SUCCEEDED, result=result, progress=100)
    return Job.objects.values_list("status", flat=True).get(pk=job_pk)


def _origin(fn: JobFunction) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def job_task(
    name: str, *, queue: str | None = None, permission: str = DEFAULT_JOB_PERMISSION,
    download_permission: str | None = None,
) -> Callable[[JobFunction], Any]:
    """Register ``fn(ctx, **params) -> dict | None`` as the job kind ``name``.

    ``name`` is both the Celery task name and ``Job.kind``. ``queue`` defaults to the queue that
    ``CELERY_TASK_ROUTES`` gives the name (``analysis.*`` -> cpu, ``alignment.*`` -> gpu, else
    default). ``permission`` (``"app_label.codename"``) is what a user needs to start, cancel
    or re-run a job of this kind (checked by ``jobs.services``); declared here, next to the
    code, so a new kind cannot be started by someone who may not. ``download_permission``
    makes the folder a finished job wrote (``params["path"]``) downloadable by users holding it
    (``jobs.downloads``). Returns the Celery task; the plain function stays available as
    ``task.job_fn``.
    """

    def decorator(fn: JobFunction) -> Any:
        existing = REGISTRY.get(name)
        if existing is not None and _origin(existing.job_fn) != _origin(fn):
            raise ValueError(f"job kind {name!r} is already registered by {_origin(existing.job_fn)}")

        # Not functools.wraps: Celery checks call arguments against the signature it finds, and
        # this task takes job_pk, not fn's parameters.
        def task_body(*, job_pk: int) -> str | None:
            return run_job(fn, name, job_pk)

        task_body.__doc__ = fn.__doc__

        # For idempotent tasks only: run_job's PENDING guard is what makes acks_late safe.
        task = shared_task(
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,  # the Job row is the result
        )(task_body)
        task.job_fn = fn
        task.job_queue = queue or default_queue_for(name)
        task.job_permission = permission
        if download_permission:
            DOWNLOADABLE_KINDS[name] = download_permission
        REGISTRY[name] = task
        return task

    return decorator
