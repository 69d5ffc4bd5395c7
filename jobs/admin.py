"""Admin for jobs: read-only rows, with cancel and re-run actions that call the services.

The actions declare ``permissions=["cancel"]`` / ``["rerun"]``: offered only to users who may run
at least one kind of job. Which kinds they may touch is decided per job by the services (the
kind's declared permission); jobs of other kinds are skipped and reported.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .downloads import DOWNLOADABLE_KINDS, job_output_folder, zip_response
from .exceptions import JobStateError
from .html import short_time
from .models import Job
from .services import job_cancel, job_kinds_user_may_run, job_rerun


@admin.action(description="Cancel selected jobs", permissions=["cancel"])
def cancel_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    cancelled = skipped = 0
    for job in queryset:
        try:
            job_cancel(job=job, user=request.user)
        except JobStateError:
            skipped += 1
        except PermissionDenied as exc:
            modeladmin.message_user(request, f"Job {job.pk}: {exc}", messages.ERROR)
        else:
            cancelled += 1
    modeladmin.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(
            request, f"Skipped {skipped} job(s) that had already finished.", messages.WARNING
        )


@admin.action(description="Re-run selected jobs", permissions=["rerun"])
def rerun_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    new_jobs = []
    for job in queryset:
        try:
            new_jobs.append(job_rerun(job=job, user=request.user))
        except PermissionDenied as exc:
            modeladmin.message_user(request, f"Job {job.pk}: {exc}", messages.ERROR)
    if new_jobs:
        ids = ", ".join(str(job.pk) for job in new_jobs)
        modeladmin.message_user(request, f"Started {len(new_jobs)} new job(s): {ids}.")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    # Status with progress and short dates: the list fits 1400 px beside both sidebars.
    list_display = ["id", "kind", "status_progress", "created_by", "created", "duration"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["kind", "error"]
    date_hierarchy = "created_at"
    actions = [cancel_jobs, rerun_jobs]
    fields = [
        "kind", "status", "progress_bar", "message", "queue", "celery_task_id", "created_by",
        "rerun_of", "cancelled_by", "created_at", "started_at", "finished_at", "duration", "params",
        "result", "output", "log_tail_pre", "error_pre",
    ]
    readonly_fields = fields

    def get_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [f for f in self.fields if f != "output" or (obj is not None and obj.kind in DOWNLOADABLE_KINDS)]

    def get_urls(self) -> list:
        download = path("<int:pk>/download/", self.admin_site.admin_view(self.download_view),
                        name="jobs_job_download")
        return [download, *super().get_urls()]

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The folder a finished export job wrote, as a zip (404 while it is not downloadable)."""
        job = Job.objects.filter(pk=pk).first()
        if job is None or not request.user.has_perm(DOWNLOADABLE_KINDS.get(job.kind, "-")):
            raise PermissionDenied if job is not None and job.kind in DOWNLOADABLE_KINDS else Http404
        folder = job_output_folder(job)
        if folder is None:
            raise Http404("This job has no downloadable output (yet).")
        return zip_response({folder.name: folder}, f"{folder.name}.zip")

    @admin.display(description="Output")
    def output(self, obj: Job) -> str:
        if obj.kind not in DOWNLOADABLE_KINDS:
            return "–"
        if job_output_folder(obj) is None:
            return "a download link appears here when the job has succeeded"
        url = reverse("admin:jobs_job_download", args=[obj.pk])
        return format_html('<a class="button" href="{}" download>Download (zip)</a> written to {}', url,
                           obj.params.get("path"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are started by services, never typed in

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return bool(job_kinds_user_may_run(request.user))

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return bool(job_kinds_user_may_run(request.user))

    @admin.display(description="Status", ordering="status")
    def status_progress(self, obj: Job) -> str:
        state = obj.get_status_display()
        return f"{state} {obj.progress} %" if obj.status == Job.Status.RUNNING else state

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Job) -> str:
        return short_time(obj.created_at)

    @admin.display(description="Duration")
    def duration(self, obj: Job) -> str:
        return "" if obj.duration is None else str(obj.duration).split(".")[0]

    @admin.display(description="Progress")
    def progress_bar(self, obj: Job) -> str:
        waiting = ""
        if obj.status == Job.Status.PENDING:
            waiting = " waiting for a worker (make run starts one; with Redis: make worker QUEUE=" + obj.queue + ")"
        return format_html(
            '<progress max="100" value="{}" style="width:20em"></progress> <span class="job-pct">{} %</span>{}',
            obj.progress, obj.progress, waiting,
        )

    @admin.display(description="Log (last lines)")
    def log_tail_pre(self, obj: Job) -> str:
        return format_html(
            "<pre style='white-space: pre-wrap; max-height: 28em; overflow-y: auto'>{}</pre>", obj.log_tail
        )

    @admin.display(description="Error")
    def error_pre(self, obj: Job) -> str:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.error)
