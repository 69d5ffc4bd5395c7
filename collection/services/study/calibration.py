"""Study flow: calibration."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ...gaze_quality import ValidationRule, centre_score, validation_points, validation_verdict
from ...models import (
    CalibrationAttempt,
    Task,
)
from .base import StudyError, _lock_in
from .workers import study_settings_get


@transaction.atomic
def task_calibration_start(*, task: Task) -> Task:
    """CHOSEN -> CALIBRATING (idempotent while calibrating)."""
    task = _lock_in(task, Task.Status.CHOSEN, Task.Status.CALIBRATING,
                    refusal=_("This task is not waiting for calibration."))
    if task.status == Task.Status.CHOSEN:
        task.status = Task.Status.CALIBRATING
        task.save(update_fields=["status"])
    return task


@transaction.atomic
def calibration_attempt_record(
    *,
    task: Task,
    kind: str,
    viewport_w: int,
    viewport_h: int,
    clicks: list[dict[str, Any]],
    points: list[dict[str, Any]],
    head_in_box_share: float | None,
    face_found_share: float | None = None,
    environment: dict[str, Any] | None = None,
) -> CalibrationAttempt:
    """Judge one attempt from its raw predictions, store it, and start the chat if it passed.

    ``points`` are validation targets ``{"x", "y", "centre": bool, "frames": int, "samples":
    [{"x","y","t"}]}`` (``frames``: the tracker's frames while the target was judged, with or
    without a prediction). Pass/fail is the per-target rule (every target's accuracy, spread and
    share of frames with a prediction, and a face found), with the study's thresholds; the paper's
    centre score of the point flagged ``centre`` is stored beside it. Task must be CHOSEN or
    CALIBRATING; leaves it CALIBRATING (failed) or CHATTING (passed), or ABANDONED with the way out
    after the last failure the study allows (then the assignment's other open tasks end with it).
    """
    task = _lock_in(task, Task.Status.CHOSEN, Task.Status.CALIBRATING,
                    refusal=_("This task is not waiting for calibration."))
    cfg = study_settings_get()
    centre = [p for p in points if p.get("centre")]
    if len(centre) != 1:
        raise StudyError(_("Exactly one validation point must be the centre."), field="points")
    rule = validation_rule(cfg)
    passed, per_point, failures = validation_verdict(
        validation_points(points, radius=cfg.validation_radius_px), face_found_share=face_found_share, rule=rule
    )
    cs = centre[0]["samples"]
    score = centre_score([v["x"] for v in cs], [v["y"] for v in cs], target=(centre[0]["x"], centre[0]["y"]),
                         height=viewport_h)
    attempt = CalibrationAttempt.objects.create(
        task=task,
        kind=kind,
        score=score,
        threshold=cfg.pass_threshold,
        passed=passed,
        rule={**rule.as_dict(), "failures": failures, "centre_score_threshold": cfg.pass_threshold,
              "centre_score_passed": score > cfg.pass_threshold},
        viewport_w=viewport_w,
        viewport_h=viewport_h,
        n_clicks=len(clicks),
        head_in_box_share=head_in_box_share,
        face_found_share=face_found_share,
        points=per_point,
        raw={"clicks": clicks, "points": points},
        environment=environment or {},
    )
    task.calibration.setdefault("attempts", []).append(
        {"id": attempt.pk, "kind": kind, "score": round(score, 2), "passed": passed}
    )
    update = ["calibration", "status"]
    if passed:
        task.calibration_score = score
        task.validation = {"score": score, "threshold": cfg.pass_threshold, "points": per_point,
                           "rule": attempt.rule, "viewport": [viewport_w, viewport_h]}
        task.status = Task.Status.CHATTING
        task.chat_started_at = timezone.now()
        update += ["calibration_score", "validation", "chat_started_at"]
    else:
        task.status = Task.Status.CALIBRATING
        failed = sum(1 for a in task.calibration["attempts"] if not a["passed"])
        if cfg.max_calibration_attempts and failed >= cfg.max_calibration_attempts:
            # Never a dead end: the worker is let out with what the study offers (see the
            # calibration-failed page), and the task says why it ended.
            task.status = Task.Status.ABANDONED
            task.calibration_failed_at = timezone.now()
            task.calibration_way_out = cfg.calibration_way_out
            task.finished_at = task.calibration_failed_at
            update += ["calibration_failed_at", "calibration_way_out", "finished_at"]
            # The assignment ends here: its other chosen topics would need the same eye tracker.
            Task.objects.filter(
                worker_id=task.worker_id, assignment_id=task.assignment_id,
                status__in=(Task.Status.CHOSEN, Task.Status.CALIBRATING),
            ).exclude(pk=task.pk).update(status=Task.Status.ABANDONED, finished_at=task.finished_at)
    task.save(update_fields=update)
    return attempt


def validation_rule(cfg: Any) -> ValidationRule:
    """The pass rule with the study's thresholds."""
    return ValidationRule(
        max_distance_px=cfg.validation_max_distance_px,
        max_spread_px=cfg.validation_max_spread_px,
        min_prediction_share=cfg.validation_min_prediction_share,
    )


def attempt_failure_reason(attempt: CalibrationAttempt) -> str | None:
    """Why one attempt failed, for the worker: ``no_face`` or ``accuracy`` (None when it passed)."""
    if attempt.passed:
        return None
    if "no_face" in (attempt.rule or {}).get("failures", []):
        return "no_face"
    if attempt.face_found_share is not None and attempt.face_found_share < 0.5:
        return "no_face"
    return "accuracy"


def assignment_way_out(*, worker_id: int, assignment_id: str) -> Task | None:
    """The task whose failed calibration ended this platform assignment (its way out is all that is
    left); None for lab entries, which have no assignment id (the session remembers it there)."""
    if not assignment_id:
        return None
    return (
        Task.objects.filter(worker_id=worker_id, assignment_id=assignment_id, calibration_failed_at__isnull=False)
        .order_by("calibration_failed_at").first()
    )


def calibration_failure_reason(task: Task) -> str:
    """Why calibration failed, for the worker: ``no_face`` when the camera rarely found a face
    during the attempts, else ``accuracy`` (a face, but predictions far from the targets)."""
    attempts = list(task.calibration_attempts.all())
    if attempts and all(attempt_failure_reason(a) == "no_face" for a in attempts):
        return "no_face"
    return "accuracy"
