"""Study flow: calibration."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ...gaze_quality import centre_score, point_quality
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
    """Score one attempt from its raw predictions, store it, and start the chat if it passed.

    ``points`` are validation targets ``{"x", "y", "centre": bool, "samples": [{"x","y","t"}]}``;
    the score is the centre score of the point flagged ``centre``. Task must be CHOSEN or
    CALIBRATING; leaves it CALIBRATING (failed) or CHATTING (passed).
    """
    task = _lock_in(task, Task.Status.CHOSEN, Task.Status.CALIBRATING,
                    refusal=_("This task is not waiting for calibration."))
    cfg = study_settings_get()
    centre = [p for p in points if p.get("centre")]
    if len(centre) != 1:
        raise StudyError(_("Exactly one validation point must be the centre."), field="points")
    per_point = []
    for p in points:
        s = p["samples"]
        q = point_quality(
            [v["x"] for v in s], [v["y"] for v in s], [v["t"] for v in s],
            target=(p["x"], p["y"]), radius=cfg.validation_radius_px,
        )
        per_point.append({**q.as_dict(), "centre": bool(p.get("centre"))})
    cs = centre[0]["samples"]
    score = centre_score([v["x"] for v in cs], [v["y"] for v in cs], target=(centre[0]["x"], centre[0]["y"]),
                         height=viewport_h)
    passed = score > cfg.pass_threshold
    attempt = CalibrationAttempt.objects.create(
        task=task,
        kind=kind,
        score=score,
        threshold=cfg.pass_threshold,
        passed=passed,
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
                           "viewport": [viewport_w, viewport_h]}
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
    task.save(update_fields=update)
    return attempt


def calibration_failure_reason(task: Task) -> str:
    """Why calibration failed, for the worker: ``no_face`` when the camera rarely found a face
    during the attempts, else ``accuracy`` (a face, but predictions far from the targets)."""
    shares = [a.face_found_share for a in task.calibration_attempts.all() if a.face_found_share is not None]
    if shares and max(shares) < 0.5:
        return "no_face"
    return "accuracy"
