"""HTML bits other apps' admin pages use to point at a job."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .models import Job


def job_anchor(job: Job) -> SafeString:
    """``job 12: RUNNING 40 %`` linking to the job's page (which follows it live)."""
    url = reverse("admin:jobs_job_change", args=[job.pk])
    state = job.get_status_display()
    if job.status == Job.Status.RUNNING:
        state += f" {job.progress} %"
    return format_html('<a href="{}">job {}: {}</a>', url, job.pk, state)


def short_time(value) -> str:  # datetime or None
    """``2026-12-03 08:54`` in the site's time zone: lists stay narrow enough for 1400 px."""
    from django.utils import timezone

    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "–"


def job_error_html(job: Job) -> SafeString | str:
    """A failed job's cause in one line, its traceback behind a toggle (``–`` without error)."""
    if not job.error:
        return "–"
    return format_html(
        '<p class="errornote job-cause">{}</p><details class="job-traceback"><summary>Traceback ({} lines)'
        "</summary><pre style='white-space: pre-wrap'>{}</pre></details>",
        job.cause, len(job.error.splitlines()), job.error,
    )
