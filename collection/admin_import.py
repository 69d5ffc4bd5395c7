"""Admin of import runs, with *Import a release*: a server path or an uploaded archive, run as a job.

Imported by ``collection/admin.py``. The page polls ``/api/jobs/<pk>/`` for the job's progress;
the job itself is ``collection.import_release`` (``collection/tasks.py``).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from jobs.models import Job

from .models import ImportRun
from .services.release_upload import ARCHIVE_SUFFIXES, IMPORT_JOB, release_import_start

IMPORT_PERMISSION = "collection.add_importrun"


class ReleaseImportForm(forms.Form):
    """Exactly one of a server path and an uploaded archive (checked again by the service)."""

    path = forms.CharField(
        required=False,
        max_length=500,
        label=_("Path on the server"),
        help_text=_("A release folder (with query_logs_table.csv) or an archive of one, e.g. /data/ifllm-dev.tar.xz."),
        widget=forms.TextInput(attrs={"size": 70}),
    )
    archive = forms.FileField(
        required=False,
        label=_("or upload an archive"),
        help_text=_("A .tar.xz, .tar.gz, .tar or .zip of a release folder."),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(ARCHIVE_SUFFIXES)}),
    )

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("path", "").strip()) == bool(data.get("archive")):
            raise ValidationError(_("Give either a path on the server or an archive to upload, not both."))
        return data


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["id", "path", "started_at", "finished_at", "created_by"]
    fields = ["path", "started_at", "finished_at", "created_by", "summary", "problems"]
    readonly_fields = fields
    change_list_template = "admin/collection/importrun/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows are written by imports; "Import a release" starts one

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="collection_importrun_import"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra = {"can_import": request.user.has_perm(IMPORT_PERMISSION), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied("importing a release needs the researcher role")
        form = ReleaseImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = release_import_start(
                    path=form.cleaned_data["path"].strip(), upload=form.cleaned_data["archive"], user=request.user
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Import of {job.params['label']} started as job {job.pk}.")
                return HttpResponseRedirect(f"{reverse('admin:collection_importrun_import')}?job={job.pk}")
        job_pk = request.GET.get("job", "")
        job = (Job.objects.filter(pk=int(job_pk), kind=IMPORT_JOB).first()
               if job_pk.isdecimal() and len(job_pk) < 10 else None)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a release"),
            "opts": self.model._meta,
            "form": form,
            "job": job,
            "recent": Job.objects.filter(kind=IMPORT_JOB).order_by("-pk")[:5],
            "max_upload_mb": f"{settings.IFLLM_IMPORT_MAX_UPLOAD_MB:g}",
        }
        return TemplateResponse(request, "admin/collection/importrun/import.html", context)
