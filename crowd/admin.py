"""Staff admin of studies, HITs, assignments, payments, the audit log and task QC.

Actions are plain functions that call a service and report with ``message_user``. Those that
spend money or change what workers see declare ``permissions=["pay"]``, which only researchers
hold (``crowd.pay_workers``); the services check it again. Actions that need input (rejection
feedback, bonus amount, notification text) show an intermediate form first, as Django's own
``delete_selected`` does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from access.privacy import PrivateFieldsAdmin, json_block, mask_text, redact, worker_ids
from collection import admin as collection_admin
from collection.models import DataSelection, Task
from collection.selection_html import selection_block
from jobs.html import job_anchor
from jobs.services import job_start

from . import services
from .models import HIT, Assignment, AuditLog, Payment, ReviewCall, Study, TaskQC
from .mturk import MTurkError
from .prolific_api import REJECTION_CATEGORIES, ProlificError
from .qc import DEFAULT_THRESHOLDS, RULES
from .selection import SCOPES as SELECTION_SCOPES
from .services.prolific import NO_TOKEN as PROLIFIC_NO_TOKEN


class _Roles:
    """Permission hooks named by the ``permissions=[...]`` of the actions."""

    def has_pay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.pay_workers")

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.review_task")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.export_dataset")


# --------------------------------------------------------------------------- narrow change lists
# The lists below must fit a 1366 px laptop with the admin's navigation and filters open (about
# 720 px for the table): Prolific's ids are 24 unbreakable characters and errors run to lines, so
# long values are cut with the whole value in a tooltip, dates are short, and related columns merge.
class _FitList:
    """Change-list helpers and the crowd stylesheet (wrapping headers, narrow cells)."""

    class Media:
        css = {"all": ["crowd/staff.css"]}


def cut(value: object, length: int) -> str:
    """``value`` cut to ``length`` characters, the whole of it in the tooltip (``title``)."""
    text = "" if value is None else str(value)
    if not text:
        return "–"
    short = text if len(text) <= length else text[: length - 1].rstrip() + "…"
    return format_html('<span title="{}">{}</span>', text, short)


def when(moment: Any, *, seconds: bool = False) -> str:
    """A list's date and time, short (``2026-12-05 14:03``, local time), breaking only between
    the date and the time; "–" when unset."""
    if moment is None:
        return "–"
    local = timezone.localtime(moment)
    return format_html('<span class="list-when"><span>{}</span> <span>{}</span></span>',
                       local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S" if seconds else "%H:%M"))


def dotted(name: str) -> str:
    """A dotted name (``prolific.submission.transition``) that may break after its dots."""
    return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in _dots(name)))


def _dots(name: str) -> list[str]:
    parts = name.split(".")
    return [p + "." for p in parts[:-1]] + parts[-1:]


def where(platform_label: str, environment: str, platform: str) -> str:
    """Platform and, for MTurk only, its environment in one short cell (Prolific has no sandbox)."""
    return f"{platform_label} {environment}" if platform == Study.Platform.MTURK and environment else platform_label


def _run(modeladmin: admin.ModelAdmin, request: HttpRequest, label: str, fn, items) -> None:
    """Apply ``fn`` to each item; report successes and each failure with its reason."""
    done = 0
    for item in items:
        try:
            fn(item)
        except (MTurkError, ProlificError, services.CrowdError, ValidationError, PermissionDenied) as exc:
            text = _why(exc)
            modeladmin.message_user(request, f"{item}: {text}", messages.ERROR)
        else:
            done += len(item) if isinstance(item, list) else 1  # a list: one study's Prolific submissions
    if done:
        modeladmin.message_user(request, f"{label}: {done} done.", messages.SUCCESS)


def _why(exc: Exception) -> str:
    """A refusal in words, naming the field where a form field was wrong."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
        return "; ".join(exc.messages)
    return str(exc)


def _prolific_ready(modeladmin: admin.ModelAdmin, request: HttpRequest) -> bool:
    """False (with one clear message) when ``PROLIFIC_API_TOKEN`` is not set."""
    if services.prolific_configured():
        return True
    modeladmin.message_user(request, PROLIFIC_NO_TOKEN, messages.ERROR)
    return False


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
    key = str(request.POST.get("_once", ""))[:64]  # drawn with the page: a double click reuses it
    _run(modeladmin, request, "HITs created",
         lambda s: services.hit_create(study=s, user=request.user, request_key=key), queryset)


@admin.action(description=_("Sync assignments from MTurk (background job)"), permissions=["change"])
def sync_assignments(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    hits = queryset if queryset.model is HIT else HIT.objects.filter(study__in=queryset)
    ids = list(hits.exclude(hit_id=None).values_list("pk", flat=True))
    job = job_start(kind="crowd.sync_assignments", params={"hit_ids": ids}, user=request.user)
    modeladmin.message_user(request, f"Syncing {len(ids)} HIT(s) in job {job.pk}.")


def _prolific_studies(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> list[Study]:
    if not _prolific_ready(modeladmin, request):
        return []
    others = [s.name for s in queryset if s.platform != Study.Platform.PROLIFIC]
    if others:
        modeladmin.message_user(request, f"Not on Prolific, left alone: {', '.join(others)}.", messages.WARNING)
    return [s for s in queryset if s.platform == Study.Platform.PROLIFIC]


@admin.action(description=_("Prolific: create a draft study from the settings"), permissions=["pay"])
def prolific_draft(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for study in _prolific_studies(modeladmin, request, queryset):
        had = study.prolific_study_id
        try:
            study = services.prolific_study_draft_create(study=study, user=request.user)
        except (ProlificError, services.CrowdError, ValidationError, PermissionDenied) as exc:
            modeladmin.message_user(request, f"{study.name}: {_why(exc)}", messages.ERROR)
            continue
        if had:
            text = f"{study.name}: already on Prolific as {study.prolific_study_id} (nothing created)."
        else:
            text = (f"{study.name}: draft {study.prolific_study_id} created on Prolific (unpublished). Check it in "
                    "Prolific's web app, then publish it here.")
        modeladmin.message_user(request, text, messages.SUCCESS)


def _transition_action(verb: str, call: Callable[..., Study], done: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        for study in _prolific_studies(modeladmin, request, queryset):
            try:
                study = call(study=study, user=request.user)
            except (ProlificError, services.CrowdError, PermissionDenied) as exc:
                modeladmin.message_user(request, f"{study.name}: {_why(exc)}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{study.name}: {done} (Prolific status {study.prolific_status}).",
                                        messages.SUCCESS)

    action.__name__ = f"prolific_{verb}"
    return action


prolific_publish = admin.action(description=_("Prolific: publish (participants can start)"), permissions=["pay"])(
    _transition_action("publish", services.prolific_study_publish, "published"))
prolific_pause = admin.action(description=_("Prolific: pause (no new participants)"), permissions=["pay"])(
    _transition_action("pause", services.prolific_study_pause, "paused"))


@admin.action(description=_("Prolific: sync submissions (background job)"), permissions=["change"])
def prolific_sync(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    studies = _prolific_studies(modeladmin, request, queryset)
    missing = [s.name for s in studies if not s.prolific_study_id]
    if missing:
        modeladmin.message_user(request, f"No Prolific study yet (create the draft first): {', '.join(missing)}.",
                                messages.WARNING)
    ids = [s.pk for s in studies if s.prolific_study_id]
    if ids:
        job = job_start(kind="crowd.prolific_sync", params={"study_ids": ids}, user=request.user)
        modeladmin.message_user(request, format_html(
            "Syncing the submissions of {} Prolific study(ies) in {}; its page shows the counts (seen, new, flagged "
            "for review, returned).", len(ids), job_anchor(job)))


@admin.register(Study)
class StudyAdmin(PrivateFieldsAdmin, _Roles, _FitList, admin.ModelAdmin):
    private_fields = ("reward",)
    list_display = ["name", "platform_shown", "status_shown", "reward", "places", "active", "monitor_link",
                    "created_day"]
    list_filter = ["platform", "environment", "active"]
    search_fields = ["name", "title", "prolific_study_id"]
    readonly_fields = ["retake_qualification_id", "created_at", "prolific_status", "prolific_published_at",
                       "prolific_synced_at"]
    actions = [create_hits, sync_assignments, prolific_draft, prolific_publish, prolific_pause, prolific_sync]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "request_key": uuid.uuid4().hex})

    @admin.display(description=_("platform"), ordering="platform")
    def platform_shown(self, obj: Study) -> str:
        return where("MTurk" if obj.platform == Study.Platform.MTURK else obj.get_platform_display(),
                     obj.environment, obj.platform)

    @admin.display(description=_("Prolific status"), ordering="prolific_status")
    def status_shown(self, obj: Study) -> str:
        if obj.platform != Study.Platform.PROLIFIC:
            return "–"
        return obj.prolific_status.replace("_", " ").capitalize() if obj.prolific_status else "no draft yet"

    @admin.display(description=_("places"), ordering="max_assignments")
    def places(self, obj: Study) -> int:
        return obj.max_assignments

    @admin.display(description=_("monitor"))
    def monitor_link(self, obj: Study) -> str:
        return format_html('<a href="{}">live</a>', reverse("crowd:study_monitor", args=[obj.pk]))

    @admin.display(description=_("created"), ordering="created_at")
    def created_day(self, obj: Study) -> str:
        return format_html('<span class="list-when"><span>{}</span></span>',
                           timezone.localtime(obj.created_at).strftime("%Y-%m-%d"))

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
        (
            _("Prolific"),
            {
                "fields": [
                    "prolific_study_id", "estimated_minutes", "devices", "require_webcam", "code_completed",
                    "code_screened_out", "code_partial", "prolific_completion_codes", "prolific_status",
                    "prolific_published_at", "prolific_synced_at",
                ],
                "description": _("Places are the maximum number of assignments; the reward is in the study's "
                                 "currency. The API token comes from PROLIFIC_API_TOKEN, never from here."),
            },
        ),
        (_("Quality-control thresholds (empty = not applied)"), {"fields": [r.name for r in RULES]}),
    ]

    #: Help that the models' texts (written for MTurk first) get wrong on this form, where the
    #: three Prolific codes come *above* the code list and the URL serves both platforms.
    HELP = {
        "external_url": _("HTTPS entry page of the site. MTurk: the ExternalQuestion URL. Prolific: the study URL; "
                          "PROLIFIC_PID, STUDY_ID and SESSION_ID are added to it when the draft is created."),
        "prolific_completion_codes": _('Completion code -> "approve" or "review", e.g. {"C1A2B3": "approve"}. '
                                       "The three codes above are added to it when the study is saved."),
        "environment": _("MTurk only: sandbox (no money) or production. Prolific has no sandbox: publishing "
                         "a Prolific study recruits real participants and spends money."),
    }

    def get_form(self, request: HttpRequest, obj: Study | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        for name, text in self.HELP.items():
            if name in form.base_fields:
                form.base_fields[name].help_text = text
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Study | None = None) -> list[Any]:
        """The other platform's section of a saved study starts folded (still there to edit)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.pk is None:
            return fieldsets
        other = _("MTurk qualifications") if obj.platform == Study.Platform.PROLIFIC else (
            _("Prolific") if obj.platform == Study.Platform.MTURK else None)
        return [(name, {**opts, "classes": [*opts.get("classes", ()), "collapse"]}) if other and name == other
                else (name, opts) for name, opts in fieldsets]


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
        help_text=_("Required: the worker reads this. Say which rule the submission broke. "
                    "Prolific requires at least 100 characters."),
    )
    rejection_category = forms.ChoiceField(
        required=False, choices=[("", "–")] + list(REJECTION_CATEGORIES.items()),
        help_text=_("Required by Prolific (not used on MTurk)."),
    )


class ReturnForm(forms.Form):
    reasons = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=_("One reason per line; the participant reads them (e.g. 'No gaze data reached the site')."),
    )


class ConfirmBonusForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[("paid", "Prolific shows it paid"), ("not_paid", "Prolific shows it NOT paid")],
        widget=forms.RadioSelect,
        help_text=_("Look at the study's bonus payments on Prolific first."),
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
    """MTurk assignments one call each; Prolific submissions in one bulk call per study."""
    rows = list(queryset.select_related("study"))
    _run(modeladmin, request, "Approved", lambda a: services.assignment_approve(assignment=a, user=request.user),
         [a for a in rows if a.platform != Study.Platform.PROLIFIC])
    prolific_rows = [a for a in rows if a.platform == Study.Platform.PROLIFIC]
    if prolific_rows and _prolific_ready(modeladmin, request):
        _run(modeladmin, request, "Approved on Prolific (one bulk call per study)",
             lambda group: services.prolific_approve(assignments=group, user=request.user),
             _by_study(prolific_rows))


def _by_study(rows: list) -> list[list]:
    groups: dict[int, list] = {}
    for a in rows:
        groups.setdefault(a.study_id, []).append(a)
    return list(groups.values())


def _form_action(
    *, name: str, title: str, form_class: type[forms.Form], done: str,
    call: Callable[[Any, dict, Any], Any], items: Callable[[QuerySet], Any] = lambda qs: qs.select_related("study"),
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], HttpResponse | None]:
    """An admin action that first asks for a form (feedback, amount, reason, message), then runs
    ``call(item, cleaned_data, user)`` on each of ``items(queryset)`` and reports per item."""

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            data = form.cleaned_data
            _run(modeladmin, request, done, lambda item: call(item, data, request.user), items(queryset))
            return None
        return _form_page(modeladmin, request, queryset, form, name, title)

    action.__name__ = name
    return action


def _by_mturk_study(queryset: QuerySet) -> list[tuple[Study, list[str]]]:
    """MTurk assignments grouped by study: one notify call per study with its worker ids."""
    by_study: dict = {}
    for a in queryset.filter(platform=Study.Platform.MTURK).select_related("study"):
        by_study.setdefault(a.study, []).append(a.platform_worker_id)
    return list(by_study.items())


def _reject(item: Any, data: dict, user: Any) -> Any:
    if isinstance(item, list):  # the Prolific submissions of one study, rejected with one reason
        return services.prolific_reject(assignments=item, user=user, message=data["feedback"],
                                        category=data.get("rejection_category") or "")
    return services.assignment_reject(assignment=item, user=user, feedback=data["feedback"])


def _reject_items(qs: QuerySet) -> list:
    rows = list(qs.select_related("study"))
    return [a for a in rows if a.platform != Study.Platform.PROLIFIC] + _by_study(
        [a for a in rows if a.platform == Study.Platform.PROLIFIC])


reject_assignments = admin.action(
    description=_("Reject selected assignments (asks for feedback; Prolific: and a category)…"),
    permissions=["pay"])(_form_action(
        name="reject_assignments", title="Reject assignments", form_class=RejectForm, done="Rejected",
        call=_reject, items=_reject_items,
    ))

request_return = admin.action(description=_("Prolific: ask the participants to return their submissions…"),
                              permissions=["pay"])(_form_action(
    name="request_return", title="Ask participants to return their submissions", form_class=ReturnForm,
    done="Return requested",
    call=lambda a, data, user: services.prolific_request_return(assignment=a, user=user,
                                                                reasons=data["reasons"].splitlines()),
    items=lambda qs: qs.filter(platform=Study.Platform.PROLIFIC).select_related("study"),
))

bonus_assignments = admin.action(description=_("Pay a bonus to selected assignments…"), permissions=["pay"])(
    _form_action(
        name="bonus_assignments", title="Pay a bonus", form_class=BonusForm, done="Bonus paid",
        call=lambda a, data, user: services.bonus_pay(assignment=a, user=user, amount=data["amount"],
                                                      reason=data["reason"], key=data["key"]),
    ))

# Every selected assignment, matched to a task or not (its platform worker id is enough).
block_workers = admin.action(description=_("Block the workers of selected assignments…"), permissions=["pay"])(
    _form_action(
        name="block_workers", title="Block workers", form_class=BlockForm, done="Blocked",
        call=lambda a, data, user: services.assignment_block(assignment=a, user=user, reason=data["reason"],
                                                             study=a.study),
        items=lambda qs: qs.select_related("study", "worker"),
    ))

notify_workers = admin.action(description=_("Notify the workers of selected assignments…"), permissions=["pay"])(
    _form_action(
        name="notify_workers", title="Notify workers", form_class=NotifyForm, done="Notified",
        call=lambda item, data, user: services.workers_notify(study=item[0], worker_ids=item[1],
                                                              subject=data["subject"], message=data["message"],
                                                              user=user),
        items=_by_mturk_study,
    ))


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ["key", "amount", "reason", "status", "platform_batch_id", "paid_at", "error"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(PrivateFieldsAdmin, _Roles, _FitList, admin.ModelAdmin):
    private_fields = ("platform_worker_id",)
    masked_fields = {"answer": "answer_shown"}

    # The completion code is on the assignment's page and searchable; a wrong one is a flag here.
    list_display = ["assignment_id", "study_short", "status", "flag_list", "task_link", "submitted"]
    list_filter = ["flagged", "status", "platform", "study", "hit__environment"]
    search_fields = ["assignment_id", "platform_worker_id", "completion_code"]
    list_select_related = ["study", "task"]
    actions = [approve_assignments, reject_assignments, bonus_assignments, request_return, block_workers,
               notify_workers]
    inlines = [PaymentInline]
    readonly_fields = [f.name for f in Assignment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # assignments come from the platform (sync) only

    def get_inlines(self, request: HttpRequest, obj=None):
        return self.inlines if request.user.has_perm("crowd.view_payment") else []

    @admin.display(description=_("answer"))
    def answer_shown(self, obj: Assignment) -> str:
        return json_block(redact(obj.answer, known_ids={obj.platform_worker_id} - {""})[0])

    @admin.display(description=_("study"), ordering="study__name")
    def study_short(self, obj: Assignment) -> str:
        return cut(obj.study.name, 26)  # the platform is a filter; "(Prolific)" is not worth the width

    @admin.display(description=_("flags"), ordering="flagged")
    def flag_list(self, obj: Assignment) -> str:
        """What does not add up, in words (the codes are for filters); "–" when nothing."""
        if not obj.flags:
            return "–"
        labels = dict(Assignment.Flag.choices)
        words = "; ".join(str(labels.get(f, f)) for f in obj.flags)
        return format_html('<span class="bad" title="{}">⚠ {}</span>', words, cut(words, 40))

    @admin.display(description=_("submitted"), ordering="submitted_at")
    def submitted(self, obj: Assignment) -> str:
        return when(obj.submitted_at)

    @admin.display(description=_("task"))
    def task_link(self, obj: Assignment) -> str:
        if obj.task_id is None:
            return "–"
        return format_html('<a href="{}" title="task {} (its review page)">{}</a>',
                           reverse("crowd:task_review", args=[obj.task_id]), obj.task_id, obj.task_id)


confirm_bonus = admin.action(description=_("Prolific: confirm a bonus whose pay answer was lost…"),
                             permissions=["pay"])(_form_action(
    name="confirm_bonus", title="Confirm bonuses after checking Prolific", form_class=ConfirmBonusForm,
    done="Confirmed",
    call=lambda p, data, user: services.prolific_bonus_confirm(payment=p, user=user, paid=data["outcome"] == "paid"),
    items=lambda qs: qs.select_related("assignment"),
))


@admin.register(Payment)
class PaymentAdmin(_Roles, _FitList, admin.ModelAdmin):
    list_display = ["submission", "purpose", "amount", "status", "batch", "paid"]
    list_display_links = ["submission"]
    list_select_related = ["assignment"]
    list_filter = ["status", "assignment__study"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    actions = [confirm_bonus]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("submission"), ordering="assignment__assignment_id")
    def submission(self, obj: Payment) -> str:
        return cut(obj.assignment.assignment_id, 26)

    @admin.display(description=_("purpose"), ordering="key")
    def purpose(self, obj: Payment) -> str:
        return cut(obj.key, 18)

    @admin.display(description=_("Prolific batch"), ordering="platform_batch_id")
    def batch(self, obj: Payment) -> str:
        return cut(obj.platform_batch_id, 10)

    @admin.display(description=_("paid"), ordering="paid_at")
    def paid(self, obj: Payment) -> str:
        return when(obj.paid_at)


@admin.register(AuditLog)
class AuditLogAdmin(PrivateFieldsAdmin, _FitList, admin.ModelAdmin):
    """Read-only for everyone: the log is what happened. Viewers see it with worker ids and
    amounts masked (``access.privacy``)."""

    masked_fields = {"request": "request_shown", "response": "response_shown", "error": "error_shown",
                     "error_short": "error_short_masked"}

    list_display = ["at", "operation_shown", "ok", "platform_shown", "study_short", "user", "error_short"]
    list_display_links = ["at"]
    list_select_related = ["study", "user"]
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

    @admin.display(description=_("at"), ordering="created_at")
    def at(self, obj: AuditLog) -> str:
        return when(obj.created_at, seconds=True)

    @admin.display(description=_("operation"), ordering="operation")
    def operation_shown(self, obj: AuditLog) -> str:
        return dotted(obj.operation)

    @admin.display(description=_("platform"), ordering="platform")
    def platform_shown(self, obj: AuditLog) -> str:
        return where("MTurk" if obj.platform == Study.Platform.MTURK else obj.get_platform_display(),
                     obj.environment, obj.platform)

    @admin.display(description=_("study"), ordering="study__name")
    def study_short(self, obj: AuditLog) -> str:
        return cut(obj.study.name, 24) if obj.study_id else "–"

    @admin.display(description=_("error"))
    def error_short(self, obj: AuditLog) -> str:
        return cut(obj.error, 60) if obj.error else ""

    @admin.display(description=_("error"))
    def error_short_masked(self, obj: AuditLog) -> str:
        return cut(self.error_shown(obj), 60) if obj.error else ""


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
    description=_("Export every task not excluded by staff (QC not applied; background job)"),
    permissions=["export"],
)
def export_dataset(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    path = settings.VAR_DIR / "exports" / time.strftime("ifllm-%Y%m%d-%H%M%S")
    job = job_start(kind="crowd.export_dataset", params={"path": str(path)}, user=request.user)
    modeladmin.message_user(request, format_html(
        "Exporting in {} (worker ids pseudonymised, no free text); its page offers the zip download when it has "
        "finished.", job_anchor(job)))


#: More ids than this would make the report's URL too long: use the page's filters instead.
REPORT_MAX_IDS = 1500


def _report_redirect(modeladmin: admin.ModelAdmin, request: HttpRequest, ids: list[int]) -> HttpResponse | None:
    if len(ids) > REPORT_MAX_IDS:
        modeladmin.message_user(
            request, f"{len(ids)} tasks selected: choose at most {REPORT_MAX_IDS}, or open the eye-tracking report "
            "and select by study, source, platform or dates.", messages.WARNING)
        return None
    query = urlencode({"tasks": ",".join(str(i) for i in sorted(ids))})
    return HttpResponseRedirect(f"{reverse('crowd:eyetracking_report')}?{query}")


@admin.action(description=_("Eye-tracking report for selected tasks"), permissions=["view"])
def eyetracking_report_qc(modeladmin: admin.ModelAdmin, request: HttpRequest,
                          queryset: QuerySet) -> HttpResponse | None:
    return _report_redirect(modeladmin, request, list(queryset.values_list("task_id", flat=True)))


@admin.action(description=_("Eye-tracking report for selected tasks"), permissions=["view"])
def eyetracking_report_tasks(modeladmin: admin.ModelAdmin, request: HttpRequest,
                             queryset: QuerySet) -> HttpResponse | None:
    return _report_redirect(modeladmin, request, list(queryset.values_list("pk", flat=True)))


class TaskAdmin(collection_admin.TaskAdmin):
    """collection's task admin plus the eye-tracking report of the selected tasks.

    Defined here, not in ``collection.admin``, so that collection never imports crowd (the apps
    depend one way; alignment extends analysis's run admin the same way).
    """

    actions = [*(collection_admin.TaskAdmin.actions or []), eyetracking_report_tasks]


admin.site.unregister(Task)
admin.site.register(Task, TaskAdmin)


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
    actions = [compute_qc, exclude_tasks, keep_tasks, export_dataset, eyetracking_report_qc]
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


# --------------------------------------------------------------------------- data selections
class DataSelectionForm(forms.ModelForm):
    """A new selection (or a new version of a name): scope, thresholds and what to do without QC.

    Manual exclusions and "keep" decisions are taken from the task reviews as they stand now.
    """

    scope = forms.ChoiceField(choices=list(SELECTION_SCOPES.items()), initial="all")
    study = forms.ModelChoiceField(queryset=Study.objects.all(), required=False,
                                   help_text=_("Only the tasks whose QC was computed for this study."))
    require_qc = forms.BooleanField(initial=True, required=False, label=_("Leave out tasks without QC figures"))
    validation = forms.BooleanField(initial=True, required=False, label=_("Leave out failed gaze validations"))

    class Meta:
        model = DataSelection
        fields = ["name", "note"]
        help_texts = {"name": _("An existing name gets its next version; the older versions stay as they were.")}

    def thresholds(self) -> dict[str, float | None]:
        return {rule.name: self.cleaned_data.get(rule.name) for rule in RULES}

    def clean(self) -> dict[str, Any]:
        """A selection over no task is refused here, naming the field (it would hold nothing)."""
        data = super().clean()
        scope, study = data.get("scope"), data.get("study")
        if scope and not self.errors and not services.selection_candidates(scope=scope, study=study).exists():
            message = services.empty_selection_message(scope=scope, study=study)
            name, _sep, text = message.partition(": ")
            self.add_error(name, text)
        return data


def _threshold_field(rule) -> forms.FloatField:
    default = DEFAULT_THRESHOLDS.get(rule.name)
    return forms.FloatField(
        required=False, min_value=0, label=rule.label[:1].upper() + rule.label[1:],
        help_text=_("%(op)s; empty: rule off. QC default: %(d)s.") % {
            "op": "minimum" if rule.op == "min" else "maximum", "d": "off" if default is None else f"{default:g}"},
    )


# One field per QC rule, declared on the class so that the admin's form factory knows them.
for _rule in RULES:
    DataSelectionForm.base_fields[_rule.name] = DataSelectionForm.declared_fields[_rule.name] = _threshold_field(_rule)


@admin.action(description=_("Export the selected data selection (background job)"), permissions=["export"])
def export_selection(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for selection in queryset:
        path = settings.VAR_DIR / "exports" / time.strftime(f"ifllm-selection-{selection.pk}-%Y%m%d-%H%M%S")
        job = job_start(kind="crowd.export_dataset", params={"path": str(path), "selection_pk": selection.pk},
                        user=request.user)
        modeladmin.message_user(request, format_html(
            "Exporting {} in {}; its page offers the zip download when it has finished.", selection, job_anchor(job)))


@admin.action(description=_("New version with the same rules and today's QC and decisions"), permissions=["add"])
def new_version(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    def make(selection: DataSelection) -> None:
        rules = selection.rules
        try:
            made = services.data_selection_create(
                name=selection.name, thresholds=rules.get("thresholds"), scope=rules.get("scope", "all"),
                study=Study.objects.filter(pk=rules.get("study")).first() if rules.get("study") else None,
                require_qc=rules.get("require_qc", True), validation=rules.get("validation", True),
                user=request.user, note=f"new version of {selection} with the same thresholds",
            )
        except ValueError as exc:  # nothing to select (e.g. every task withdrawn): said, not a 500
            raise services.CrowdError(str(exc)) from None
        modeladmin.message_user(request, f"Created {made}.")

    _run(modeladmin, request, "New versions", make, queryset)


def _task_cell(pk: int, gone: set[int]) -> str:
    """A selection's task: linked to its review page, or "withdrawn — deleted" when a withdrawal
    deleted it (the frozen selection still names its id)."""
    if int(pk) in gone:
        return format_html('task {} <span class="ifllm-withdrawn">(withdrawn — deleted)</span>', pk)
    return format_html('<a href="{}">task {}</a>', reverse("crowd:task_review", args=[pk]), pk)


@admin.register(DataSelection)
class DataSelectionAdmin(_Roles, admin.ModelAdmin):
    """Selections are created through :func:`crowd.services.data_selection_create` and never
    edited (reward runs, leaderboards, datasets and exports point at them); delete is refused
    while anything uses one."""

    class Media:
        css = {"all": ["ifllm/admin_results.css"]}

    form = DataSelectionForm
    list_display = ["__str__", "version", "left_out_count", "scope", "review_queue", "created_by", "created_at"]
    search_fields = ["name", "note"]
    actions = [export_selection, new_version]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return ["name", "note", "scope", "study", "require_qc", "validation", *[r.name for r in RULES]]
        return ["name", "version", "review_queue", "summary_shown", "left_out_shown", "kept_despite_shown", "note",
                "created_by", "created_at", "rules"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # frozen: a change is a new version

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        """Thresholds from the query string (the QC pages link here with theirs), else QC's defaults."""
        initial = {**DEFAULT_THRESHOLDS, **super().get_changeform_initial_data(request)}
        for name in ("scope", "study", *[r.name for r in RULES]):
            if name in request.GET:
                initial[name] = request.GET[name] or None
        return initial

    def save_model(self, request: HttpRequest, obj: DataSelection, form: DataSelectionForm, change: bool) -> None:
        data = form.cleaned_data
        made = services.data_selection_create(
            name=data["name"], thresholds=form.thresholds(), scope=data["scope"], study=data.get("study"),
            require_qc=data["require_qc"], validation=data["validation"], note=data.get("note", ""),
            user=request.user,
        )
        obj.pk, obj.version = made.pk, made.version
        obj._state.adding = False

    @admin.display(description=_("left out"), ordering="n_left_out")
    def left_out_count(self, obj: DataSelection) -> int:
        return obj.n_left_out

    @admin.display(description=_("review"))
    def review_queue(self, obj: DataSelection) -> str:
        """The review queue over the selection's tasks (kept, left out), one keystroke per call."""
        url = reverse("crowd:review_queue", args=[obj.pk])
        return format_html('<a class="review-queue-link" href="{}">review queue</a> (<a href="{}?over=left_out">'
                           "left out</a>)", url, url)

    @admin.display(description=_("scope"))
    def scope(self, obj: DataSelection) -> str:
        return SELECTION_SCOPES.get(obj.rules.get("scope", "all"), "")

    @admin.display(description=_("rules and counts"))
    def summary_shown(self, obj: DataSelection) -> str:
        return selection_block(obj, without="")

    @admin.display(description=_("tasks left out"))
    def left_out_shown(self, obj: DataSelection) -> str:
        if not obj.left_out:
            return "–"
        gone = obj.tasks_gone()
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (_task_cell(r["task"], gone), r["worker"], r["task_id"], "; ".join(r.get("messages") or r["reasons"]))
            for r in obj.left_out))
        return format_html('<table class="ifllm-kv"><thead><tr><th>task</th><th>worker</th><th>release/public id</th>'
                           "<th>why</th></tr></thead><tbody>{}</tbody></table>", rows)

    @admin.display(description=_("kept by staff despite failing"))
    def kept_despite_shown(self, obj: DataSelection) -> str:
        kept = (obj.summary or {}).get("kept_despite", [])
        if not kept:
            return "–"
        gone = obj.tasks_gone()
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (_task_cell(r["task"], gone), r["worker"], "; ".join(r["overrode"])) for r in kept))
        return format_html('<table class="ifllm-kv"><tbody>{}</tbody></table>', rows)


@admin.action(description=_("Create a data selection from the QC thresholds…"), permissions=["review"])
def create_selection(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet):
    """Opens the selection form with the QC defaults (the selected rows do not matter: a selection
    judges every task)."""
    return HttpResponseRedirect(reverse("admin:collection_dataselection_add"))


TaskQCAdmin.actions = [*TaskQCAdmin.actions, create_selection]


# --------------------------------------------------------------------------- review calls
@admin.register(ReviewCall)
class ReviewCallAdmin(admin.ModelAdmin):
    """Every reviewer's call from the review queues, read only: calls are made in the queue
    (``/crowd/review/<selection>/``), where they also change the task's decision."""

    list_display = ["task", "reviewer", "call", "reason", "selection", "updated_at"]
    list_filter = ["call", "reason", "reviewer"]
    search_fields = ["note"]
    list_select_related = ["reviewer", "selection"]
    raw_id_fields = ["task", "selection"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


from . import admin_withdrawal  # noqa: E402,F401  (withdrawals: needs the names above)
