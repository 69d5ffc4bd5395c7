"""Staff admin of studies, HITs, assignments, payments, the audit log and task QC.

Actions are plain functions that call a service and report with ``message_user``. Those that
spend money or change what workers see declare ``permissions=["pay"]``, which only researchers
hold (``crowd.pay_workers``); the services check it again. Actions that need input (rejection
feedback, bonus amount, notification text) show an intermediate form first, as Django's own
``delete_selected`` does.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from jobs.html import job_anchor
from jobs.services import job_start

from . import services
from .models import HIT, Assignment, AuditLog, Payment, Study, TaskQC
from .mturk import MTurkError
from .privacy import PrivateFieldsAdmin, json_block, mask_text, redact, worker_ids
from .qc import RULES


class _Roles:
    """Permission hooks named by the ``permissions=[...]`` of the actions."""

    def has_pay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.pay_workers")

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.review_task")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.export_dataset")


def _run(modeladmin: admin.ModelAdmin, request: HttpRequest, label: str, fn, items) -> None:
    """Apply ``fn`` to each item; report successes and each failure with its reason."""
    done = 0
    for item in items:
        try:
            fn(item)
        except (MTurkError, services.CrowdError, ValidationError, PermissionDenied) as exc:
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            modeladmin.message_user(request, f"{item}: {text}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, f"{label}: {done} done.", messages.SUCCESS)


def _form_page(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, form: forms.Form, action: str, title: str
) -> TemplateResponse:
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "crowd/admin/action_form.html", context)


# --------------------------------------------------------------------------- studies, HITs
@admin.action(description=_("Create one HIT for each selected study"), permissions=["pay"])
def create_hits(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _run(modeladmin, request, "HITs created", lambda s: services.hit_create(study=s, user=request.user), queryset)


@admin.action(description=_("Sync assignments from MTurk (background job)"), permissions=["change"])
def sync_assignments(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    hits = queryset if queryset.model is HIT else HIT.objects.filter(study__in=queryset)
    ids = list(hits.exclude(hit_id=None).values_list("pk", flat=True))
    job = job_start(kind="crowd.sync_assignments", params={"hit_ids": ids}, user=request.user)
    modeladmin.message_user(request, f"Syncing {len(ids)} HIT(s) in job {job.pk}.")


@admin.register(Study)
class StudyAdmin(_Roles, admin.ModelAdmin):
    list_display = ["name", "platform", "environment", "reward", "max_assignments", "active", "created_at"]
    list_filter = ["platform", "environment", "active"]
    search_fields = ["name", "title", "prolific_study_id"]
    readonly_fields = ["retake_qualification_id", "created_at"]
    actions = [create_hits, sync_assignments]
    fieldsets = [
        (None, {"fields": ["name", "platform", "environment", "active"]}),
        (_("What workers see"), {"fields": ["title", "description", "keywords", "external_url", "frame_height"]}),
        (
            _("Payment and timing"),
            {"fields": ["reward", "max_assignments", "assignment_duration_s", "lifetime_s", "auto_approval_delay_s"]},
        ),
        (
            _("MTurk qualifications"),
            {
                "fields": [
                    "require_masters",
                    "min_percent_approved",
                    "min_hits_approved",
                    "locales",
                    "block_retakes",
                    "retake_qualification_id",
                ]
            },
        ),
        (_("Prolific"), {"fields": ["prolific_study_id", "prolific_completion_codes"]}),
        (_("Quality-control thresholds (empty = not applied)"), {"fields": [r.name for r in RULES]}),
    ]


@admin.register(HIT)
class HITAdmin(PrivateFieldsAdmin, _Roles, admin.ModelAdmin):
    private_fields = ("reward",)
    list_display = ["__str__", "study", "environment", "status", "max_assignments", "reward", "created_at", "synced_at"]
    list_filter = ["study", "environment", "status"]
    search_fields = ["hit_id", "hit_type_id"]
    readonly_fields = [f.name for f in HIT._meta.fields]
    actions = [sync_assignments]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # HITs are created by the study action, which calls MTurk


# --------------------------------------------------------------------------- assignments
class RejectForm(forms.Form):
    feedback = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text=_("Required: the worker reads this. Say which rule the submission broke."),
    )


class BonusForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=6, decimal_places=2)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))
    key = forms.SlugField(initial="bonus", help_text=_("Purpose; one payment per assignment and purpose."))


class NotifyForm(forms.Form):
    subject = forms.CharField(max_length=200)
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 80}), max_length=4096)


class BlockForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))


@admin.action(description=_("Approve selected assignments"), permissions=["pay"])
def approve_assignments(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _run(
        modeladmin,
        request,
        "Approved",
        lambda a: services.assignment_approve(assignment=a, user=request.user),
        queryset.select_related("study"),
    )


@admin.action(description=_("Reject selected assignments (asks for feedback)…"), permissions=["pay"])
def reject_assignments(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = RejectForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        feedback = form.cleaned_data["feedback"]
        _run(
            modeladmin,
            request,
            "Rejected",
            lambda a: services.assignment_reject(assignment=a, user=request.user, feedback=feedback),
            queryset.select_related("study"),
        )
        return None
    return _form_page(modeladmin, request, queryset, form, "reject_assignments", "Reject assignments")


@admin.action(description=_("Pay a bonus to selected assignments…"), permissions=["pay"])
def bonus_assignments(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = BonusForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        data = form.cleaned_data
        _run(
            modeladmin,
            request,
            "Bonus paid",
            lambda a: services.bonus_pay(
                assignment=a, user=request.user, amount=data["amount"], reason=data["reason"], key=data["key"]
            ),
            queryset.select_related("study"),
        )
        return None
    return _form_page(modeladmin, request, queryset, form, "bonus_assignments", "Pay a bonus")


@admin.action(description=_("Block the workers of selected assignments…"), permissions=["pay"])
def block_workers(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = BlockForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        reason = form.cleaned_data["reason"]
        with_worker = [a for a in queryset.select_related("study", "worker") if a.worker is not None]
        _run(
            modeladmin,
            request,
            "Blocked",
            lambda a: services.worker_block(worker=a.worker, user=request.user, reason=reason, study=a.study),
            with_worker,
        )
        return None
    return _form_page(modeladmin, request, queryset, form, "block_workers", "Block workers")


@admin.action(description=_("Notify the workers of selected assignments…"), permissions=["pay"])
def notify_workers(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    form = NotifyForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        data = form.cleaned_data
        by_study: dict = {}
        for a in queryset.filter(platform=Study.Platform.MTURK).select_related("study"):
            by_study.setdefault(a.study, []).append(a.platform_worker_id)
        _run(
            modeladmin,
            request,
            "Notified",
            lambda item: services.workers_notify(
                study=item[0], worker_ids=item[1], subject=data["subject"], message=data["message"], user=request.user
            ),
            list(by_study.items()),
        )
        return None
    return _form_page(modeladmin, request, queryset, form, "notify_workers", "Notify workers")


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ["key", "amount", "reason", "status", "paid_at", "error"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(PrivateFieldsAdmin, _Roles, admin.ModelAdmin):
    private_fields = ("platform_worker_id",)
    masked_fields = {"answer": "answer_shown"}

    list_display = [
        "assignment_id", "study", "platform", "status", "flagged", "flag_list", "task_link",
        "completion_code", "submitted_at",
    ]
    list_filter = ["flagged", "status", "platform", "study", "hit__environment"]
    search_fields = ["assignment_id", "platform_worker_id", "completion_code"]
    list_select_related = ["study", "task"]
    actions = [approve_assignments, reject_assignments, bonus_assignments, block_workers, notify_workers]
    inlines = [PaymentInline]
    readonly_fields = [f.name for f in Assignment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # assignments come from the platform (sync) only

    def get_inlines(self, request: HttpRequest, obj=None):
        return self.inlines if request.user.has_perm("crowd.view_payment") else []

    @admin.display(description=_("answer"))
    def answer_shown(self, obj: Assignment) -> str:
        return json_block(redact(obj.answer, known_ids={obj.platform_worker_id} - {""})[0])

    @admin.display(description=_("flags"))
    def flag_list(self, obj: Assignment) -> str:
        return ", ".join(obj.flags) or "–"

    @admin.display(description=_("task"))
    def task_link(self, obj: Assignment) -> str:
        if obj.task_id is None:
            return "–"
        return format_html('<a href="{}">task {}</a>', reverse("crowd:task_review", args=[obj.task_id]), obj.task_id)


@admin.register(Payment)
class PaymentAdmin(_Roles, admin.ModelAdmin):
    list_display = ["assignment", "key", "amount", "status", "created_by", "created_at", "paid_at"]
    list_filter = ["status", "assignment__study"]
    readonly_fields = [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(PrivateFieldsAdmin, admin.ModelAdmin):
    """Read-only for everyone: the log is what happened. Viewers see it with worker ids and
    amounts masked (``crowd.privacy``)."""

    masked_fields = {"request": "request_shown", "response": "response_shown", "error": "error_shown"}

    list_display = ["created_at", "operation", "ok", "platform", "environment", "study", "user", "error"]
    list_filter = ["ok", "operation", "platform", "environment", "study"]
    search_fields = ["operation", "error"]
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @staticmethod
    def _redacted(obj: AuditLog) -> tuple[object, object, set[str]]:
        ids = worker_ids(obj.request, obj.response)
        request, response = redact(obj.request, obj.response, known_ids=ids)
        return request, response, ids

    @admin.display(description=_("request"))
    def request_shown(self, obj: AuditLog) -> str:
        return json_block(self._redacted(obj)[0])

    @admin.display(description=_("response"))
    def response_shown(self, obj: AuditLog) -> str:
        return json_block(self._redacted(obj)[1])

    @admin.display(description=_("error"))
    def error_shown(self, obj: AuditLog) -> str:
        return mask_text(obj.error, self._redacted(obj)[2])


# --------------------------------------------------------------------------- task QC
class FlagFilter(admin.SimpleListFilter):
    title = _("flag")
    parameter_name = "flag"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("validation", "validation failed")] + [(r.metric, r.label) for r in RULES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(flags__contains=f",{self.value()},")
        return queryset


@admin.action(description=_("Compute QC for selected tasks (background job)"), permissions=["review"])
def compute_qc(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    ids = list(queryset.values_list("task_id", flat=True))
    job = job_start(kind="crowd.compute_qc", params={"task_ids": ids}, user=request.user)
    modeladmin.message_user(request, f"Computing QC of {len(ids)} task(s) in job {job.pk}.")


@admin.action(description=_("Exclude selected tasks from the dataset"), permissions=["review"])
def exclude_tasks(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _run(modeladmin, request, "Excluded", lambda q: services.task_exclude(task=q.task, user=request.user), queryset)


@admin.action(description=_("Keep selected tasks in the dataset"), permissions=["review"])
def keep_tasks(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _run(modeladmin, request, "Kept", lambda q: services.task_keep(task=q.task, user=request.user), queryset)


@admin.action(
    description=_("Export the cleaned dataset (all non-excluded tasks; background job)"), permissions=["export"]
)
def export_dataset(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    path = settings.VAR_DIR / "exports" / time.strftime("ifllm-%Y%m%d-%H%M%S")
    job = job_start(kind="crowd.export_dataset", params={"path": str(path)}, user=request.user)
    modeladmin.message_user(request, format_html(
        "Exporting in {} (worker ids pseudonymised, no free text); its page offers the zip download when it has "
        "finished.", job_anchor(job)))


@admin.register(TaskQC)
class TaskQCAdmin(_Roles, admin.ModelAdmin):
    class Media:
        css = {"all": ["crowd/staff.css"]}

    # The verdict and the decision first (they are what a reviewer acts on), then the reasons
    # (each failed figure with its value and threshold), then the paper's two QC figures at 3
    # significant digits: the list fits 1400 px beside both sidebars. The other figures are on
    # the task's review page; platform and status are filters.
    list_display = ["task_link", "worker", "qc_verdict", "decision_dataset", "reason_list", "response", "max_index"]
    list_filter = [
        "flagged", FlagFilter, "decision", "study", "task__worker__platform", "task__status", "task__mode",
        "task__excluded",
    ]
    search_fields = ["task__worker__pseudonym", "task__topic__title", "task__summary"]
    list_select_related = ["task", "task__worker", "study"]
    actions = [compute_qc, exclude_tasks, keep_tasks, export_dataset]
    readonly_fields = [f.name for f in TaskQC._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # decisions go through the review screen and actions (services)

    @admin.display(description=_("task"), ordering="task_id")
    def task_link(self, obj: TaskQC) -> str:
        return format_html(
            '<a href="{}" title="review task {}">task&nbsp;{}</a>', reverse("crowd:task_review", args=[obj.task_id]),
            obj.task_id, obj.task_id,
        )

    @admin.display(description=_("worker"), ordering="task__worker__pseudonym")
    def worker(self, obj: TaskQC) -> str:
        w = obj.task.worker
        return format_html('<a href="{}">{}</a>', reverse("crowd:worker_review", args=[w.pk]), w.pseudonym)

    @admin.display(description=_("reasons"))
    def reason_list(self, obj: TaskQC) -> str:
        return "; ".join(r["message"] for r in obj.reasons) or "–"

    @admin.display(description=_("decision"), ordering="decision")
    def decision_dataset(self, obj: TaskQC) -> str:
        """The reviewer's decision over whether the task is in the dataset, in words: the admin's
        icons put a red cross on every task that is kept, which read as "excluded"."""
        state = format_html('<span class="bad">{}</span>', "excluded") if obj.task.excluded else "kept"
        return format_html("{}<br>{}", obj.get_decision_display() or "not reviewed", state)

    @admin.display(description=_("QC"), ordering="flagged")
    def qc_verdict(self, obj: TaskQC) -> str:
        """Words, not the admin's boolean icon: a green tick read as "all good" on a flagged task."""
        css, word = ("bad", "flagged") if obj.flagged else ("good", "passed")
        return format_html('<span class="{} qc-verdict">{}</span>', css, word)

    @staticmethod
    def _figure(value: float | None) -> str:
        return "–" if value is None or value != value else f"{value:.3g}"

    response = admin.display(description=_("response"), ordering="response_score")(
        lambda self, obj: self._figure(obj.response_score))
    max_index = admin.display(description=_("max index"), ordering="max_index_score")(
        lambda self, obj: self._figure(obj.max_index_score))

