"""Admin of withdrawals: the "withdraw" action on workers, the audit records, the affected
artifacts with their rebuild action, and the notice on every affected artifact's admin page.

Registered from ``crowd`` (imported by ``crowd/admin.py``) because the withdrawal and rebuild
services import every app; the records live in ``collection``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from collection import admin as collection_admin
from collection.models import AffectedArtifact, Withdrawal, Worker
from collection.selectors import affected_marks

from .services.withdrawal import PERMISSION, WithdrawalError, artifact_rebuild, participant_withdraw, withdrawal_preview


class WithdrawConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        label=_("I understand: their samples, answers, demographics and free text are deleted everywhere, "
                "and this cannot be undone. Payment records are kept."),
    )


@admin.action(description=_("Withdraw selected participants (delete their data everywhere)"),
              permissions=["withdraw"])
def withdraw_participants(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
    """Asks first (what would be deleted and marked, per participant), then withdraws each."""
    form = WithdrawConfirmForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": _("Withdraw participants"),
            "form": form,
            "rows": [(w, withdrawal_preview(worker=w)) for w in queryset],
            "action": "withdraw_participants",
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "crowd/admin/withdraw_confirm.html", context)
    done = []
    for worker in queryset:
        try:
            record = participant_withdraw(worker=worker, channel=Withdrawal.Channel.ADMIN, user=request.user)
        except (WithdrawalError, PermissionDenied) as exc:
            modeladmin.message_user(request, f"{worker}: {exc}", messages.ERROR)
            continue
        if record is not None:
            done.append(record)
    if done:
        modeladmin.message_user(request, format_html(
            "Withdrawn: {}. Rebuild what they affected from {}.", len(done),
            format_html_join(", ", '<a href="{}">{}</a>',
                             ((reverse("crowd:withdrawal", args=[r.pk]), str(r)) for r in done))),
            messages.SUCCESS)
    return None


class WorkerAdmin(collection_admin.WorkerAdmin):
    """The collection's worker admin with the withdrawal action (which needs crowd's service)."""

    actions = [*collection_admin.WorkerAdmin.actions, withdraw_participants]

    def has_withdraw_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)


admin.site.unregister(Worker)
admin.site.register(Worker, WorkerAdmin)


class AuditRecordAdmin(admin.ModelAdmin):
    """Records the withdrawal service writes: shown, never added, changed or deleted here (an audit
    that staff could edit would prove nothing)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Withdrawal)
class WithdrawalAdmin(AuditRecordAdmin):
    """The audit of withdrawals: read-only, never deleted from the admin."""

    list_display = ["__str__", "created_at", "channel", "acted_by", "deleted", "n_affected", "n_open", "page"]
    list_filter = ["channel"]
    readonly_fields = ["created_at", "channel", "acted_by", "platform", "counts", "page"]
    exclude = ["subject_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Withdrawal]:
        return super().get_queryset(request).annotate(
            _n=Count("affected"), _open=Count("affected", filter=Q(affected__rebuilt_at__isnull=True)))

    @admin.display(description=_("deleted"))
    def deleted(self, obj: Withdrawal) -> str:
        c = obj.counts or {}
        return f"{c.get('tasks', 0)} task(s), {c.get('turns', 0)} turn(s), {c.get('samples', 0)} sample(s)"

    @admin.display(description=_("affected"), ordering="_n")
    def n_affected(self, obj: Withdrawal) -> int:
        return obj._n

    @admin.display(description=_("not yet rebuilt"), ordering="_open")
    def n_open(self, obj: Withdrawal) -> int:
        return obj._open

    @admin.display(description=_("affected artifacts and rebuilds"))
    def page(self, obj: Withdrawal) -> str:
        return format_html('<a href="{}">{}</a>', reverse("crowd:withdrawal", args=[obj.pk]), _("open"))


@admin.action(description=_("Rebuild selected artifacts with the same settings"), permissions=["rebuild"])
def rebuild_artifacts(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for mark in queryset.filter(rebuilt_at__isnull=True):
        try:
            made = artifact_rebuild(artifact=mark, user=request.user)
        except (WithdrawalError, ValueError, PermissionDenied) as exc:
            modeladmin.message_user(request, f"{mark}: {exc}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{mark}: rebuilding as {made}.", messages.SUCCESS)


@admin.register(AffectedArtifact)
class AffectedArtifactAdmin(AuditRecordAdmin):
    list_display = ["__str__", "withdrawal", "reason", "rebuilt_at", "rebuilt_as", "target"]
    list_filter = ["app_label", "model_name", ("rebuilt_at", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in AffectedArtifact._meta.fields]
    actions = [rebuild_artifacts]

    def has_rebuild_permission(self, request: HttpRequest) -> bool:
        # the services a rebuild calls check their own permissions too (reward runs, datasets, jobs)
        return request.user.has_perm(PERMISSION)

    @admin.display(description=_("open"))
    def target(self, obj: AffectedArtifact) -> str:
        url = artifact_admin_url(obj)
        return format_html('<a href="{}">{}</a>', url, _("page")) if url else "–"


def artifact_admin_url(mark: AffectedArtifact) -> str | None:
    """The admin change page of the marked object, while it exists."""
    try:
        model = apps.get_model(mark.app_label, mark.model_name)
    except LookupError:
        return None
    if not model.objects.filter(pk=mark.object_id).exists():
        return None
    try:
        return reverse(f"admin:{mark.app_label}_{mark.model_name}_change", args=[mark.object_id])
    except NoReverseMatch:
        return None


def rebuilt_admin_url(mark: AffectedArtifact) -> str | None:
    """The admin page of what the rebuild made (``rebuilt_as`` is ``app.model:pk``)."""
    if not mark.rebuilt_as or ":" not in mark.rebuilt_as or "." not in mark.rebuilt_as:
        return None
    label, pk = mark.rebuilt_as.rsplit(":", 1)
    app_label, model_name = label.split(".", 1)
    return artifact_admin_url(AffectedArtifact(app_label=app_label, model_name=model_name,
                                               object_id=int(pk))) if pk.isdigit() else None


#: Models whose admin pages say when a withdrawal affected the object.
NOTICE_MODELS = ("analysis.rewardmodelrun", "analysis.leaderboard", "analysis.studyplan", "analysis.analysisfigure",
                 "alignment.preferencedataset", "alignment.trainingrun", "alignment.evaluationrun",
                 "collection.dataselection", "jobs.job")


def notice_html(marks: list[AffectedArtifact]) -> str:
    """One sentence per withdrawal that affected the object, with its rebuild state and page."""
    return format_html_join(
        " ", "{} <a href=\"{}\">{}</a>",
        ((_("Affected by a withdrawal on %(date)s%(state)s.") % {
            "date": f"{m.withdrawal.created_at:%Y-%m-%d}",
            "state": f" (rebuilt on {m.rebuilt_at:%Y-%m-%d} as {m.rebuilt_as})" if m.rebuilt_at
            else ": built from data that has since been deleted; rebuild it"},
          reverse("crowd:withdrawal", args=[m.withdrawal_id]), _("withdrawal and rebuild"))
         for m in marks),
    )


def add_withdrawal_notices(site: admin.AdminSite) -> None:
    """Wrap the change view of every affected model's admin so its page shows the notice
    (called from ``CrowdConfig.ready``, after every app registered and re-registered its admins)."""
    for model, model_admin in site._registry.items():
        if f"{model._meta.app_label}.{model._meta.model_name}" not in NOTICE_MODELS:
            continue
        if getattr(model_admin, "_withdrawal_notice", False):
            continue
        original = model_admin.change_view

        def change_view(request: HttpRequest, object_id: str, form_url: str = "", extra_context=None,
                        _original=original, _model=model) -> HttpResponse:
            if request.method == "GET" and str(object_id).isdigit():
                marks = affected_marks(app_label=_model._meta.app_label, model_name=_model._meta.model_name,
                                       object_id=int(object_id))
                if marks:
                    level = messages.INFO if all(m.rebuilt_at for m in marks) else messages.WARNING
                    messages.add_message(request, level, notice_html(marks))
            return _original(request, object_id, form_url, extra_context)

        model_admin.change_view = change_view
        model_admin._withdrawal_notice = True
