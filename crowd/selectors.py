"""Reads of the crowd app that more than one page uses: a study's tasks and its monitor figures.

The figures are computed by the pure :mod:`crowd.monitor`; this module only turns rows of the
database into its plain rows. Preview sessions (``Worker.is_preview``) are never read here
(``Task.objects.counted()``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from collection.models import CalibrationAttempt, LLMModel, Mode, Platform, Task, Worker
from collection.services.study import study_settings_get

from . import monitor
from .models import Assignment, Payment, Study

#: Assignment statuses whose reward is owed or paid (a rejection is not; a status another part
#: of the site adds, e.g. a returned submission, counts only once it is listed here).
REWARDED_STATUSES = (Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REVIEW)


def _platform_ids(study: Study) -> set[str]:
    """The platform's ids of the study, as site entries store them in ``Task.hit_id``: MTurk HIT
    ids, the Prolific STUDY_ID."""
    if study.platform == Study.Platform.MTURK:
        return set(study.hits.exclude(hit_id=None).values_list("hit_id", flat=True))
    if study.platform == Study.Platform.PROLIFIC and study.prolific_study_id:
        return {study.prolific_study_id}
    return set()


def study_tasks(study: Study) -> QuerySet[Task]:
    """The site's tasks of a study, previews and release imports never included.

    MTurk: tasks of its HITs; Prolific: tasks whose entry carried its STUDY_ID; either: tasks its
    synced assignments or QC rows point at. Lab studies have no platform id: every lab task.
    """
    tasks = Task.objects.counted().exclude(worker__platform=Platform.RELEASE)
    if study.platform == Study.Platform.LAB:
        return tasks.filter(worker__platform=Platform.LAB)
    match = Q(assignments__study=study) | Q(qc__study=study)
    ids = _platform_ids(study)
    if ids:
        match |= Q(worker__platform=study.platform, hit_id__in=ids)
    return Task.objects.filter(pk__in=tasks.filter(match).values("pk"))


def _session_key(worker_id: int, assignment_id: str) -> str:
    return f"{worker_id}:{assignment_id}"


def _epoch(value: dt.datetime | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return value.timestamp()


def _sessions(study: Study, tasks: list[dict[str, Any]]) -> list[monitor.SessionRow]:
    """Participant sessions: those with tasks, and people who entered for the study without
    choosing a topic (platform entries record the study they came for; lab: lab participants)."""
    keys = {_session_key(t["worker_id"], t["assignment_id"]) for t in tasks}
    ids: set[str] = set()
    accepted: dict[str, dt.datetime | None] = {}
    workers = Worker.objects.filter(is_preview=False)
    if study.platform == Study.Platform.LAB:
        workers = workers.filter(platform=Platform.LAB)
    else:
        ids = _platform_ids(study)
        synced = Assignment.objects.filter(study=study, worker__isnull=False).values("worker_id")
        workers = workers.filter(platform=study.platform).filter(
            Q(pk__in={t["worker_id"] for t in tasks}) | Q(pk__in=synced)
            | (Q(extra__has_key="entries") if ids else Q(pk__in=[]))
        )
        accepted = {
            _session_key(w, a): at for w, a, at in Assignment.objects.filter(study=study, worker__isnull=False)
            .values_list("worker_id", "assignment_id", "accepted_at")
        }
    out: dict[str, monitor.SessionRow] = {}
    if study.platform == Study.Platform.LAB:
        for pk, consent, created_at in workers.values_list("pk", "consent", "created_at"):
            key = _session_key(pk, "")
            out[key] = monitor.SessionRow(key, consented=consent is True, entered_at=_epoch(created_at))
        return list(out.values())
    by_worker: dict[int, list[tuple[str, dt.datetime | None]]] = {}
    for key, at in accepted.items():
        by_worker.setdefault(int(key.split(":", 1)[0]), []).append((key, at))
    # Only the entries are read (not the whole ``extra``): this runs on every poll of the page.
    for pk, consent, entries in workers.values_list("pk", "consent", "extra__entries"):
        consented = consent is True
        for aid, entry in (entries.items() if isinstance(entries, dict) else ()):
            if not isinstance(entry, dict):
                continue
            key = _session_key(pk, aid)
            if entry.get("study") in ids or key in keys:
                start = accepted.get(key) or entry.get("entered") or entry.get("at")
                out[key] = monitor.SessionRow(key, consented=consented, entered_at=_epoch(start))
        for key, at in by_worker.get(pk, ()):
            if key not in out:
                out[key] = monitor.SessionRow(key, consented=consented, entered_at=_epoch(at))
    return list(out.values())


def study_monitor(study: Study, *, private: bool) -> dict[str, Any]:
    """Every figure of the study monitor (JSON-able). ``private``: include the reward, pay per
    hour and money committed (``access.view_private``), else they are None."""
    qs = study_tasks(study)
    passed = CalibrationAttempt.objects.filter(task=OuterRef("pk"), passed=True)
    task_values = list(
        qs.annotate(calibrated=Exists(passed)).values(
            "pk", "worker_id", "assignment_id", "status", "mode", "model_1", "model_2", "started_at",
            "chat_started_at", "chat_ended_at", "finished_at", "calibration_failed_at", "calibrated", "qc__flags",
            "qc__pk",
        )
    )
    tasks = [
        monitor.TaskRow(
            task=t["pk"], session=_session_key(t["worker_id"], t["assignment_id"]), status=t["status"],
            mode=t["mode"], model_1=t["model_1"], model_2=t["model_2"], started_at=_epoch(t["started_at"]),
            chat_started_at=_epoch(t["chat_started_at"]), chat_ended_at=_epoch(t["chat_ended_at"]),
            finished_at=_epoch(t["finished_at"]), calibration_failed=t["calibration_failed_at"] is not None,
            calibrated=bool(t["calibrated"]),
            qc_flags=None if t["qc__pk"] is None else tuple(c for c in (t["qc__flags"] or "").split(",") if c),
        )
        for t in task_values
    ]
    attempts = [
        monitor.AttemptRow(passed=bool(passed_), failures=tuple(failures) if isinstance(failures, list) else ())
        for passed_, failures in CalibrationAttempt.objects.filter(
            task__in=qs, kind=CalibrationAttempt.Kind.CALIBRATION).values_list("passed", "rule__failures")
    ]
    # Quotas are site-wide (StudySettings, LLMModel.quota): every study's live tasks fill them.
    cfg = study_settings_get()
    live = Task.objects.quota_live()
    mode_quotas = {Mode.POINTWISE.value: cfg.pointwise_quota, Mode.PAIRWISE.value: cfg.pairwise_quota}
    mode_used = dict(live.values_list("mode").annotate(n=Count("id")))
    models = list(LLMModel.objects.filter(enabled=True).order_by("name"))
    model_used = {m.name: 0 for m in models}
    for column in ("model_1", "model_2"):
        for name, n in live.exclude(**{column: ""}).values_list(column).annotate(n=Count("id")):
            if name in model_used:
                model_used[name] += n
    sessions = _sessions(study, task_values)
    synced = Assignment.objects.filter(study=study)
    if synced.exists():
        n_rewarded, basis = synced.filter(status__in=REWARDED_STATUSES).count(), "assignments"
    else:
        counts = monitor.stage_counts(sessions, tasks)
        n_rewarded, basis = counts["completed"], "completed_sessions"
    minimum = settings.IFLLM_PLATFORM_MIN_PAY_PER_HOUR.get(study.platform)
    figures = monitor.monitor(
        sessions=sessions, tasks=tasks, attempts=attempts,
        mode_quotas=mode_quotas, mode_used=mode_used,
        model_quotas={m.name: m.quota for m in models}, model_used=model_used,
        reward=study.reward, minimum_per_hour=Decimal(minimum[1]) if minimum else None,
        n_rewarded=n_rewarded,
        payments=[monitor.PaymentRow(amount=a, status=s)
                  for a, s in Payment.objects.filter(assignment__study=study).values_list("amount", "status")],
    )
    this_study = qs.filter(pk__in=live.values("pk"))
    this_modes = dict(this_study.values_list("mode").annotate(n=Count("id")))
    for row in figures["mode_quotas"]:
        row["this_study"] = this_modes.get(row["name"], 0)
    figures["money"]["basis"] = basis
    figures["currency"] = minimum[0] if minimum else settings.IFLLM_PLATFORM_CURRENCY.get(study.platform, "")
    figures["private"] = private
    if not private:
        figures["pay"] = figures["money"] = None
    figures["study"] = {"id": study.pk, "name": study.name, "platform": study.get_platform_display(),
                        "active": study.active}
    figures["updated_at"] = timezone.now().isoformat()
    return figures
