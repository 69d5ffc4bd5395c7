"""Admin of the data of record: declarative, read-mostly, never millions of rows on a page.

Trajectories are shown as per-stream counts and time spans read from chunk metadata; the
binary payload is never rendered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import admin
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from access.privacy import PrivateFieldsAdmin

from .admin_site import invitations_create
from .models import LLMModel, Task, Topic, TrajectoryChunk, Turn, Worker
from .selectors import task_stream_summary, tasks_with_turn_and_sample_counts


def _fmt_ms(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["index", "query", "model_1", "likert_1", "model_2", "likert_2", "preferred", "better_than_previous"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Worker)
class WorkerAdmin(PrivateFieldsAdmin, admin.ModelAdmin):
    private_fields = ("platform_worker_id",)  # viewers: access.privacy
    list_display = ["pseudonym", "platform", "n_tasks", "age", "gender", "consent", "blocked", "created_at"]
    list_filter = ["platform", "blocked", "consent", "is_preview", "gender", "education"]
    search_fields = ["pseudonym", "platform_worker_id", "location"]
    readonly_fields = ["raw_overrides", "extra"]

    actions = [invitations_create]

    def has_add_invitation_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("collection.add_invitation")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        return super().get_queryset(request).annotate(_n_tasks=Count("tasks"))

    @admin.display(description=_("tasks"), ordering="_n_tasks")
    def n_tasks(self, obj: Worker) -> int:
        return obj._n_tasks


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["title", "enabled", "n_tasks"]
    list_filter = ["enabled"]
    list_editable = ["enabled"]
    search_fields = ["title", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return super().get_queryset(request).annotate(_n_tasks=Count("tasks"))

    @admin.display(description=_("tasks"), ordering="_n_tasks")
    def n_tasks(self, obj: Topic) -> int:
        return obj._n_tasks


@admin.register(LLMModel)
class LLMModelAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "model_id", "base_url", "max_tokens", "quota", "enabled", "can_judge"]
    list_filter = ["provider", "enabled", "can_judge"]
    list_editable = ["enabled", "can_judge"]
    search_fields = ["name", "model_id"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "id", "worker", "topic", "mode", "status", "n_turns", "calibration_score",
        "n_samples", "gaze_hz", "mouse_hz", "excluded", "finished_at",
    ]
    list_filter = ["mode", "status", "excluded", "worker__platform", "model_1", "model_2"]
    search_fields = ["worker__pseudonym", "topic__title", "completion_code", "assignment_id", "summary"]
    list_select_related = ["worker", "topic"]
    autocomplete_fields = ["worker", "topic"]
    readonly_fields = [
        "trajectories", "calibration", "validation", "raw_overrides", "extra", "chat_ended_at", "gaze_rate_hz",
        "mouse_rate_hz",
    ]
    inlines = [TurnInline]
    fieldsets = [
        (None, {"fields": ["worker", "topic", "mode", "model_1", "model_2", "status", "excluded"]}),
        (_("Calibration"), {"fields": ["calibration_score", "calibration", "validation"]}),
        (_("Timing"), {"fields": ["started_at", "chat_started_at", "chat_ended_at", "finished_at"]}),
        (_("Achieved sampling rates (from the stored samples)"), {"fields": ["gaze_rate_hz", "mouse_rate_hz"]}),
        (
            _("Post-task answers"),
            {"fields": ["summary", "understand_before", "understand_after", "copy_sentence", "feedback"]},
        ),
        (_("Crowd platform"), {"fields": ["assignment_id", "hit_id", "completion_code"]}),
        (_("Trajectories"), {"fields": ["trajectories"]}),
        (_("Release"), {"classes": ["collapse"], "fields": ["release_task_id", "raw_overrides", "extra"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return tasks_with_turn_and_sample_counts(super().get_queryset(request))

    @admin.display(description=_("turns"), ordering="n_turns_total")
    def n_turns(self, obj: Task) -> int:
        return obj.n_turns_total

    @admin.display(description=_("samples"), ordering="n_samples_total")
    def n_samples(self, obj: Task) -> int:
        return obj.n_samples_total

    @admin.display(description=_("gaze Hz"), ordering="gaze_rate_hz")
    def gaze_hz(self, obj: Task) -> str:
        return "–" if obj.gaze_rate_hz is None else f"{obj.gaze_rate_hz:.1f}"

    @admin.display(description=_("mouse Hz"), ordering="mouse_rate_hz")
    def mouse_hz(self, obj: Task) -> str:
        return "–" if obj.mouse_rate_hz is None else f"{obj.mouse_rate_hz:.1f}"

    @admin.display(description=_("streams"))
    def trajectories(self, obj: Task) -> str:
        summary = task_stream_summary(task=obj)
        if not summary:
            return "–"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} s</td></tr>",
            (
                (
                    key,
                    s["count"],
                    _fmt_ms(s["first_ms"]),
                    _fmt_ms(s["last_ms"]),
                    f"{((s['last_ms'] or 0) - (s['first_ms'] or 0)) / 1000:.1f}",
                )
                for key, s in summary.items()
            ),
        )
        return format_html(
            "<table><tr><th>stream</th><th>samples</th><th>first</th><th>last</th><th>span</th></tr>"
            "{}</table>",
            rows,
        )


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "index", "short_query", "model_1", "likert_1", "model_2", "likert_2", "preferred"]
    list_filter = ["bullet_instruction", "preferred", "better_than_previous", "model_1", "model_2"]
    search_fields = ["query", "response_1", "response_2", "task__worker__pseudonym"]
    list_select_related = ["task", "task__worker", "task__topic"]
    raw_id_fields = ["task"]
    readonly_fields = ["raw_overrides"]

    @admin.display(description=_("query"))
    def short_query(self, obj: Turn) -> str:
        return obj.query[:80]


@admin.register(TrajectoryChunk)
class TrajectoryChunkAdmin(admin.ModelAdmin):
    """Read-only: chunk metadata, never the payload."""

    list_display = ["id", "task", "seq", "source", "n_samples", "first", "last", "received_at"]
    list_filter = ["source"]
    search_fields = ["task__worker__pseudonym"]
    list_select_related = ["task", "task__worker", "task__topic"]
    fields = ["task", "seq", "source", "n_samples", "first", "last", "streams", "digest", "received_at"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[TrajectoryChunk]:
        return super().get_queryset(request).defer("data")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("first sample"), ordering="first_ms")
    def first(self, obj: TrajectoryChunk) -> str:
        return _fmt_ms(obj.first_ms)

    @admin.display(description=_("last sample"), ordering="last_ms")
    def last(self, obj: TrajectoryChunk) -> str:
        return _fmt_ms(obj.last_ms)


from . import admin_import, admin_site  # noqa: E402, F401
