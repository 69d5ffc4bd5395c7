"""Admin of the alignment app: datasets, training runs and evaluations are started from here.

Adding a row starts its work (the add forms call the services); actions cancel, resume and
export.  Everything long runs as a Job on the ``gpu`` queue.
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from jobs.exceptions import JobStateError
from jobs.services import job_cancel, job_start, job_user_may_run

from .models import EvaluationRun, PreferenceDataset, PreferencePair, TrainingRun
from .services import (
    evaluation_run_start,
    human_batch_export,
    preference_dataset_build,
    preference_dataset_export,
    reward_run_labeller,
    runs_dir,
    training_run_start,
)


class PreferenceDatasetForm(forms.ModelForm):
    class Meta:
        model = PreferenceDataset
        fields = ["name", "source", "reward_run", "reward_model", "reward_protocol"]
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
        modeladmin.message_user(request, f"{dataset}: written to {path}")


@admin.register(PreferenceDataset)
class PreferenceDatasetAdmin(admin.ModelAdmin):
    form = PreferenceDatasetForm
    list_display = ["id", "name", "source", "reward_run", "reward_model", "reward_protocol", "counts", "created_at"]
    list_filter = ["source"]
    search_fields = ["name"]
    actions = [export_datasets]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.export_dataset")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        return ["name", "source", "reward_run", "reward_model", "reward_protocol", "counts", "params"] if obj else []

    def save_model(self, request: HttpRequest, obj: PreferenceDataset, form, change: bool) -> None:  # noqa: ANN001
        if change:
            return
        built = preference_dataset_build(
            name=obj.name, source=obj.source, reward_run=obj.reward_run, reward_model=obj.reward_model,
            reward_protocol=obj.reward_protocol, user=request.user,
        )  # fmt: skip
        obj.pk = built.pk
        obj.counts = built.counts


@admin.register(PreferencePair)
class PreferencePairAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "turn", "split", "chosen_side", "confidence"]
    list_filter = ["dataset", "split", "chosen_side"]
    search_fields = ["prompt"]
    raw_id_fields = ["turn"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


class TrainingRunForm(forms.ModelForm):
    class Meta:
        model = TrainingRun
        fields = ["name", "method", "base_model", "dataset", "sft_run", "config"]
        help_texts = {
            "config": 'Overrides of the defaults in alignment/training/config.py, e.g. {"beta": 0.1, "lr": 5e-7}.'
        }

    def clean(self) -> dict:
        data = super().clean()
        method = data.get("method")
        if method == TrainingRun.Method.SFT and not data.get("base_model"):
            self.add_error("base_model", "SFT needs a local checkpoint path.")
        if method in (TrainingRun.Method.DPO, TrainingRun.Method.RDPO):
            if not data.get("sft_run"):
                self.add_error("sft_run", "DPO and rDPO start from an SFT run (also the reference model).")
            if not data.get("dataset"):
                self.add_error("dataset", "Choose a preference dataset.")
            elif method == TrainingRun.Method.RDPO and data["dataset"].source == PreferenceDataset.Source.EXPLICIT:
                self.add_error("dataset", "rDPO needs confidences: use a reward-model dataset.")
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
        if run.job and not run.job.is_finished:
            modeladmin.message_user(request, f"{run}: still running.", messages.WARNING)
            continue
        run.job = job_start(kind="alignment.train", params={"run_pk": run.pk}, user=request.user)
        run.save(update_fields=["job"])
        modeladmin.message_user(request, f"{run}: job {run.job.pk} started.")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    form = TrainingRunForm
    list_display = ["id", "name", "method", "base_model", "dataset", "sft_run", "job_status", "step", "created_at"]
    list_filter = ["method"]
    search_fields = ["name", "base_model"]
    actions = [cancel_runs, resume_runs]

    def has_run_permission(self, request: HttpRequest) -> bool:
        return job_user_may_run(request.user, "alignment.train")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        if obj is None:
            return []
        return ["name", "method", "base_model", "dataset", "sft_run", "config", "job", "output_dir", "metrics"]

    @admin.display(description="job")
    def job_status(self, obj: TrainingRun) -> str:
        return f"{obj.job.status} {obj.job.progress}%" if obj.job else "–"

    @admin.display(description="step")
    def step(self, obj: TrainingRun) -> str:
        return f"{obj.metrics.get('step', 0)}/{obj.metrics.get('total_steps', '?')}"

    def save_model(self, request: HttpRequest, obj: TrainingRun, form, change: bool) -> None:  # noqa: ANN001
        if change:
            return
        run = training_run_start(
            method=obj.method, base_model=obj.base_model, dataset=obj.dataset, sft_run=obj.sft_run,
            config=obj.config, name=obj.name, user=request.user,
        )  # fmt: skip
        obj.pk = run.pk


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
            )  # fmt: skip


class EvaluationRunForm(forms.ModelForm):
    class Meta:
        model = EvaluationRun
        fields = ["name", "sft_run", "aligned_run", "judge", "params"]
        help_texts = {"params": '{"n_queries": 300, "seed": 0, "max_new_tokens": 512}'}


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    form = EvaluationRunForm
    list_display = ["id", "name", "sft_run", "aligned_run", "judge", "job", "created_at"]
    actions = [download_table, export_human_batch]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crowd.export_dataset")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        if obj is None:
            return []
        return ["name", "sft_run", "aligned_run", "judge", "params", "job", "table_html", "human_eval"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:  # noqa: ANN001
        return self.get_readonly_fields(request, obj) or list(EvaluationRunForm.Meta.fields)

    @admin.display(description="Table 3")
    def table_html(self, obj: EvaluationRun) -> str:
        if not obj.table:
            return "–"
        cols = list(obj.table[0])
        head = format_html_join("", "<th>{}</th>", ((c,) for c in cols))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((_fmt(row.get(c)),) for c in cols)),) for row in obj.table),
        )
        return format_html("<table><tr>{}</tr>{}</table>", head, body)

    def save_model(self, request: HttpRequest, obj: EvaluationRun, form, change: bool) -> None:  # noqa: ANN001
        if change:
            return
        run = evaluation_run_start(
            sft_run=obj.sft_run, aligned_run=obj.aligned_run, judge=obj.judge, params=obj.params,
            name=obj.name, user=request.user,
        )  # fmt: skip
        obj.pk = run.pk


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
