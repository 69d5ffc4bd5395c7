"""Admin of the study site's own models (imported by ``collection/admin.py``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import CalibrationAttempt, IdentityEvent, Invitation, Platform, StudySettings, Worker
from .services import identity
from .services.study import StudyError


@admin.register(StudySettings)
class StudySettingsAdmin(admin.ModelAdmin):
    fieldsets = [
        ("Topics", {"fields": ["topic_pool_size", "max_topics_per_entry", "task_description"]}),
        ("Assignment", {"fields": ["pointwise_quota", "pairwise_quota", "open_task_expire_s", "bullet_probability",
                                   "bullet_suffix"]}),
        ("Chat", {"fields": ["min_turns", "min_seconds", "idle_timeout_s"]}),
        ("Eye tracking and logging", {"fields": ["calibration_clicks_per_point", "pass_threshold",
                                                 "validation_radius_px", "validation_max_distance_px",
                                                 "validation_max_spread_px", "validation_min_prediction_share",
                                                 "sample_interval_ms",
                                                 "batch_interval_ms", "webgazer_learn_during_task",
                                                 "keep_webgazer_data"]}),
        ("When calibration keeps failing", {"fields": ["max_calibration_attempts", "calibration_way_out",
                                                       "partial_payment_code"]}),
        ("Consent page", {"fields": ["researcher_contact", "payment_info"]}),
        ("Platforms", {"fields": ["prolific_completion_url", "lab_typed_ids"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return not StudySettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CalibrationAttempt)
class CalibrationAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "kind", "score", "threshold", "passed", "n_clicks", "created_at"]
    list_filter = ["kind", "passed"]
    search_fields = ["task__worker__pseudonym", "task__topic__title"]
    readonly_fields = ["task", "kind", "score", "threshold", "passed", "viewport_w", "viewport_h", "n_clicks",
                       "head_in_box_share", "face_found_share", "rule", "points", "raw", "created_at"]
    list_select_related = ["task__worker", "task__topic"]

    def has_add_permission(self, request) -> bool:
        return False


class InvitationAddForm(forms.ModelForm):
    """Staff create a lab participant and their first link in one step (or a new link for one)."""

    participant_id = forms.CharField(
        label=_("Participant id"), max_length=128,
        help_text=_("The lab's own id for this person (private, never exported). "
                    "An existing lab participant with this id gets a new link."),
    )
    valid_days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=365, required=False,
                                    help_text=_("Empty: until used."))

    class Meta:
        model = Invitation
        fields = ["note"]

    def clean_participant_id(self) -> str:
        value = self.cleaned_data["participant_id"].strip()
        if not value:
            raise forms.ValidationError(_("Enter an id."))
        if Worker.objects.filter(platform=Platform.LAB, platform_worker_id=value, blocked=True).exists():
            raise forms.ValidationError(_("This participant is blocked."))
        return value


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """One-time entry links of lab participants. The link is shown to staff who may change
    invitations, and only until it is used."""

    list_display = ["id", "worker", "note", "link", "created_at", "created_by", "expires_at", "used_at"]
    list_filter = [("used_at", admin.EmptyFieldListFilter)]
    search_fields = ["worker__pseudonym", "note"]
    list_select_related = ["worker", "created_by"]
    readonly_fields = ["worker", "link", "created_at", "created_by", "expires_at", "used_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = InvitationAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["participant_id", "note", "valid_days"]
        return ["worker", "note", "link", "created_at", "created_by", "expires_at", "used_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        worker = identity.lab_participant_create(participant_id=form.cleaned_data["participant_id"])
        made = identity.invitation_create(worker=worker, user=request.user, note=form.cleaned_data["note"],
                                          valid_days=form.cleaned_data.get("valid_days"))
        obj.pk, obj.token, obj.worker = made.pk, made.token, worker
        obj._state.adding = False

    @admin.display(description=_("link"))
    def link(self, obj: Invitation) -> str:
        request = getattr(self, "_request", None)
        if obj.used_at or request is None or not self.has_change_permission(request, obj):
            return "–"
        url = request.build_absolute_uri(reverse("collection:join", kwargs={"token": obj.token}))
        return format_html('<input readonly size="60" value="{}" onclick="this.select()">', url)

    def changelist_view(self, request, extra_context=None):
        self._request = request
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, *args, **kwargs):
        self._request = request
        return super().changeform_view(request, *args, **kwargs)


@admin.action(description=_("Create an invitation link for each selected lab participant"),
              permissions=["add_invitation"])
def invitations_create(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Worker]) -> None:
    made = 0
    for worker in queryset:
        try:
            identity.invitation_create(worker=worker, user=request.user)
            made += 1
        except StudyError as exc:
            modeladmin.message_user(request, f"{worker}: {exc.message}", messages.WARNING)
    if made:
        modeladmin.message_user(request, _("%(n)d invitation(s) created: see Invitations.") % {"n": made})


@admin.register(IdentityEvent)
class IdentityEventAdmin(admin.ModelAdmin):
    """Read-only audit of entries and session changes (who tried to work on whose task)."""

    list_display = ["last_at", "kind", "worker", "task", "platform", "assignment_id", "count", "created_at"]
    list_filter = ["kind", "platform"]
    search_fields = ["worker__pseudonym", "assignment_id"]
    list_select_related = ["worker", "task"]
    fields = ["kind", "worker", "task", "platform", "assignment_id", "hit_id", "detail", "count", "created_at",
              "last_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
