"""Admin of the analysis results: start reward-model runs and figure jobs, read their output."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from jobs.services import job_start, job_user_may_run

from .models import AnalysisFigure, Leaderboard, RewardModelRun, RewardPrediction
from .services import DEFAULT_PARAMS


class RewardModelRunForm(forms.ModelForm):
    class Meta:
        model = RewardModelRun
        fields = ["name", "params"]
        help_texts = {"params": f"Defaults: {DEFAULT_PARAMS}"}


@admin.action(
    description="Build a preference dataset from the selected runs' out-of-fold predictions", permissions=["build"]
)
def build_dataset(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    from alignment.services import preference_dataset_build

    for run in queryset:
        try:
            ds = preference_dataset_build(name="", source="reward_run", reward_run=run, user=request.user)
        except ValueError as exc:
            modeladmin.message_user(request, f"{run}: {exc}.", messages.WARNING)
            continue
        message = f"Dataset {ds.pk} built from {ds.reward_model} ({ds.reward_protocol}): {ds.counts}."
        modeladmin.message_user(request, message)


@admin.action(description="Re-run selected reward-model evaluations", permissions=["run"])
def rerun(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for run in queryset:
        job_start(kind="analysis.reward_models", params={"run_pk": run.pk}, user=request.user)
    modeladmin.message_user(request, f"Started {queryset.count()} job(s).")


def job_link(obj: RewardModelRun | Leaderboard) -> str:
    """Link to the job that computes ``obj``, with its status and progress (shared by the run admins)."""
    if not obj.job_id:
        return "–"
    url = reverse("admin:jobs_job_change", args=[obj.job_id])
    return format_html('<a href="{}">{} {}%</a>', url, obj.job.status, obj.job.progress)


@admin.register(RewardModelRun)
class RewardModelRunAdmin(admin.ModelAdmin):
    form = RewardModelRunForm
    list_display = ["id", "name", "setting", "n_samples", "job_link", "created_at"]
    list_filter = ["setting"]
    actions = [build_dataset, rerun]

    def has_build_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("alignment.add_preferencedataset")

    def has_run_permission(self, request: HttpRequest) -> bool:
        return job_user_may_run(request.user, "analysis.reward_models")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        if obj is None:
            return []
        return ["name", "params", "job_link", "n_samples", "table", "report", "timings", "data_version"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        return self.get_readonly_fields(request, obj) or ["name", "params"]

    job_link = admin.display(description="job")(lambda self, obj: job_link(obj))

    @admin.display(description="Table 2")
    def table(self, obj: RewardModelRun) -> str:
        return format_html("<pre style='font-size:12px'>{}</pre>", obj.table_text or "–")

    def save_model(self, request: HttpRequest, obj: RewardModelRun, form, change: bool) -> None:  # noqa: ANN001
        if change:
            return
        obj.params = {**DEFAULT_PARAMS, **(obj.params or {})}
        obj.created_by = request.user
        obj.save()
        obj.job = job_start(kind="analysis.reward_models", params={"run_pk": obj.pk}, user=request.user)
        obj.save(update_fields=["job"])


@admin.register(RewardPrediction)
class RewardPredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "turn", "model_name", "protocol", "prob_1", "predicted", "p_winner", "label"]
    list_filter = ["run", "model_name", "protocol"]
    raw_id_fields = ["turn"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.action(description="Render the behaviour figures again (job)", permissions=["render"])
def render_figures(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    job = job_start(kind="analysis.figures", params={}, user=request.user)
    modeladmin.message_user(request, f"Job {job.pk} started.")


@admin.register(AnalysisFigure)
class AnalysisFigureAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "title", "job", "created_at", "thumb"]
    list_filter = ["name"]
    actions = [render_figures]
    fields = ["name", "title", "job", "created_at", "image"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnalysisFigure]:
        return super().get_queryset(request).defer("png", "svg")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_render_permission(self, request: HttpRequest) -> bool:
        return job_user_may_run(request.user, "analysis.figures")

    @admin.display(description="")
    def thumb(self, obj: AnalysisFigure) -> str:
        return format_html('<img src="{}" style="height:60px">', reverse("analysis:figure_png", args=[obj.pk]))

    @admin.display(description="figure")
    def image(self, obj: AnalysisFigure) -> str:
        return format_html(
            '<img src="{}" style="max-width:900px"><br><a href="{}">SVG</a>',
            reverse("analysis:figure_png", args=[obj.pk]), reverse("analysis:figure_svg", args=[obj.pk]),
        )  # fmt: skip


# --------------------------------------------------------------------------- leaderboards
class LeaderboardForm(forms.ModelForm):
    """Typed parameters of a leaderboard job; implicit sources need predictions to exist."""

    sources = forms.MultipleChoiceField(
        choices=Leaderboard.Source.choices, initial=["explicit"], widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    rounds = forms.IntegerField(min_value=50, max_value=10_000, initial=1000)

    class Meta:
        model = Leaderboard
        fields = ["name", "sources", "style_control", "reward_run", "reward_model", "reward_protocol", "soft",
                  "rounds", "seed"]  # fmt: skip

    def clean(self) -> dict:
        from .leaderboard_selectors import reward_prediction_choices, reward_run_latest

        data = super().clean()
        if set(data.get("sources") or []) & {"implicit", "mixed"}:
            run = data.get("reward_run") or reward_run_latest()
            if run is None:
                self.add_error("reward_run", "Implicit votes need a reward-model run with predictions; none exists.")
            elif (data.get("reward_model"), data.get("reward_protocol")) not in reward_prediction_choices(run=run):
                self.add_error("reward_model", f"Run {run.pk} has no predictions of this model and protocol.")
        return data


@admin.action(description="Compute the selected leaderboards again (job)", permissions=["add"])
def leaderboard_recompute(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    from .leaderboard_services import leaderboard_start

    for board in queryset:
        leaderboard_start(leaderboard=board, user=request.user)
    modeladmin.message_user(request, f"Started {queryset.count()} job(s).")


@admin.register(Leaderboard)
class LeaderboardAdmin(admin.ModelAdmin):
    form = LeaderboardForm
    list_display = ["id", "name", "sources", "style_control", "n_votes", "job_link", "created_at", "page"]
    actions = [leaderboard_recompute]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        return list(LeaderboardForm.Meta.fields) if obj is None else self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        if obj is None:
            return []
        return [*LeaderboardForm.Meta.fields, "job_link", "n_votes", "page", "table"]

    job_link = admin.display(description="job")(lambda self, obj: job_link(obj))

    @admin.display(description="page")
    def page(self, obj: Leaderboard) -> str:
        return format_html('<a href="{}?pk={}">view</a>', reverse("analysis:leaderboard"), obj.pk)

    @admin.display(description="table")
    def table(self, obj: Leaderboard) -> str:
        return format_html("<pre style='font-size:12px'>{}</pre>", obj.table_text or "–")

    def save_model(self, request: HttpRequest, obj: Leaderboard, form, change: bool) -> None:  # noqa: ANN001
        from .leaderboard_services import leaderboard_start

        if change:
            return
        obj.created_by = request.user
        obj.save()
        leaderboard_start(leaderboard=obj, user=request.user)
