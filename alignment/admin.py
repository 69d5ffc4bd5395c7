"""Admin of the alignment app: datasets, training runs and evaluations are started from here.

Adding a row starts its work (the add forms call the services); actions cancel, resume and
export.  Everything long runs as a Job on the ``gpu`` queue.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from analysis import admin as analysis_admin
from analysis.models import RewardModelRun
from collection.selection_html import selection_block
from jobs.exceptions import JobStateError
from jobs.html import job_anchor, short_time
from jobs.services import job_cancel, job_user_may_run

from .checks import check_evaluation, check_training, config_defaults
from .models import EvaluationRun, PreferenceDataset, PreferencePair, TrainingRun
from .services import (
    evaluation_run_start,
    human_batch_export,
    models_dir,
    preference_dataset_build,
    preference_dataset_export,
    reward_run_labeller,
    runs_dir,
    smoke_model_make,
    training_run_resume,
    training_run_start,
)
from .training.config import EVALUATION_DEFAULTS


class PreferenceDatasetForm(forms.ModelForm):
    class Meta:
        model = PreferenceDataset
        fields = ["name", "source", "reward_run", "reward_model", "reward_protocol", "selection"]
        help_texts = {"reward_model": "Empty: RF + IF, else the run's text reward model (grouped predictions)."}

    def clean(self) -> dict:
        """Refuse here what the build would refuse, so staff get a form error, not a 500."""
        data = super().clean()
        run = data.get("reward_run")
        if data.get("source") != PreferenceDataset.Source.REWARD_RUN:
            return data
        if run is None:
            self.add_error("reward_run", "Choose the reward-model run whose predictions label the pairs.")
        elif not data.get("reward_model") and not data.get("reward_protocol") and reward_run_labeller(run) is None:
            self.add_error("reward_run", "This run has no RF + IF or text reward-model predictions.")
        return data


@admin.action(description="Export selected datasets (JSONL + Parquet + card)", permissions=["export"])
def export_datasets(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for dataset in queryset:
        path = preference_dataset_export(dataset=dataset, path=runs_dir() / "datasets" / f"dataset-{dataset.pk}")
        modeladmin.message_user(request, f"{dataset}: written to {path} on the server (training runs read it there)")


@admin.action(description="Download selected datasets (zip: JSONL + Parquet + card)", permissions=["export"])
def download_datasets(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    """The same files as the export, sent to the browser (nothing is kept on the server)."""
    import tempfile

    from jobs.downloads import zip_response

    with tempfile.TemporaryDirectory(prefix="ifllm-datasets-") as tmp:
        folders = {}
        for dataset in queryset.order_by("pk"):
            name = f"dataset-{dataset.pk}"
            folders[name] = preference_dataset_export(dataset=dataset, path=Path(tmp) / name)
        filename = f"{next(iter(folders))}.zip" if len(folders) == 1 else "preference-datasets.zip"
        return zip_response(folders, filename)  # zipped into a spooled file before the folder goes


@admin.register(PreferenceDataset)
class PreferenceDatasetAdmin(admin.ModelAdmin):
    form = PreferenceDatasetForm
    list_display = ["id", "name", "source", "reward_run", "reward_model", "reward_protocol", "selection", "counts",
                    "created_at"]
    list_filter = ["source"]
    search_fields = ["name"]
    actions = [download_datasets, export_datasets]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.export_dataset")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return ["name", "source", "reward_run", "reward_model", "reward_protocol", "data_selection", "counts",
                "params"] if obj else []

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return self.get_readonly_fields(request, obj) or list(PreferenceDatasetForm.Meta.fields)

    @admin.display(description="data")
    def data_selection(self, obj: PreferenceDataset) -> str:
        return selection_block(obj.selection, without="Pairs from every task not excluded by staff; QC thresholds "
                               "not applied.")

    def save_model(self, request: HttpRequest, obj: PreferenceDataset, form, change: bool) -> None:
        if change:
            return
        built = preference_dataset_build(
            name=obj.name, source=obj.source, reward_run=obj.reward_run, reward_model=obj.reward_model,
            reward_protocol=obj.reward_protocol, user=request.user, selection=obj.selection,
        )
        obj.pk = built.pk
        obj.counts = built.counts


@admin.register(PreferencePair)
class PreferencePairAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["ifllm/admin_results.css"]}

    list_display = ["id", "dataset", "turn", "split", "chosen_side", "confidence"]
    list_filter = ["dataset", "split", "chosen_side"]
    search_fields = ["prompt"]
    raw_id_fields = ["turn"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # pairs are made by building a dataset

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _answer_text(answer: str | None) -> str:
    """A generated answer as shown: its Markdown rendered and sanitised (collection.markdown_render),
    an empty or blank one says so (a blank cell reads as a bug)."""
    from collection.markdown_render import render_markdown

    if answer is None:
        return "(not generated yet)"
    if not answer:
        return "(empty answer)"
    if not answer.strip():
        return f"(only whitespace: {len(answer)} characters)"
    return mark_safe(f'<div class="md-answer">{render_markdown(answer)}</div>')


def _read_only_change_view(admin_cls: type) -> type:
    """A run's page is read-only once started: no Save buttons that would save nothing."""
    original = admin_cls.change_view

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                         "show_save_and_add_another": False}
        return original(self, request, object_id, form_url, extra_context)

    admin_cls.change_view = change_view
    return admin_cls


def _default_help(value: object) -> str:
    return f"Default: {json.dumps(value)}."


class ConfigFieldsMixin:
    """Real form fields for the common settings of a JSON column, plus a JSON field for the rest.

    ``COMMON`` maps a setting to its form field; the form starts with the defaults filled in,
    so staff see what a run uses. ``clean_json_settings`` merges both into one dict.
    """

    COMMON: tuple[str, ...] = ()  # names of form fields declared on the form class
    JSON_FIELD = "config"

    def _add_common_fields(self, defaults: dict) -> None:
        if self.JSON_FIELD not in self.fields:
            return  # a finished run's page: every field is read-only
        for name in self.COMMON:
            field = self.fields[name]
            field.required = False
            field.initial = defaults.get(name)
            field.help_text = (field.help_text + " " if field.help_text else "") + _default_help(defaults.get(name))
        json_field = self.fields[self.JSON_FIELD]
        json_field.required = False
        json_field.initial = {}
        rest = {k: v for k, v in defaults.items() if k not in self.COMMON}
        json_field.help_text = (
            "Other settings as a JSON object; unknown keys are refused. Defaults: "
            + json.dumps(rest, ensure_ascii=False)
        )

    def _merged(self, data: dict, keep: set[str] | None = None) -> dict:
        other = data.get(self.JSON_FIELD) or {}
        if not isinstance(other, dict):
            self.add_error(self.JSON_FIELD, "Must be a JSON object such as {\"seed\": 1}.")
            return {}
        merged = dict(other)
        for name in self.COMMON:
            if keep is not None and name not in keep:
                continue
            value = data.get(name)
            if value is None:
                continue
            if name in other and other[name] != value:
                self.add_error(self.JSON_FIELD, f"{name} is set above; do not repeat it here.")
            merged[name] = value
        return merged


#: Yes/No for a boolean setting; an absent value (a script posting only some fields) is None,
#: which keeps the setting's default rather than turning it off as an unticked checkbox would.
class _YesNoSelect(forms.NullBooleanSelect):
    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.choices = [("true", "Yes"), ("false", "No")]


_YES_NO = _YesNoSelect()


class TrainingRunForm(ConfigFieldsMixin, forms.ModelForm):
    lr = forms.FloatField(label="Learning rate", min_value=0)
    epochs = forms.IntegerField(min_value=1)
    batch_size = forms.IntegerField(min_value=1, label="Batch size (per micro-batch)")
    grad_accum = forms.IntegerField(min_value=1, label="Gradient accumulation")
    warmup_steps = forms.IntegerField(min_value=0, label="Warm-up steps",
                                      help_text="Scaled to a tenth of the run when not shorter than it.")
    max_length = forms.IntegerField(min_value=8, label="Max tokens (prompt + answer)")
    max_prompt_length = forms.IntegerField(min_value=1, label="Max prompt tokens",
                                           help_text="Must be below max tokens.")
    beta = forms.FloatField(min_value=0, label="β (DPO/rDPO only)")
    nll_weight = forms.FloatField(min_value=0, label="NLL weight (DPO/rDPO only)")
    precompute_reference = forms.NullBooleanField(
        label="Precompute reference log-probs (DPO/rDPO only)", widget=_YES_NO,
        help_text="One no-grad pass of the SFT model before training, cached on the dataset; "
                  "no reference forward in each step and no reference in memory.")
    packing = forms.NullBooleanField(
        label="Padding-free packing", widget=_YES_NO,
        help_text="Sequences side by side in a row instead of padded; padded for models that cannot.")
    gradient_checkpointing = forms.NullBooleanField(
        label="Activation checkpointing", widget=_YES_NO,
        help_text="Recompute activations in the backward pass: less memory, slower steps.")
    start_anyway = forms.BooleanField(
        required=False, label="Start even if too short",
        help_text="A run whose learning rate × optimizer steps is too small to move the model is refused "
                  "unless this is ticked.")
    COMMON = ("lr", "epochs", "batch_size", "grad_accum", "warmup_steps", "max_length", "max_prompt_length", "beta",
              "nll_weight", "precompute_reference", "packing", "gradient_checkpointing")
    DPO_ONLY = {"beta", "nll_weight", "precompute_reference"}

    class Meta:
        model = TrainingRun
        fields = ["name", "method", "base_model", "dataset", "sft_run", "lr", "epochs", "batch_size", "grad_accum",
                  "warmup_steps", "max_length", "max_prompt_length", "beta", "nll_weight", "precompute_reference",
                  "packing", "gradient_checkpointing", "config", "start_anyway"]
        labels = {"config": "Other settings", "sft_run": "SFT run"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        defaults = {**config_defaults(TrainingRun.Method.SFT), **config_defaults(TrainingRun.Method.DPO)}
        self._add_common_fields(defaults)
        if "sft_run" not in self.fields:
            return
        self.fields["sft_run"].queryset = TrainingRun.objects.filter(method=TrainingRun.Method.SFT)
        self.fields["sft_run"].help_text = "Only SFT runs; the policy starts from its final checkpoint."
        self.fields["base_model"].required = False  # DPO/rDPO: the SFT run's base model
        self.fields["base_model"].help_text = (
            "SFT: local folder of a checkpoint (config.json + weights); DPO/rDPO: leave empty (the SFT run's). "
            "None yet? Make the smoke-test model from the Training runs page or with: manage.py make_smoke_model"
        )

    def clean(self) -> dict:
        """Refuse here what the job would fail on, so staff get field errors, not a failed job."""
        data = super().clean()
        method = data.get("method")
        if not method:
            return data
        keep = set(self.COMMON) - (self.DPO_ONLY if method == TrainingRun.Method.SFT else set())
        config = self._merged(data, keep)
        data["config"] = config
        errors = check_training(method=method, base_model=data.get("base_model", ""), dataset=data.get("dataset"),
                                sft_run=data.get("sft_run"), config=config)
        for field, message in errors.items():
            if field not in self.errors:
                self.add_error(field, message)
        if not self.errors and not data.get("start_anyway"):
            from .checks import training_length_warning

            short = training_length_warning(method=method, dataset=data.get("dataset"), config=config)
            if short:
                self.add_error("start_anyway", f"This run is {short} Tick this box to start it as it is.")
        return data


@admin.action(description="Cancel selected runs", permissions=["run"])
def cancel_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for run in queryset.exclude(job=None):
        try:
            job_cancel(job=run.job, user=request.user)
        except JobStateError:
            modeladmin.message_user(request, f"{run}: its job has already finished.", messages.WARNING)


@admin.action(description="Resume selected runs (from their newest checkpoint)", permissions=["run"])
def resume_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for run in queryset:
        try:
            job = training_run_resume(run=run, user=request.user)
        except ValueError as exc:
            modeladmin.message_user(request, f"{run}: {exc}.", messages.ERROR)
            continue
        modeladmin.message_user(request, format_html("{}: resumed as {}.", run, job_anchor(job)))


#: The summary figures of a run, as (metrics key, short label): the list's columns and the comparison.
SUMMARY = (("loss/train", "loss"), ("valid/reward_accuracy", "val. acc."), ("valid/reward_margin", "val. margin"),
           ("valid/nll", "val. NLL"))


def _summary_value(run: TrainingRun, key: str) -> str:
    value = (run.metrics or {}).get(key)
    return f"{value:.3g}" if isinstance(value, (int, float)) and value == value else "–"


@admin.action(description="Overlay the curves of the selected runs (2 to 4)", permissions=["view"])
def compare_curves(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    from django.template.response import TemplateResponse

    from .training.plots import training_overlay_svg

    runs = list(queryset.order_by("pk")[:5])
    if not 2 <= len(runs) <= 4:
        modeladmin.message_user(request, "Select two to four runs to overlay their curves.", messages.WARNING)
        return None
    labels = {run.pk: f"#{run.pk} {run}"[:40] for run in runs}
    histories = {labels[run.pk]: (run.metrics or {}).get("history") or [] for run in runs}
    rows = [{"run": run, "label": labels[run.pk], "steps": TrainingRunAdmin.step(None, run),
             "lr": {**config_defaults(run.method), **run.config}.get("lr"),
             "values": [_summary_value(run, key) for key, _ in SUMMARY]} for run in runs]
    context = {**modeladmin.admin_site.each_context(request), "title": "Training curves overlaid",
               "svg": mark_safe(training_overlay_svg(histories)),
               "rows": rows, "columns": [label for _, label in SUMMARY], "opts": modeladmin.model._meta}
    return TemplateResponse(request, "admin/alignment/trainingrun/compare.html", context)


@admin.action(description="Cancel selected evaluations", permissions=["run"])
def cancel_evaluations(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    cancel_runs(modeladmin, request, queryset)


@admin.register(TrainingRun)
@_read_only_change_view
class TrainingRunAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["ifllm/admin_results.css"]}

    form = TrainingRunForm
    change_list_template = "admin/alignment/trainingrun/change_list.html"
    # Job and step before the long columns, dates short: they stay in view at 1400 px.
    list_display = ["id", "name", "method", "job_state", "step", "summary", "starts_from", "dataset", "created"]
    list_filter = ["method"]
    search_fields = ["name", "base_model"]
    list_select_related = ["job", "dataset", "sft_run"]
    actions = [cancel_runs, resume_runs, compare_curves]

    def has_run_permission(self, request: HttpRequest) -> bool:
        return job_user_may_run(request.user, "alignment.train")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        return ["name", "method", "base_model", "dataset", "sft_run", "job_state", "step", "curves", "config_used",
                "warnings", "output_dir", "final_metrics"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return self.get_readonly_fields(request, obj) or list(self.form.Meta.fields)

    def get_urls(self) -> list:
        from django.urls import path

        extra = [path("smoke-model/", self.admin_site.admin_view(self.smoke_model_view), name="alignment_smoke_model")]
        return extra + super().get_urls()

    def smoke_model_view(self, request: HttpRequest) -> HttpResponse:
        """Make the tiny smoke-test model (seconds) and open the SFT form with its path filled in."""
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import redirect
        from django.urls import reverse
        from django.utils.http import urlencode

        if request.method != "POST":
            return redirect("admin:alignment_trainingrun_changelist")
        if not self.has_add_permission(request):
            raise PermissionDenied
        path, made = smoke_model_make()
        if made:
            self.message_user(request, f"Smoke-test model (random weights, only for trying the loop) made at {path}.")
        query = urlencode({"method": TrainingRun.Method.SFT, "base_model": str(path),
                           "name": "SFT of the smoke-test model", **SMOKE_CONFIG})
        return redirect(reverse("admin:alignment_trainingrun_add") + "?" + query)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from .training.smoke import SMOKE_NAME

        context = {"smoke_exists": (models_dir() / SMOKE_NAME / "config.json").exists(),
                   "smoke_path": models_dir() / SMOKE_NAME, "has_runs": TrainingRun.objects.exists(),
                   **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="base model")
    def base_model_short(self, obj: TrainingRun) -> str:
        label = Path(obj.base_model).name or obj.base_model
        return f"{label} (smoke test)" if "smoke-test" in label else label

    @admin.display(description="starts from")
    def starts_from(self, obj: TrainingRun) -> str:
        """SFT: its base model; DPO/rDPO: the SFT run (whose final checkpoint is policy and reference).
        One column instead of two keeps the list within 1400 px."""
        if obj.sft_run_id:
            return f"SFT run: {obj.sft_run}"
        return self.base_model_short(obj)

    @admin.display(description="job")
    def job_state(self, obj: TrainingRun) -> str:
        return job_anchor(obj.job) if obj.job else "–"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: TrainingRun) -> str:
        return short_time(obj.created_at)

    @admin.display(description="step")
    def step(self, obj: TrainingRun) -> str:
        return f"{obj.metrics.get('step', 0)}/{obj.metrics.get('total_steps', '?')}"

    @admin.display(description="loss / val. acc · margin · NLL")
    def summary(self, obj: TrainingRun) -> str:
        """The last training loss and the last epoch's validation figures in one narrow cell."""
        values = [_summary_value(obj, key) for key, _ in SUMMARY]
        if all(v == "–" for v in values):
            return "–"
        warned = " ⚠" if (obj.metrics or {}).get("warnings") else ""
        return format_html('<span title="last training loss">{}</span>{}<br><span title="validation reward accuracy · '
                           'reward margin · NLL per token (last epoch)">{} · {} · {}</span>', values[0], warned,
                           *values[1:])

    @admin.display(description="config used")
    def config_used(self, obj: TrainingRun) -> str:
        used = {**config_defaults(obj.method), **obj.config}
        rows = ((k, json.dumps(v), "" if k not in obj.config else "set for this run") for k, v in used.items())
        return format_html(
            '<table class="ifllm-kv">{}</table>',
            format_html_join("", "<tr><th>{}</th><td><code>{}</code></td><td>{}</td></tr>", rows),
        )

    @admin.display(description="warnings")
    def warnings(self, obj: TrainingRun) -> str:
        items = obj.metrics.get("warnings") or []
        return format_html_join("", "<p class='errornote'>{}</p>", ((w,) for w in items)) if items else "–"

    @admin.display(description="final metrics")
    def final_metrics(self, obj: TrainingRun) -> str:
        rows = [(k, f"{v:.4g}" if isinstance(v, float) else v) for k, v in obj.metrics.items()
                if k not in {"history", "warnings"}]
        return format_html('<table class="ifllm-kv">{}</table>',
                           format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)) if rows else "–"

    @admin.display(description="curves")
    def curves(self, obj: TrainingRun) -> str:
        from .training.plots import training_curves_svg

        history = obj.metrics.get("history") or []
        if not history:
            return "– (the curves appear after the first optimizer steps)"
        return mark_safe(training_curves_svg(history))

    def save_model(self, request: HttpRequest, obj: TrainingRun, form, change: bool) -> None:
        if change:
            return
        run = training_run_start(
            method=obj.method, base_model=obj.base_model, dataset=obj.dataset, sft_run=obj.sft_run,
            config=obj.config, name=obj.name, user=request.user,
        )
        obj.pk = run.pk
        self.message_user(request, format_html("Training started as {}; its page shows the progress.",
                                               job_anchor(run.job)))


#: Settings the smoke-test SFT form starts with: a few minutes on a CPU.
SMOKE_CONFIG = {"epochs": 1, "batch_size": 4, "grad_accum": 1, "max_length": 128, "max_prompt_length": 64, "lr": 1e-3,
                "warmup_steps": 0}


@admin.action(description="Download Table 3 as CSV", permissions=["view"])
def download_table(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    out = io.StringIO()
    rows = [{"evaluation": run.pk, **row} for run in queryset for row in run.table]
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="table3.csv"'
    return response


@admin.action(description="Export a human-evaluation batch (MTurk CSV + HTML template)", permissions=["export"])
def export_human_batch(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for run in queryset:
        try:
            folder = human_batch_export(evaluation=run)
        except ValueError as exc:
            modeladmin.message_user(request, f"{run}: {exc}", messages.WARNING)
        else:
            modeladmin.message_user(
                request, f"{run}: batch.csv, template.html and key.csv written to {folder}. Import the "
                f"results with: manage.py import_human_eval {run.pk} RESULTS.csv"
            )


class EvaluationRunForm(ConfigFieldsMixin, forms.ModelForm):
    n_queries = forms.IntegerField(min_value=1, label="Test queries")
    max_new_tokens = forms.IntegerField(min_value=1, label="Max new tokens per answer")
    seed = forms.IntegerField(min_value=0)
    COMMON = ("n_queries", "max_new_tokens", "seed")
    JSON_FIELD = "params"
    DEFAULTS = EVALUATION_DEFAULTS

    class Meta:
        model = EvaluationRun
        fields = ["name", "sft_run", "aligned_run", "judge", "n_queries", "max_new_tokens", "seed", "params"]
        labels = {"params": "Other settings", "sft_run": "SFT run", "aligned_run": "Aligned run"}

    def __init__(self, *args, **kwargs) -> None:
        from collection.models import LLMModel

        super().__init__(*args, **kwargs)
        self._add_common_fields(self.DEFAULTS)
        if "params" not in self.fields:
            return
        self.fields["params"].help_text = "Other settings as a JSON object (none are used today)."
        self.fields["sft_run"].queryset = TrainingRun.objects.filter(method=TrainingRun.Method.SFT)
        self.fields["aligned_run"].queryset = TrainingRun.objects.exclude(method=TrainingRun.Method.SFT)
        self.fields["judge"].queryset = LLMModel.objects.filter(can_judge=True)
        self.fields["judge"].required = True
        self.fields["judge"].help_text = "Models marked “judge” in the LLM registry."

    def clean(self) -> dict:
        data = super().clean()
        params = self._merged(data)
        unknown = sorted(set(params) - set(self.DEFAULTS))
        if unknown:
            self.add_error("params", f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(self.DEFAULTS)}")
            return data
        data["params"] = params
        if self.errors:
            return data
        errors = check_evaluation(sft_run=data.get("sft_run"), aligned_run=data.get("aligned_run"),
                                  judge=data.get("judge"), params=params)
        for field, message in errors.items():
            self.add_error(field, message)
        return data


@admin.register(EvaluationRun)
@_read_only_change_view
class EvaluationRunAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["ifllm/admin_results.css"]}

    form = EvaluationRunForm
    list_display = ["id", "name", "job_state", "sft_run", "aligned_run", "judge", "created"]
    list_select_related = ["job", "sft_run", "aligned_run", "judge"]
    actions = [download_table, export_human_batch, cancel_evaluations]

    def has_run_permission(self, request: HttpRequest) -> bool:
        return job_user_may_run(request.user, "alignment.evaluate")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.export_dataset")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        return ["name", "sft_run", "aligned_run", "judge", "params_used", "job_state", "win_chart", "table_html",
                "answers", "human_eval"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return self.get_readonly_fields(request, obj) or list(self.form.Meta.fields)

    @admin.display(description="job")
    def job_state(self, obj: EvaluationRun) -> str:
        return job_anchor(obj.job) if obj.job else "–"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: EvaluationRun) -> str:
        return short_time(obj.created_at)

    @admin.display(description="settings used")
    def params_used(self, obj: EvaluationRun) -> str:
        used = {**EvaluationRunForm.DEFAULTS, **obj.params}
        return format_html('<table class="ifllm-kv">{}</table>', format_html_join(
            "", "<tr><th>{}</th><td><code>{}</code></td></tr>", ((k, json.dumps(v)) for k, v in used.items())))

    @admin.display(description="Table 3")
    def table_html(self, obj: EvaluationRun) -> str:
        if not obj.table:
            return "–"
        cols = list(obj.table[0])
        # A column with one text value in every row (the reward source) is said once, above the
        # table: Table 3 then fits 1400 px; the rest scrolls inside its box, never the page.
        constant = [c for c in cols if len(obj.table) > 1 and isinstance(obj.table[0][c], str)
                    and all(row.get(c) == obj.table[0][c] for row in obj.table)]
        cols = [c for c in cols if c not in constant]
        caption = format_html_join("; ", "{}: {}", ((c.replace("_", " "), obj.table[0][c]) for c in constant))
        head = format_html_join("", "<th>{}</th>", ((c.replace("_", " "),) for c in cols))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((_fmt(row.get(c)),) for c in cols)),) for row in obj.table),
        )
        return format_html('<div class="ifllm-scroll"><table class="ifllm-results"><caption>{}</caption><thead><tr>{}'
                           "</tr></thead><tbody>{}</tbody></table></div>", caption, head, body)

    @admin.display(description="wins, ties, losses")
    def win_chart(self, obj: EvaluationRun) -> str:
        from .training.plots import win_tie_loss_svg

        if not obj.table:
            return "–"
        return mark_safe(win_tie_loss_svg(obj.table))

    @admin.display(description="generated answers")
    def answers(self, obj: EvaluationRun) -> str:
        if not obj.comparisons:
            return "–"
        rows = (
            (c.get("query", ""), _answer_text(c.get("sft_answer")), _answer_text(c.get("dpo_answer")),
             c.get("winner", ""),
             _fmt(c.get("score_sft")), _fmt(c.get("score_dpo")))
            for c in obj.comparisons[:200]
        )
        return format_html(
            '<table class="ifllm-answers"><thead><tr><th>query</th><th>SFT answer</th><th>aligned answer</th>'
            "<th>winner</th><th>SFT score</th><th>aligned score</th></tr></thead><tbody>{}</tbody></table>{}",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
            f"(first 200 of {len(obj.comparisons)})" if len(obj.comparisons) > 200 else "",
        )

    def save_model(self, request: HttpRequest, obj: EvaluationRun, form, change: bool) -> None:
        if change:
            return
        run = evaluation_run_start(
            sft_run=obj.sft_run, aligned_run=obj.aligned_run, judge=obj.judge, params=obj.params,
            name=obj.name, user=request.user,
        )
        obj.pk = run.pk
        self.message_user(request, format_html("Evaluation started as {}.", job_anchor(run.job)))


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- reward-model runs
@admin.action(
    description="Build a preference dataset from the selected runs' out-of-fold predictions", permissions=["build"]
)
def build_dataset(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for run in queryset:
        try:
            ds = preference_dataset_build(name="", source=PreferenceDataset.Source.REWARD_RUN, reward_run=run,
                                          user=request.user)
        except ValueError as exc:
            modeladmin.message_user(request, f"{run}: {exc}.", messages.WARNING)
            continue
        message = f"Dataset {ds.pk} built from {ds.reward_model} ({ds.reward_protocol}): {ds.counts}."
        modeladmin.message_user(request, message)


class RewardModelRunAdmin(analysis_admin.RewardModelRunAdmin):
    """analysis's run admin plus the alignment action that turns a run into a preference dataset.

    Defined here, not in ``analysis.admin``, so that analysis never imports alignment: the apps
    depend one way (collection <- analysis <- alignment).
    """

    actions = [build_dataset, *analysis_admin.RewardModelRunAdmin.actions]

    def has_build_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("alignment.add_preferencedataset")


admin.site.unregister(RewardModelRun)
admin.site.register(RewardModelRun, RewardModelRunAdmin)
