"""Admin of the study site's own models (imported by ``collection/admin.py``)."""

from django.contrib import admin

from .models import CalibrationAttempt, StudySettings


@admin.register(StudySettings)
class StudySettingsAdmin(admin.ModelAdmin):
    fieldsets = [
        ("Topics", {"fields": ["topic_pool_size", "max_topics_per_entry", "task_description"]}),
        ("Assignment", {"fields": ["pointwise_quota", "pairwise_quota", "bullet_probability", "bullet_suffix"]}),
        ("Chat", {"fields": ["min_turns", "min_seconds", "idle_timeout_s"]}),
        ("Eye tracking and logging", {"fields": ["pass_threshold", "validation_radius_px", "sample_interval_ms",
                                                 "batch_interval_ms", "webgazer_learn_during_task",
                                                 "keep_webgazer_data"]}),
        ("When calibration keeps failing", {"fields": ["max_calibration_attempts", "calibration_way_out",
                                                       "partial_payment_code"]}),
        ("Consent page", {"fields": ["researcher_contact", "payment_info"]}),
        ("Platforms", {"fields": ["prolific_completion_url"]}),
    ]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return not StudySettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(CalibrationAttempt)
class CalibrationAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "kind", "score", "threshold", "passed", "n_clicks", "created_at"]
    list_filter = ["kind", "passed"]
    search_fields = ["task__worker__pseudonym", "task__topic__title"]
    readonly_fields = ["task", "kind", "score", "threshold", "passed", "viewport_w", "viewport_h", "n_clicks",
                       "head_in_box_share", "face_found_share", "points", "raw", "created_at"]
    list_select_related = ["task__worker", "task__topic"]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False
