"""Admin of the analysis results: start reward-model runs and figure jobs, read their output."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from collection.selection_html import selection_block
from jobs.html import job_anchor, short_time
from jobs.services import job_start, job_user_may_run

from .leaderboard_services import LEADERBOARD_WITHOUT_SELECTION
from .models import AnalysisFigure, Leaderboard, RewardModelRun, RewardPrediction, StudyPlan
from .result_html import intervals_by_setting, intervals_html, table2_html, verdict_html
from .services import DEFAULT_PARAMS, reward_model_run_start

#: Keys a reward-model run reads besides :data:`DEFAULT_PARAMS` (transfer runs, feature cache).
EXTRA_PARAM_KEYS = ("train_workers", "test_workers", "use_cache")


class RewardModelRunForm(forms.ModelForm):
    """Real fields for the settings of a run, their defaults filled in; ``params`` for the rest.

    Unknown keys (``{"tree": 50}``) are a field error rather than stored and ignored, and the
    stored ``params`` are the values the run uses (defaults included), so its page shows them.
    """

    seeds = forms.CharField(label="Seeds", help_text="Comma-separated integers; each reshuffles folds and forests.")
    trees = forms.IntegerField(min_value=1, max_value=5000, label="Trees per forest")
    selector_trees = forms.IntegerField(min_value=1, max_value=5000, label="Trees of the IF ranking forest")
    k = forms.IntegerField(min_value=1, label="Important features kept (k)")
    n_splits = forms.IntegerField(min_value=2, max_value=20, label="Folds")
    quality_filter = forms.BooleanField(label="Quality filter", required=False)
    worker_normalise = forms.BooleanField(label="Normalise features per worker", required=False)
    text = forms.BooleanField(label="Add the sentence-embedding text models (slower)", required=False)
    calibration = forms.ChoiceField(choices=[("platt", "Platt"), ("isotonic", "isotonic"), ("none", "none")],
                                    label="Calibration (grouped protocol)")
    calibration_fit = forms.ChoiceField(
        choices=[("crossfit", "across the outer folds (no refits)"), ("inner", "inner CV per fold (about 3x slower)")],
        label="Calibration fitted",
    )
    n_jobs = forms.IntegerField(min_value=1, max_value=64, label="Folds fitted in parallel")
    COMMON = ("seeds", "trees", "selector_trees", "k", "n_splits", "quality_filter", "worker_normalise", "text",
              "calibration", "calibration_fit", "n_jobs")

    class Meta:
        model = RewardModelRun
        fields = ["name", "selection", "params"]
        labels = {"params": "Other settings"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "params" not in self.fields:
            return
        for name in self.COMMON:
            field = self.fields[name]
            default = DEFAULT_PARAMS[name]
            field.initial = ", ".join(map(str, default)) if name == "seeds" else default
            shown = field.initial if not isinstance(default, bool) else ("on" if default else "off")
            field.help_text = (field.help_text + " " if field.help_text else "") + f"Default: {shown}."
        self.fields["params"].required = False
        self.fields["params"].initial = {}
        self.fields["params"].help_text = (
            "Other settings as a JSON object, e.g. {\"train_workers\": [...], \"test_workers\": [...]} for a "
            f"transfer run; allowed keys: {', '.join(EXTRA_PARAM_KEYS)}."
        )

    def clean_seeds(self) -> list[int]:
        raw = self.cleaned_data.get("seeds") or ""
        try:
            seeds = [int(part) for part in raw.replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError("Enter integers separated by commas, e.g. 0, 1, 2.") from None
        if not seeds or len(set(seeds)) != len(seeds):
            raise forms.ValidationError("Enter at least one seed, each once.")
        return seeds

    def clean(self) -> dict:
        data = super().clean()
        other = data.get("params") or {}
        if not isinstance(other, dict):
            self.add_error("params", 'Must be a JSON object such as {"use_cache": false}.')
            return data
        unknown = sorted(set(other) - set(EXTRA_PARAM_KEYS) - set(self.COMMON))
        if unknown:
            self.add_error("params", f"Unknown setting(s): {', '.join(unknown)}. Allowed here: "
                           f"{', '.join(EXTRA_PARAM_KEYS)}; the others have their own fields above.")
        repeated = sorted(set(other) & set(self.COMMON))
        if repeated:
            self.add_error("params", f"{', '.join(repeated)}: set above; do not repeat it here.")
        from .transfer_checks import transfer_worker_errors

        for field, message in transfer_worker_errors(other).items():
            self.add_error("params", f"{field}: {message}")
        if self.errors:
            return data
        data["params"] = {**{name: data[name] for name in self.COMMON}, **other}
        return data


@admin.action(description="Re-run selected reward-model evaluations", permissions=["run"])
def rerun(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for run in queryset:
        reward_model_run_start(run=run, user=request.user)
    modeladmin.message_user(request, f"Started {queryset.count()} job(s).")


def job_link(obj: RewardModelRun | Leaderboard) -> str:
    """Link to the job that computes ``obj``, with its status and progress (shared by the run admins)."""
    return job_anchor(obj.job) if obj.job_id else "–"


#: Labels of the parts of the reward-model stage (``run.timings["of which <setting>.<part>_s"]``).
TIMING_PARTS = {"selector": "IF ranking (summed over folds)", "models": "models (summed over folds)",
                "calibration": "calibration (summed over folds)"}
_STAGES = ("load + match + features", "text embeddings", "reward models", "transfer", "storing")
_PARTS = ("pairwise", "pointwise", "likert", "intervals")


def _timing_order(key: str) -> tuple:
    if not key.startswith("of which "):
        return (_STAGES.index(key) if key in _STAGES else len(_STAGES), 0, key)
    name = key.removeprefix("of which ")
    setting = name.split(".")[0].removesuffix("_s")
    return (_STAGES.index("reward models"), 1 + (_PARTS.index(setting) if setting in _PARTS else len(_PARTS)),
            "." in name, name)


def key_value_table(values: dict) -> str:
    """A two-column table of settings or seconds (lists and dicts as compact JSON)."""
    import json

    def text(value: object) -> str:
        if isinstance(value, dict | list):
            return json.dumps(value, default=str)
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, text(v)) for k, v in values.items()))
    return format_html('<table class="ifllm-kv"><tbody>{}</tbody></table>', rows)


def run_kind(run: RewardModelRun) -> str:
    """What a run holds: its settings come from its results, not the unused ``setting`` column."""
    settings = sorted({str(r.get("setting")) for r in run.results}) if run.results else []
    kind = "text reward model" if run.params.get("model_path") else "reward models"
    return f"{kind}: {' + '.join(settings)}" if settings else kind


@admin.action(description="Compare two selected runs side by side", permissions=["view"])
def compare_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    """Both runs in one table per setting and protocol (Δ between them per cell, calibration
    figures) and one full-width plot of both under the protocol their verdicts read."""
    from django.template.response import TemplateResponse

    from analysis.plots.results import interval_figure, svg_text

    from .result_html import compare_html, compare_plot_rows, paired_run_differences, plot_rows, verdict_html

    runs = list(queryset.order_by("pk")[:3])
    if len(runs) != 2:
        modeladmin.message_user(request, "Select exactly two runs to compare.", messages.WARNING)
        return None
    labels = [f"A (#{runs[0].pk})", f"B (#{runs[1].pk})"]
    rows = [plot_rows(run) for run in runs]
    columns = [
        {"run": run, "label": label, "kind": run_kind(run), "params": run.params,
         "verdict": verdict_html(intervals_by_setting(run))}
        for run, label in zip(runs, labels, strict=True)
    ]
    both = compare_plot_rows(labels[0], rows[0], labels[1], rows[1])
    context = {**modeladmin.admin_site.each_context(request), "title": "Compare reward-model runs",
               "columns": columns, "opts": modeladmin.model._meta,
               "table": compare_html(labels[0], rows[0], labels[1], rows[1], paired_run_differences(*runs)),
               "plot": mark_safe(svg_text(interval_figure(both, series="run"))) if both else "",
               }
    return TemplateResponse(request, "admin/analysis/rewardmodelrun/compare.html", context)


@admin.register(RewardModelRun)
class RewardModelRunAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["ifllm/admin_results.css"]}

    form = RewardModelRunForm
    list_display = ["id", "name", "job_link", "settings_kind", "selection", "n_samples", "created"]
    list_select_related = ["job", "selection"]
    #: ``alignment.admin`` adds "Build a preference dataset" (alignment depends on analysis, not back).
    actions = [rerun, compare_runs]

    def has_run_permission(self, request: HttpRequest) -> bool:
        return job_user_may_run(request.user, "analysis.reward_models")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        return ["name", "settings_kind", "data_selection", "settings_used", "job_link", "n_samples", "verdict",
                "intervals_table", "accuracy_plot", "table", "stage_timings", "report_summary", "data_version"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return self.get_readonly_fields(request, obj) or ["name", "selection", *RewardModelRunForm.COMMON, "params"]

    @admin.display(description="data")
    def data_selection(self, obj: RewardModelRun) -> str:
        """Which tasks the run used: its data selection, else what stood in for one."""
        quality = {**DEFAULT_PARAMS, **(obj.params or {})}.get("quality_filter")
        return selection_block(obj.selection, without=(
            "Every task not excluded by staff, then the paper's fixed quality filter on the feature table "
            "(response score ≥ 0.75, max-index score ≥ 0.3)." if quality else
            "Every task not excluded by staff; no quality filter."))

    @admin.display(description="settings used")
    def settings_used(self, obj: RewardModelRun) -> str:
        """The values the run used (defaults filled in), not the JSON it was started with."""
        params = {**DEFAULT_PARAMS, **(obj.params or {})} if not obj.params.get("model_path") else dict(obj.params)
        for key in ("train_workers", "test_workers"):  # a transfer's worker lists, shortened
            ids = params.get(key)
            if isinstance(ids, list) and len(ids) > 8:
                params[key] = f"{len(ids)} workers: {', '.join(map(str, ids[:6]))} … {ids[-1]}"
        return key_value_table(params)

    @admin.display(description="stage timings (s)")
    def stage_timings(self, obj: RewardModelRun) -> str:
        """Stages in the order they run; the reward-model stage split into its parts (PostgreSQL's
        jsonb stores keys sorted by length, so the stored order is not the run's)."""
        if not obj.timings:
            return "–"
        rows = {}
        for key in sorted(obj.timings, key=_timing_order):
            label = key.removeprefix("of which ")
            if key.startswith("of which "):
                setting, _, part = label.removesuffix("_s").partition(".")
                label = f"  {setting}: {TIMING_PARTS.get(part, part or 'wall')}"
            rows[label] = f"{obj.timings[key]:.1f}" if isinstance(obj.timings[key], int | float) else obj.timings[key]
        note = format_html('<p class="help">{}</p>', 'Parts marked "summed over folds" add up the folds fitted '
                           "in parallel, so they can exceed the wall time of their stage.")
        return format_html("{}{}", key_value_table(rows), note)

    @admin.display(description="matching and filtering")
    def report_summary(self, obj: RewardModelRun) -> str:
        """The report without what other fields already show (intervals: Table 2; timings)."""
        shown = ("intervals", "timings", "transfer", "transfer_workers_without_features", "data")
        report = {k: v for k, v in (obj.report or {}).items() if k not in shown}
        if not report:
            return "–"
        flat = {}
        for key, value in report.items():
            if isinstance(value, dict):
                flat.update({f"{key}: {k}": v for k, v in value.items()})
            else:
                flat[key] = value
        return key_value_table(flat)

    job_link = admin.display(description="job")(lambda self, obj: job_link(obj))
    created = admin.display(description="created", ordering="created_at")(lambda self, obj: short_time(obj.created_at))

    @admin.display(description="Does behaviour beat answer length?")
    def verdict(self, obj: RewardModelRun) -> str:
        """One sentence per setting from the worker intervals, and what the run could not use."""
        warnings = []
        missing = (obj.report or {}).get("transfer_workers_without_features") or []
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            warnings.append(f"{len(missing)} of the named workers have no features (no samples, or every task "
                            f"left out by the quality filter) and are not in the results: {shown}.")
        if obj.params.get("train_workers") and obj.results == [] and obj.report:
            warnings.append("No setting had enough labelled rows on both sides: the transfer produced no table.")
        warned = format_html_join("", '<p class="ifllm-warning">{}</p>', ((w,) for w in warnings))
        if not obj.report and not obj.results:
            return format_html("{}{}", warned, "–")
        return format_html("{}{}", warned, verdict_html(intervals_by_setting(obj)))

    @admin.display(description="accuracy and difference to length-only, 95 % intervals over workers")
    def intervals_table(self, obj: RewardModelRun) -> str:
        intervals = intervals_by_setting(obj)
        return intervals_html(intervals) if intervals else "–"

    @admin.display(description="Table 2 (spread over seeds)")
    def table(self, obj: RewardModelRun) -> str:
        if not obj.results:
            return format_html("<pre style='font-size:12px'>{}</pre>", obj.table_text or "–")
        if not any("accuracy_mean" in r for r in obj.results):
            return format_html('<p class="help">{}</p>', "A transfer run fits each model once per seed on the "
                               "training workers and scores the test workers: its results are the interval "
                               "tables above.")
        likert = obj.table_text.partition("Pointwise Likert regression")[2]
        extra = format_html("<p><strong>Pointwise Likert regression</strong>{}</p>", likert) if likert else ""
        return format_html("{}{}", table2_html(obj.results), extra)

    @admin.display(description="accuracy by model and protocol")
    def accuracy_plot(self, obj: RewardModelRun) -> str:
        from analysis.plots.results import interval_figure, svg_text

        from .result_html import plot_rows

        rows = plot_rows(obj)
        if not rows:
            return "–"
        return mark_safe(svg_text(interval_figure(rows)))

    @admin.display(description="setting")
    def settings_kind(self, obj: RewardModelRun) -> str:
        return run_kind(obj)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        """A run's page is read-only: no Save buttons that would save nothing (Delete stays)."""
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                         "show_save_and_add_another": False}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: RewardModelRun, form, change: bool) -> None:
        if change:
            return
        reward_model_run_start(run=obj, user=request.user)  # saves it (defaults filled) and starts its job
        self.message_user(request, format_html("Reward models started as {}; its page follows it.",
                                               job_anchor(obj.job)))


@admin.register(RewardPrediction)
class RewardPredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "turn", "model_name", "protocol", "prob_1", "predicted", "p_winner", "label"]
    list_filter = ["run", "model_name", "protocol"]
    raw_id_fields = ["turn"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only reward-model jobs make predictions

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
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
        )


# --------------------------------------------------------------------------- leaderboards
class LeaderboardForm(forms.ModelForm):
    """Typed parameters of a leaderboard job; implicit sources need predictions to exist."""

    sources = forms.MultipleChoiceField(
        choices=Leaderboard.Source.choices, initial=["explicit"], widget=forms.CheckboxSelectMultiple,
    )
    rounds = forms.IntegerField(min_value=50, max_value=10_000, initial=1000)

    class Meta:
        model = Leaderboard
        fields = ["name", "sources", "style_control", "reward_run", "reward_model", "reward_protocol", "soft",
                  "rounds", "seed", "selection"]

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
    list_display = ["id", "name", "sources", "style_control", "selection", "n_votes", "job_link", "created_at", "page"]
    actions = [leaderboard_recompute]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return list(LeaderboardForm.Meta.fields) if obj is None else self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        return [*LeaderboardForm.Meta.fields, "data_selection", "job_link", "n_votes", "page", "table"]

    @admin.display(description="data")
    def data_selection(self, obj: Leaderboard) -> str:
        return selection_block(obj.selection, without=LEADERBOARD_WITHOUT_SELECTION)

    job_link = admin.display(description="job")(lambda self, obj: job_link(obj))

    @admin.display(description="page")
    def page(self, obj: Leaderboard) -> str:
        return format_html('<a href="{}?pk={}">view</a>', reverse("analysis:leaderboard"), obj.pk)

    @admin.display(description="table")
    def table(self, obj: Leaderboard) -> str:
        return format_html("<pre style='font-size:12px'>{}</pre>", obj.table_text or "–")

    def save_model(self, request: HttpRequest, obj: Leaderboard, form, change: bool) -> None:
        from .leaderboard_services import leaderboard_start

        if change:
            return
        obj.created_by = request.user
        obj.save()
        leaderboard_start(leaderboard=obj, user=request.user)


class StudyPlanForm(forms.ModelForm):
    """Typed parameters of a study-plan job; the sizes text is checked before anything starts."""

    repeats = forms.IntegerField(min_value=2, max_value=50, initial=5)
    trees = forms.IntegerField(min_value=10, max_value=1000, initial=50)

    class Meta:
        model = StudyPlan
        fields = ["name", "mode", "repeats", "sizes", "trees", "quality_filter"]

    def clean_sizes(self) -> str:
        from .plan_services import parse_sizes

        value = self.cleaned_data.get("sizes", "")
        try:
            parse_sizes(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return value


@admin.register(StudyPlan)
class StudyPlanAdmin(admin.ModelAdmin):
    """Adding a plan starts its job; the page shows the answer, the figure and the points."""

    form = StudyPlanForm
    list_display = ["id", "name", "mode", "repeats", "workers_needed", "job_link", "created_at", "page"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return list(StudyPlanForm.Meta.fields) if obj is None else self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        return [*StudyPlanForm.Meta.fields, "job_link", "workers_needed", "page", "table"]

    job_link = admin.display(description="job")(lambda self, obj: job_link(obj))

    @admin.display(description="page")
    def page(self, obj: StudyPlan) -> str:
        return format_html('<a href="{}?pk={}">view</a>', reverse("analysis:plan"), obj.pk)

    @admin.display(description="table")
    def table(self, obj: StudyPlan) -> str:
        return format_html("<pre style='font-size:12px'>{}</pre>", obj.table_text or "–")

    def save_model(self, request: HttpRequest, obj: StudyPlan, form, change: bool) -> None:
        from .plan_services import study_plan_start

        if change:
            return
        obj.created_by = request.user
        obj.save()
        study_plan_start(plan=obj, user=request.user)
