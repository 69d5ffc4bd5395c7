"""Quality control writes: compute a task's QC figures and flags, record staff decisions."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db import transaction
from django.utils import timezone

from collection.models import Platform, Task

from .. import qc
from ..models import HIT, Assignment, Study, TaskQC
from .base import _acting, _jsonable, _require


def task_study(*, task: Task) -> Study | None:
    """The study a task was collected for: through its assignment, else its HIT id (MTurk) or
    Prolific STUDY_ID (both kept in ``Task.hit_id`` at entry), so a task QC'd before its
    submission is synced still counts for its study."""
    assignment = Assignment.objects.filter(task=task).select_related("study").first()
    if assignment is not None:
        return assignment.study
    if task.hit_id:
        hit = HIT.objects.filter(hit_id=task.hit_id).select_related("study").first()
        if hit is not None:
            return hit.study
        return Study.objects.filter(platform=Study.Platform.PROLIFIC, prolific_study_id=task.hit_id).first()
    return None


def _ms(value: Any) -> float | None:
    return None if value is None else value.timestamp() * 1000.0


def _validation_passed(task: Task) -> bool | None:
    attempts = getattr(task, "calibration_attempts", None)
    if attempts is not None:
        last = attempts.order_by("-created_at", "-pk").first()
        if last is not None:
            return bool(last.passed)
    passed = (task.validation or {}).get("passed")
    return None if passed is None else bool(passed)


def task_qc_compute(*, task: Task, thresholds: dict[str, float | None] | None = None) -> TaskQC:
    """Compute (or recompute) a task's QC figures and flags; a staff decision is kept."""
    from collection.selectors import task_samples, turns_frame

    study = task_study(task=task)
    if thresholds is None:
        thresholds = study.thresholds() if study is not None else dict(qc.DEFAULT_THRESHOLDS)
    samples = task_samples(task=task)
    turns = turns_frame(tasks=Task.objects.filter(pk=task.pk))
    imported = task.worker.platform == Platform.RELEASE
    metrics = qc.task_metrics(
        samples,
        turns,
        mode=task.effective_mode,
        calibration_score=task.calibration_score,
        validation_passed=_validation_passed(task),
        summary=task.summary,
        # Release times are in the server's clock, sometimes hours off the samples' epoch.
        started_ms=None if imported else _ms(task.chat_started_at or task.started_at),
        finished_ms=None if imported else _ms(task.finished_at),
        chat_ended_ms=None if imported else _ms(task.chat_ended_at),
    )
    reasons = qc.flag_reasons(metrics, thresholds)
    codes = [r["code"] for r in reasons]
    fields = {
        name: metrics.get(name)
        for name in (
            "calibration_score", "validation_passed", "response_score", "max_index_score", "sampling_rate_hz",
            "median_interval_ms", "head_in_box_share", "time_on_task_s", "max_log_gap_s", "total_gap_s",
        )
    }
    fields.update(
        n_gaze_samples=metrics["n_gaze_samples"],
        n_mouse_samples=metrics["n_mouse_samples"],
        n_gaps=metrics["n_gaps"],
        summary_words=metrics["summary_words"],
        n_turns=metrics["n_turns"],
    )
    row, _ = TaskQC.objects.update_or_create(
        task=task,
        defaults={
            **fields,
            "study": study,
            "metrics": _jsonable(metrics),
            "thresholds": _jsonable(thresholds),
            "flagged": bool(reasons),
            "flags": "," + ",".join(codes) + "," if codes else "",
            "reasons": _jsonable(reasons),
        },
    )
    return row


def _enqueue_qc(task_pk: int) -> None:
    from jobs.services import job_start

    job_start(kind="crowd.compute_qc", params={"task_ids": [task_pk]})


def task_completed(*, task: Task) -> None:
    """Hook for the site's completion service: compute QC once the completion has committed
    (never for a preview session: it is not study data)."""
    if task.worker.is_preview:
        return
    transaction.on_commit(lambda pk=task.pk: _enqueue_qc(pk))


def task_exclude(*, task: Task, user: Any = None, note: str = "") -> Task:
    """Leave the task out of every exported dataset (reversible with :func:`task_keep`)."""
    _require(user, "crowd.review_task")
    return _decide(task=task, user=user, note=note, decision=TaskQC.Decision.EXCLUDE)


def task_keep(*, task: Task, user: Any = None, note: str = "") -> Task:
    """Keep a task in the dataset even if flagged (a staff judgement, recorded with its author)."""
    _require(user, "crowd.review_task")
    return _decide(task=task, user=user, note=note, decision=TaskQC.Decision.KEEP)


@transaction.atomic
def _decide(*, task: Task, user: Any, note: str, decision: str) -> Task:
    task.excluded = decision == TaskQC.Decision.EXCLUDE
    task.save(update_fields=["excluded"])
    row, _ = TaskQC.objects.get_or_create(task=task)
    row.decision, row.decided_by, row.decided_at = decision, _acting(user), timezone.now()
    if note:
        row.note = note
    row.save(update_fields=["decision", "decided_by", "decided_at", "note"])
    return task


def release_worker_table(*, thresholds: dict[str, float | None]) -> pd.DataFrame:
    """Per release worker: mean QC figures over their tasks with trajectories, and whether the
    thresholds would exclude them (see :func:`crowd.qc.worker_table`)."""
    rows = TaskQC.objects.filter(task__worker__platform=Platform.RELEASE, n_gaze_samples__gt=0).values(
        "task__worker__pseudonym", *[r.metric for r in qc.RULES if r.metric != "validation_passed"]
    )
    df = pd.DataFrame(list(rows)).rename(columns={"task__worker__pseudonym": "worker"})
    if df.empty:
        return df
    return qc.worker_table(df, thresholds)
