"""The eye-tracking report of a selection of tasks: load what is stored, hand it to the pure
:mod:`crowd.eyetracking` (which computes and renders everything)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from collection.models import CalibrationAttempt, Platform, Task, TrajectoryChunk
from collection.release import schema
from collection.tracker_versions import tracker_versions

from .. import eyetracking, qc
from ..models import Study, TaskQC

#: The QC rules whose exclusions the report counts, in the order of the QC pages.
REPORT_RULES: tuple[tuple[str, str], ...] = (("validation", "validation failed"),
                                             *((r.metric, r.label) for r in qc.RULES))


@dataclass
class Selection:
    """Which tasks a report covers (every field optional; empty = no restriction)."""

    study: Study | None = None
    platform: str = ""  #: a ``Platform`` value
    source: str = ""  #: "site" or "release"
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    task_ids: tuple[int, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.study is not None:
            parts.append(f"study {self.study.name}")
        if self.platform:
            parts.append(f"platform {self.platform}")
        if self.source:
            parts.append(f"{self.source} tasks")
        if self.date_from or self.date_to:
            parts.append(f"started {self.date_from or '…'} to {self.date_to or '…'}")
        if self.task_ids:
            shown = ", ".join(str(i) for i in self.task_ids[:20])
            parts.append(f"tasks {shown}{' …' if len(self.task_ids) > 20 else ''}")
        return "; ".join(parts) or "all tasks with samples or a calibration"


def selected_tasks(sel: Selection) -> QuerySet[Task]:
    """Tasks with samples or a calibration attempt that match ``sel``, in id order."""
    qs = Task.objects.counted().filter(Q(chunks__isnull=False) | Q(calibration_attempts__isnull=False))
    if sel.study is not None:
        hits = sel.study.hits.values("hit_id")
        qs = qs.filter(Q(assignments__study=sel.study) | Q(qc__study=sel.study) | Q(hit_id__in=hits))
    if sel.platform:
        qs = qs.filter(worker__platform=sel.platform)
    if sel.source == eyetracking.RELEASE:
        qs = qs.filter(worker__platform=Platform.RELEASE)
    elif sel.source == eyetracking.SITE:
        qs = qs.exclude(worker__platform=Platform.RELEASE)
    if sel.task_ids:
        qs = qs.filter(pk__in=sel.task_ids)
    if sel.date_from or sel.date_to:
        # Release tasks have no start time: their first question stands for it.
        qs = qs.annotate(began=Coalesce("started_at", Min("turns__asked_at")))
        if sel.date_from:
            qs = qs.filter(began__date__gte=sel.date_from)
        if sel.date_to:
            qs = qs.filter(began__date__lte=sel.date_to)
    ids = qs.values("pk").distinct()
    return Task.objects.filter(pk__in=ids).select_related("worker").order_by("pk")


def _samples(task: Task) -> Any:
    """The samples the report reads: the chunks holding an ``abs`` stream (release: 2 of 6 files),
    all chunks when there is none."""
    chunks = TrajectoryChunk.objects.filter(task=task).order_by("seq")
    wanted = chunks.filter(streams__has_any_keys=["gaze/abs", "mouse/abs"])
    blocks = list((wanted if wanted.exists() else chunks).values_list("data", flat=True))
    return schema.decode_blocks(blocks)


def _stream_stats(task: Task, *, gap_s: float) -> dict[str, Any]:
    """:func:`crowd.eyetracking.stream_stats` of the task, cached while its chunks are the same
    (decoding is most of a report's time: about 0.1 s a release task)."""
    chunks = TrajectoryChunk.objects.filter(task=task).aggregate(
        n=Count("pk"), last=Max("pk"), samples=Sum("n_samples"), at=Max("received_at"))
    if not chunks["n"]:
        return {}
    at = chunks["at"].timestamp() if chunks["at"] else 0
    key = f"crowd.eyetracking.stream:{task.pk}:{chunks['n']}:{chunks['last']}:{chunks['samples']}:{at}:{gap_s}"
    stats = cache.get(key)
    if stats is None:
        stats = eyetracking.stream_stats(_samples(task), gap_s=gap_s)
        cache.set(key, stats, timeout=24 * 3600)
    return stats


def _targets(attempt: CalibrationAttempt) -> list[dict]:
    """Per-target accuracy/precision (px) from the raw predictions, else from the stored metrics."""
    raw_points = (attempt.raw or {}).get("points") or []
    if raw_points:
        return eyetracking.target_metrics(raw_points, viewport_w=attempt.viewport_w, viewport_h=attempt.viewport_h)
    return [  # no raw predictions kept: accuracy from the stored per-point metrics, no precision
        {"target": "centre" if p.get("centre") else eyetracking.target_label(
            p["target_x"], p["target_y"], attempt.viewport_w, attempt.viewport_h),
         "n_samples": p.get("n_samples", 0), "accuracy_px": p.get("mean_distance"), "precision_px": None}
        for p in attempt.points or [] if "target_x" in p
    ]


def task_input(task: Task, *, params: eyetracking.ReportParams) -> eyetracking.TaskInput:
    """What the report needs of one task."""
    group = eyetracking.RELEASE if task.worker.platform == Platform.RELEASE else eyetracking.SITE
    attempts = list(task.calibration_attempts.order_by("created_at", "pk"))
    chosen = eyetracking.pick_attempt([{"passed": a.passed, "obj": a} for a in attempts])
    targets: list[dict] = []
    screen_source = None
    environment: dict[str, Any] = {}
    if chosen is not None:
        attempt = chosen["obj"]
        environment = dict(attempt.environment or {})
        if environment.get("screen_w") and environment.get("screen_h"):
            screen, screen_source = (environment["screen_w"], environment["screen_h"]), "screen"
        else:  # attempts stored before the screen was recorded: the viewport is the best we have
            screen, screen_source = (attempt.viewport_w, attempt.viewport_h), "viewport"
        targets = eyetracking.in_degrees(_targets(attempt), screen=screen, params=params)
    stream = _stream_stats(task, gap_s=params.gap_s)
    qc_row = TaskQC.objects.filter(task=task).first()
    return eyetracking.TaskInput(
        task=task.pk,
        worker=task.worker.pseudonym,
        group=group,
        stream=stream,
        targets=targets,
        screen_source=screen_source,
        centre_score=task.calibration_score,
        environment=environment,
        qc_codes=None if qc_row is None else qc_row.flag_codes(),
        excluded_by_staff=bool(task.excluded or (qc_row is not None and qc_row.decision == TaskQC.Decision.EXCLUDE)),
        calibration_failed=task.calibration_failed_at is not None,
    )


def eyetracking_report(tasks: Iterable[Task], *, params: eyetracking.ReportParams) -> dict[str, Any]:
    """The report (see :func:`crowd.eyetracking.build_report`) of ``tasks``."""
    inputs = [task_input(t, params=params) for t in tasks]
    return eyetracking.build_report(inputs, params=params, installed=tracker_versions(), rules=REPORT_RULES)
