"""The Job model: one row per background run, the single source of truth for its state.

Progress, log and errors are stored here rather than in Celery's result backend because they
must outlive the broker, be visible in the admin, and be polled by pages (grand-challenge style).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Job(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=200, db_index=True, help_text="Registered task name.")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0 to 100.")
    message = models.CharField(max_length=255, blank=True, help_text="Current step.")
    log_tail = models.TextField(blank=True, help_text="Last lines of the job's log.")
    queue = models.CharField(max_length=50, default="default")
    celery_task_id = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rerun_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reruns",
        help_text="The job this one repeats (same kind and params).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Traceback of the failure.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="jobs_job_progress_lte_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def cause(self) -> str:
        """The failure in one line: the traceback's last line (``ValueError: judge ... unreachable``).

        A traceback puts the cause last, under kilobytes of frames; pages show this line and keep
        the traceback behind a toggle.
        """
        lines = [line.strip() for line in (self.error or "").splitlines() if line.strip()]
        return lines[-1][:500] if lines else ""

    @property
    def duration(self) -> timedelta | None:
        """Run time, or time so far while running; None before the job started."""
        if self.started_at is None:
            return None
        if self.finished_at is None:
            return timezone.now() - self.started_at
        return self.finished_at - self.started_at
