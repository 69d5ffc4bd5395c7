"""Admin for jobs: read-only rows, with cancel and re-run actions that call the services.

The actions declare ``permissions=["cancel"]`` / ``["rerun"]``: offered only to users who may run
at least one kind of job. Which kinds they may touch is decided per job by the services (the
kind's declared permission); jobs of other kinds are skipped and reported.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from .downloads import DOWNLOADABLE_KINDS, job_output_folder, zip_response
from .exceptions import JobStateError
from .html import job_anchor, job_error_html, short_time
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
    #: What the job panel (templates/admin/jobs/_job_panel.html) swaps in while the job runs.
    live_fields = "status,message,progress_bar,log_tail_pre,duration,started_at,result,error_pre"
    readonly_fields = fields

    def get_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [f for f in self.fields if f != "output" or (obj is not None and obj.kind in DOWNLOADABLE_KINDS)]

    def get_urls(self) -> list:
        download = path("<int:pk>/download/", self.admin_site.admin_view(self.download_view),
                        name="jobs_job_download")
        cancel = path("<int:pk>/cancel/", self.admin_site.admin_view(self.cancel_view), name="jobs_job_cancel")
        rerun = path("<int:pk>/rerun/", self.admin_site.admin_view(self.rerun_view), name="jobs_job_rerun")
        return [download, cancel, rerun, *super().get_urls()]

    def _back(self, request: HttpRequest, job: Job) -> HttpResponseRedirect:
        """To the page the button was on (a run's page), else the job's own page."""
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = reverse("admin:jobs_job_change", args=[job.pk])
        return HttpResponseRedirect(target)

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The Cancel button of the job panel (job and run pages): POST only, the kind's permission."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = Job.objects.filter(pk=pk).first()
        if job is None:
            raise Http404
        try:
            job_cancel(job=job, user=request.user)
        except JobStateError:
            self.message_user(request, f"Job {job.pk} has already finished ({job.get_status_display()}).",
                              messages.WARNING)
        else:
            self.message_user(request, f"Job {job.pk} cancelled; a running job stops at its next step.")
        return self._back(request, job)

    def rerun_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The Resume/Re-run button: a new job with the same params, the run moved onto it.
        A training job resumes from its newest checkpoint; other kinds start again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = Job.objects.filter(pk=pk).first()
        if job is None:
            raise Http404
        if not job.is_finished:
            self.message_user(request, f"Job {job.pk} is still {job.get_status_display().lower()}.", messages.WARNING)
            return self._back(request, job)
        new = job_rerun(job=job, user=request.user)
        self.message_user(request, format_html("Job {} started again as {}.", job.pk, job_anchor(new)))
        return self._back(request, job)

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
        """The cause in one line; the traceback (kilobytes of frames) behind a toggle."""
        return job_error_html(obj)
