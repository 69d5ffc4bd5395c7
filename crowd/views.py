"""Staff pages: task review, worker view, trajectory replay, QC plots, release exclusions.

Every page needs a staff login and ``access.view_staff_pages`` (both roles). POSTs (decisions)
are CSRF protected by the middleware and call services, which check the researcher-only
permissions again.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Avg, Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import TemplateView

from access.privacy import may_see_private
from collection import session as study_session
from collection.models import DataSelection, Platform, Task, Turn, Worker
from collection.selectors import task_samples, turns_frame
from collection.services.study import preview_worker_create
from jobs.services import job_start

from . import eyetracking, qc, selectors, services, trajectory
from .models import Assignment, Study, TaskQC
from .mturk import MTurkError


@method_decorator(staff_member_required, name="dispatch")
class StaffPage(PermissionRequiredMixin, TemplateView):
    permission_required = "access.view_staff_pages"
    raise_exception = True

    def get_permission_denied_message(self) -> str:
        return f"This page needs the {self.permission_required} permission, which your account lacks."


class CrowdIndexView(StaffPage):
    """``/crowd/``: what the crowd staff pages are, with links (the prefix was a 404)."""

    template_name = "crowd/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "title": "Crowd pages",
                "n_flagged": TaskQC.objects.filter(flagged=True).count(), "n_qc": TaskQC.objects.count(),
                "studies": Study.objects.order_by("-active", "-created_at"),
                "selections": DataSelection.objects.order_by("-created_at", "-pk")[:8]}


def _threshold_inputs(request: HttpRequest, defaults: dict[str, float | None]) -> dict[str, float | None]:
    """Thresholds from the query string (empty = off), falling back to ``defaults``."""
    out = dict(defaults)
    for name in qc.THRESHOLD_NAMES:
        if name in request.GET:
            raw = request.GET[name].strip()
            try:
                value = float(raw) if raw else None
            except ValueError:
                continue
            if value is None or math.isfinite(value):  # "nan"/"inf"/"1e999" parse but draw nothing
                out[name] = value
    return out


def selection_link(thresholds: dict[str, float | None], *, scope: str = "all", study: Study | None = None) -> str:
    """The admin's "add data selection" form, filled with these thresholds (empty = rule off)."""
    from urllib.parse import urlencode

    query = {name: "" if value is None else f"{value:g}" for name, value in thresholds.items()}
    query["scope"] = scope if scope in ("all", "site", "release") else "all"
    if study is not None:
        query["study"] = str(study.pk)
    return f"{reverse('admin:collection_dataselection_add')}?{urlencode(query)}"


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


# --------------------------------------------------------------------------- task review
@contextmanager
def _reported(request: HttpRequest, success: str) -> Iterator[None]:
    """Run a staff operation of a review page: a refusal (validation, MTurk, crowd rule) becomes
    an error message on the page, anything else a success message; other errors propagate."""
    try:
        yield
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    except (MTurkError, services.CrowdError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success)


def qc_figures(qc_row: TaskQC | None) -> list[dict[str, Any]]:
    """A task's QC figures for a page: each rule's value, its threshold and whether it failed,
    then the counts that explain them (no threshold). Empty without QC."""
    if qc_row is None:
        return []
    metrics, limits, figures = qc_row.metrics, qc_row.thresholds, []
    for rule in qc.RULES:
        failed = any(r["code"] == rule.metric for r in qc_row.reasons)
        figures.append({"label": rule.label, "value": metrics.get(rule.metric), "limit": limits.get(rule.name),
                        "op": ">=" if rule.op == "min" else "<=", "failed": failed})
    for key, label in COUNT_LABELS.items():
        value = metrics.get(key)
        text = _WORDS.get(key, {}).get(value) if key in _WORDS else None
        figures.append({"label": label, "value": value, "text": text, "limit": None, "failed": False})
    return figures


#: The counts under a task's QC figures, in words staff read (the keys are ``TaskQC.metrics``'s).
COUNT_LABELS: dict[str, str] = {
    "n_gaze_samples": "gaze samples",
    "n_mouse_samples": "mouse samples",
    "median_interval_ms": "median time between samples (ms)",
    "total_gap_s": "pauses in the logs, summed (s)",
    "n_gaps": "pauses in the logs",
    "tail_gap_s": "last sample to the end of the chat (s)",
    "time_on_task_source": "time on task measured from",
    "validation_passed": "calibration validation",
}
#: Values that are words, not numbers (a number filter would print them as nothing or "1").
_WORDS: dict[str, dict[Any, str]] = {
    "time_on_task_source": {"task": "task start to finish", "samples": "first to last sample", None: "–"},
    "validation_passed": {True: "passed", False: "failed", None: "not run"},
}


class TaskReviewView(StaffPage):
    """Summary, answers and QC figures of one task side by side, with the decisions."""

    template_name = "crowd/task_review.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        task = get_object_or_404(Task.objects.select_related("worker", "topic"), pk=kwargs["task_id"])
        qc_row = TaskQC.objects.filter(task=task).first()
        figures = qc_figures(qc_row)
        return {
            **super().get_context_data(**kwargs),
            "title": f"Review task {task.pk}",
            "task": task,
            "qc": qc_row,
            "figures": figures,
            "turns": task.turns.order_by("index"),
            "assignments": Assignment.objects.filter(task=task).select_related("study"),
            "can_review": self.request.user.has_perm("crowd.review_task"),
            "can_pay": self.request.user.has_perm("crowd.pay_workers"),
        }

    def post(self, request: HttpRequest, task_id: int) -> HttpResponse:
        task = get_object_or_404(Task, pk=task_id)
        op = request.POST.get("op", "")
        note = request.POST.get("note", "")
        if op not in ("exclude", "keep", "recompute", "approve", "reject"):
            return HttpResponse("unknown operation", status=400)
        with _reported(request, f"{op}: done."):
            if op == "exclude":
                services.task_exclude(task=task, user=request.user, note=note)
            elif op == "keep":
                services.task_keep(task=task, user=request.user, note=note)
            elif op == "recompute":
                if not request.user.has_perm("crowd.review_task"):
                    raise PermissionDenied("recomputing QC needs the researcher role")
                services.task_qc_compute(task=task)
            else:
                assignment = get_object_or_404(Assignment, pk=request.POST.get("assignment"), task=task)
                if op == "approve":
                    services.assignment_approve(assignment=assignment, user=request.user)
                else:
                    services.assignment_reject(assignment=assignment, user=request.user, feedback=note)
        return HttpResponseRedirect(reverse("crowd:task_review", args=[task.pk]))


# --------------------------------------------------------------------------- worker view
class WorkerReviewView(StaffPage):
    """All tasks of one worker with their QC, the worker's averages, and blocking."""

    template_name = "crowd/worker_review.html"
    averaged = ("response_score", "max_index_score", "calibration_score", "sampling_rate_hz", "head_in_box_share",
                "time_on_task_s", "max_log_gap_s", "summary_words")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        worker = get_object_or_404(Worker, pk=kwargs["worker_id"])
        tasks = worker.tasks.select_related("topic", "qc").annotate(n_turns=Count("turns")).order_by("pk")
        qcs = TaskQC.objects.filter(task__worker=worker)
        aggregate = qcs.aggregate(**{name: Avg(name) for name in self.averaged})
        labels = {r.metric: r.label for r in qc.RULES}
        return {
            **super().get_context_data(**kwargs),
            "title": f"Worker {worker.pseudonym}",
            "worker": worker,
            "tasks": tasks,
            "aggregate": aggregate,
            "aggregate_rows": [(labels.get(name, name.replace("_", " ")), value) for name, value in aggregate.items()],
            "n_flagged": qcs.filter(flagged=True).count(),
            "can_pay": self.request.user.has_perm("crowd.pay_workers"),
            "can_withdraw": self.request.user.has_perm("collection.withdraw_participant"),
        }

    def post(self, request: HttpRequest, worker_id: int) -> HttpResponse:
        worker = get_object_or_404(Worker, pk=worker_id)
        if request.POST.get("op") == "withdraw":
            from .withdrawal_views import staff_withdraw

            return staff_withdraw(request, worker)
        if request.POST.get("op") != "block":
            return HttpResponse("unknown operation", status=400)
        with _reported(request, f"{worker} blocked."):
            services.worker_block(worker=worker, user=request.user, reason=request.POST.get("reason", ""))
        return HttpResponseRedirect(reverse("crowd:worker_review", args=[worker.pk]))


# --------------------------------------------------------------------------- replay
def turn_samples(turn: Turn) -> pd.DataFrame:
    """The samples shown while ``turn`` was on screen.

    Site data carry ``turn_id``. Release data are linked by the analysis team's matching
    (snippet against text, then time); ``analysis.matching`` reports the turn by its query id.
    """
    from analysis.matching import match_task, order_turns

    task = turn.task
    samples = task_samples(task=task)
    if samples.empty:
        return samples
    if samples["turn_id"].notna().any():
        return samples[samples["turn_id"] == turn.pk]
    turns = order_turns(turns_frame(tasks=Task.objects.filter(pk=task.pk)))
    matched = match_task(samples, turns, task.effective_mode).samples
    return matched[matched["turn"] == turn.public_id]


def replay_context(turn: Turn) -> dict[str, Any]:
    """What the replay player (``crowd/_replay_player.html``, ``replay.mjs``) draws for one turn:
    the response box(es) with their layout, the gaze and mouse series and dwell per character.
    Shared by the replay page and the review queue."""
    samples = turn_samples(turn)
    pairwise = turn.mode == "pairwise"
    t0 = float(samples["epoch_ms"].min()) if len(samples) else 0.0
    boxes = []
    for n, text in ((1, turn.response_1 or turn.error_1), (2, turn.response_2 or turn.error_2)):
        if n == 2 and not pairwise:
            continue
        frame = f"box{n}"
        box: dict[str, Any] = {"n": n, "text": text, "model": getattr(turn, f"model_{n}"),
                               "layout": trajectory.box_layout((turn.box_layout or {}).get(str(n)), samples,
                                                               frame=frame)}
        for signal in ("gaze", "mouse"):
            series = trajectory.replay_series(samples, signal=signal, frame=frame)
            series["t"] = [None if v is None else v - t0 for v in series["t"]]
            dwell = trajectory.char_dwell(
                np.array([np.nan if v is None else v for v in series["t"]], dtype="float64"),
                np.array([np.nan if v is None else v for v in series["c"]], dtype="float64"),
                len(text),
            )
            box[signal] = series
            box[f"{signal}_dwell"] = [round(float(v)) for v in dwell]
        boxes.append(box)
    duration = float(samples["epoch_ms"].max()) - t0 if len(samples) else 0.0
    return {"n_samples": len(samples), "replay": {"duration": duration, "boxes": boxes, "pairwise": pairwise}}


class TurnReplayView(StaffPage):
    """The response(s) of one turn with gaze and mouse moving over them, and dwell heatmaps."""

    template_name = "crowd/replay.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        turn = get_object_or_404(Turn.objects.select_related("task", "task__worker"), pk=kwargs["turn_id"])
        siblings = list(turn.task.turns.order_by("index").values_list("pk", "index"))
        return {
            **super().get_context_data(**kwargs),
            "title": f"Replay of turn {turn.index} of task {turn.task_id}",
            "turn": turn,
            "siblings": siblings,
            **replay_context(turn),
        }


# --------------------------------------------------------------------------- QC plots
class QCDistributionView(StaffPage):
    """Histograms of every QC metric with the thresholds drawn (tasks or workers)."""

    template_name = "crowd/qc_plots.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from .plots import qc_histograms

        source = self.request.GET.get("source", "all")
        level = self.request.GET.get("level", "task")
        study_pk = self.request.GET.get("study", "")
        study = Study.objects.filter(pk=int(study_pk)).first() if study_pk.isdecimal() and len(study_pk) < 10 else None
        defaults = (
            study.thresholds() if study else (qc.PAPER_THRESHOLDS if source == "release" else qc.DEFAULT_THRESHOLDS)
        )
        thresholds = _threshold_inputs(self.request, dict(defaults))
        qs = TaskQC.objects.all()
        if study is not None:
            qs = qs.filter(study=study)
        if source == "release":
            qs = qs.filter(task__worker__platform=Platform.RELEASE)
        elif source == "site":
            qs = qs.exclude(task__worker__platform=Platform.RELEASE)
        metrics = [r.metric for r in qc.RULES]
        table = pd.DataFrame(list(qs.values("task__worker__pseudonym", *metrics)))
        svg = ""
        if not table.empty:
            table = table.rename(columns={"task__worker__pseudonym": "worker"})
            if level == "worker":
                table = qc.worker_table(table, thresholds)
            svg = _svg(qc_histograms(table, thresholds, title=f"{len(table)} {level}s"))
        return {
            **super().get_context_data(**kwargs),
            "title": "QC distributions",
            "svg": mark_safe(svg),
            "studies": Study.objects.all(),
            "study": study,
            "source": source,
            "level": level,
            "thresholds": [(r.name, r.label, thresholds.get(r.name)) for r in qc.RULES],
            "n_rows": len(table),
            "can_select": self.request.user.has_perm("collection.add_dataselection"),
            "selection_url": selection_link(thresholds, scope=source, study=study),
        }


# --------------------------------------------------------------------------- release exclusions
PAPER_EXCLUDED, PAPER_WORKERS = 24, 87


class ReleaseExclusionView(StaffPage):
    """Which imported release workers the thresholds would exclude, next to the paper's count."""

    template_name = "crowd/release_exclusions.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        thresholds = _threshold_inputs(self.request, dict(qc.PAPER_THRESHOLDS))
        table = services.release_worker_table(thresholds=thresholds)
        n_release_workers = (
            Worker.objects.filter(platform=Platform.RELEASE, tasks__turns__isnull=False).distinct().count()
        )
        rows = []
        if not table.empty:
            table = table.sort_values(["excluded", "response_score"], ascending=[False, True])
            for worker, row in table.iterrows():
                values = {k: (None if pd.isna(v) else v) for k, v in row.items() if k != "reasons"}
                rows.append({"worker": worker, **values, "reasons": row["reasons"]})
        n_excluded = int(table["excluded"].sum()) if not table.empty else 0
        n_measured = len(table)
        worker_pks = dict(
            Worker.objects.filter(pseudonym__in=[r["worker"] for r in rows]).values_list("pseudonym", "pk")
        )
        for r in rows:
            r["pk"] = worker_pks.get(r["worker"])
        return {
            **super().get_context_data(**kwargs),
            "title": "Release workers the thresholds would exclude",
            "rows": rows,
            "thresholds": [(r.name, r.label, thresholds.get(r.name)) for r in qc.RULES],
            "n_excluded": n_excluded,
            "n_measured": n_measured,
            "n_release_workers": n_release_workers,
            "share": (n_excluded / n_measured) if n_measured else None,
            "paper_excluded": PAPER_EXCLUDED,
            "paper_workers": PAPER_WORKERS,
            "paper_share": PAPER_EXCLUDED / PAPER_WORKERS,
            "n_tasks_without_qc": Task.objects.filter(
                worker__platform=Platform.RELEASE, chunks__isnull=False, qc__isnull=True
            )
            .distinct()
            .count(),
            "can_review": self.request.user.has_perm("crowd.review_task"),
            "can_select": self.request.user.has_perm("collection.add_dataselection"),
            "selection_url": selection_link(thresholds, scope="release"),
        }

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("crowd.review_task"):
            raise PermissionDenied("computing QC needs the researcher role")
        job = job_start(kind="crowd.compute_qc", params={"release": True}, user=request.user)
        messages.success(request, f"Computing QC of the release tasks in job {job.pk}; reload when it has finished.")
        return HttpResponseRedirect(reverse("crowd:release_exclusions"))


# --------------------------------------------------------------------------- eye-tracking report
_NUMBER = forms.NumberInput(attrs={"step": "any", "style": "width:5em"})


class EyeTrackingReportForm(forms.Form):
    """Which tasks, and the report's stated assumptions (GET: the URL names the report)."""

    study = forms.ModelChoiceField(queryset=Study.objects.all(), required=False, empty_label="(any)")
    source = forms.ChoiceField(required=False, choices=[("", "all"), (eyetracking.SITE, "collected by the site"),
                                                        (eyetracking.RELEASE, "imported release")])
    platform = forms.ChoiceField(required=False, choices=[("", "(any)"), *Platform.choices])
    date_from = forms.DateField(required=False, label="started from", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="started until", widget=forms.DateInput(attrs={"type": "date"}))
    tasks = forms.CharField(required=False, label="task ids", help_text="comma separated",
                            widget=forms.TextInput(attrs={"size": 24}))
    viewing_distance_cm = forms.FloatField(
        min_value=10, max_value=300, initial=eyetracking.ReportParams.viewing_distance_cm, required=False,
        label="viewing distance (cm)", widget=_NUMBER)
    screen_diagonal_in = forms.FloatField(
        min_value=5, max_value=100, initial=eyetracking.ReportParams.screen_diagonal_in, required=False,
        label="screen diagonal (inches)", widget=_NUMBER)
    gap_s = forms.FloatField(
        min_value=0.1, max_value=3600, initial=eyetracking.ReportParams.gap_s, required=False,
        label="pause = missing data from (s)", widget=_NUMBER)

    def clean_tasks(self) -> tuple[int, ...]:
        raw = self.cleaned_data.get("tasks") or ""
        try:
            ids = tuple(int(p) for p in raw.replace(" ", ",").split(",") if p.strip())
        except ValueError:
            raise ValidationError("Task ids are whole numbers separated by commas.") from None
        if any(i <= 0 for i in ids):
            raise ValidationError("Task ids are positive.")
        return ids

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def selection(self) -> services.eyetracking.Selection:
        d = self.cleaned_data
        return services.eyetracking.Selection(
            study=d.get("study"), platform=d.get("platform") or "", source=d.get("source") or "",
            date_from=d.get("date_from"), date_to=d.get("date_to"), task_ids=d.get("tasks") or (),
        )

    def params(self) -> eyetracking.ReportParams:
        defaults = eyetracking.ReportParams()
        d = self.cleaned_data
        return eyetracking.ReportParams(**{
            name: d.get(name) if d.get(name) is not None else getattr(defaults, name)
            for name in ("viewing_distance_cm", "screen_diagonal_in", "gap_s")
        })


class EyeTrackingReportView(StaffPage):
    """Tracker, sampling rate, accuracy, precision, data loss and exclusions of a selection of
    tasks (Dunn et al. 2023), as a page, Markdown (``?format=md``) or CSV (``?format=csv``)."""

    template_name = "crowd/eyetracking_report.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        fmt = request.GET.get("format", "html")
        if fmt not in ("html", "md", "csv"):
            return HttpResponse("format: choose html, md or csv", status=400, content_type="text/plain")
        # The stated assumptions are always in the form (and so in the URL the page links to).
        defaults = eyetracking.ReportParams()
        data = {name: getattr(defaults, name) for name in ("viewing_distance_cm", "screen_diagonal_in", "gap_s")}
        data.update({k: v for k, v in request.GET.items() if v != "" or k not in data})
        form = EyeTrackingReportForm(data)
        if not form.is_valid():
            if fmt != "html":
                text = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
                return HttpResponse(text, status=400, content_type="text/plain")
            context = self.get_context_data(form=form, report=None)
            return self.render_to_response(context, status=400)
        selection = form.selection()
        report = services.eyetracking.eyetracking_report(
            services.eyetracking.selected_tasks(selection), params=form.params()
        )
        title = f"Eye-tracking report: {selection.describe()}"
        if fmt == "md":
            response = HttpResponse(eyetracking.to_markdown(report, title=title),
                                    content_type="text/markdown; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="eyetracking-report.md"'
            return response
        if fmt == "csv":
            response = HttpResponse(eyetracking.to_csv(report), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="eyetracking-report.csv"'
            return response
        return self.render_to_response(self.get_context_data(form=form, report=report, selection=selection))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        report = kwargs.get("report")
        sections: list[dict[str, Any]] = []
        if report is not None:
            for row in report["rows"]:
                if not sections or sections[-1]["name"] != row.section:
                    sections.append({"name": row.section, "rows": []})
                sections[-1]["rows"].append({
                    "metric": row.metric, "unit": row.unit,
                    "cells": [eyetracking.cell_text(row.cells[g], row.unit) for g in report["groups"]],
                })
        query = self.request.GET.copy()
        query.pop("format", None)
        return {
            **super().get_context_data(**kwargs),
            "title": "Eye-tracking report",
            "groups": [eyetracking.GROUP_LABELS[g] for g in report["groups"]] if report else [],
            "sections": sections,
            "assumptions": eyetracking.params_text(report["params"]) if report else [],
            "query": query.urlencode(),
        }


# --------------------------------------------------------------------------- study monitor
class StudyMonitorView(StaffPage):
    """A study's live monitor: the page draws the figures of :class:`StudyMonitorDataView` and
    polls it; POST opens a staff preview session of the worker site (never counted anywhere)."""

    template_name = "crowd/study_monitor.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        study = get_object_or_404(Study, pk=kwargs["study_id"])
        return {
            **super().get_context_data(**kwargs),
            "title": f"Study monitor: {study.name}",
            "study": study,
            "figures": selectors.study_monitor(study, private=may_see_private(self.request)),
            "data_url": reverse("crowd:study_monitor_data", kwargs={"study_id": study.pk}),
            "poll_ms": MONITOR_POLL_MS,
        }

    def post(self, request: HttpRequest, study_id: int) -> HttpResponse:
        """Start a preview: a new preview worker bound to this browser's study session."""
        study = get_object_or_404(Study, pk=study_id)
        worker = preview_worker_create(user=request.user, study_ref=f"crowd.Study {study.pk}")
        study_session.preview_bind(request, worker=worker)
        return HttpResponseRedirect(reverse("collection:resume"))


#: How often the monitor page asks for new figures (it stops while its tab is hidden).
MONITOR_POLL_MS = 4000


@method_decorator(staff_member_required, name="dispatch")
class StudyMonitorDataView(PermissionRequiredMixin, View):
    """The monitor's figures as JSON (``crowd.selectors.study_monitor``)."""

    permission_required = "access.view_staff_pages"
    raise_exception = True

    def get(self, request: HttpRequest, study_id: int) -> JsonResponse:
        study = get_object_or_404(Study, pk=study_id)
        response = JsonResponse(selectors.study_monitor(study, private=may_see_private(request)))
        response["Cache-Control"] = "no-store"
        return response
