"""Services of the worker-facing study: every write of the study flow goes through here.

The task's ``status`` is the state machine (``Task.Status``)::

    CHOSEN --calibration passed--> CHATTING --finish (N turns, T s)--> POST_TASK --answers--> COMPLETED
       \\--calibration started--> CALIBRATING --/

Each service checks the transition it performs and raises :class:`StudyError` otherwise, so a
reload, a double click or a hand-made request can never skip a step. Views only translate
``StudyError`` to a message or an HTTP 4xx.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import signals
from ..gaze_quality import centre_score, point_quality
from ..models import (
    CalibrationAttempt,
    LLMModel,
    Mode,
    Platform,
    StudySettings,
    Task,
    Topic,
    Turn,
    Worker,
)

OPEN_STATUSES = (Task.Status.CHOSEN, Task.Status.CALIBRATING, Task.Status.CHATTING, Task.Status.POST_TASK)
MAX_QUERY_CHARS = 2000

_rng = random.SystemRandom()


class StudyError(Exception):
    """A study action that is not allowed in the current state; the message is shown to the worker."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


# --- settings and identity ------------------------------------------------------------------------


def study_settings_get() -> StudySettings:
    """The singleton settings row, created with defaults on first use."""
    obj, _created = StudySettings.objects.get_or_create(pk=1)
    return obj


def worker_pseudonym(*, platform: str, platform_worker_id: str) -> str:
    """HMAC of the platform id under the lab key: stable per person, meaningless outside the lab."""
    key = settings.IFLLM_PSEUDONYM_KEY.encode()
    digest = hmac.new(key, f"{platform}:{platform_worker_id}".encode(), hashlib.sha256).hexdigest()
    return f"w{digest[:31]}"


@transaction.atomic
def worker_get_or_create(*, platform: str, platform_worker_id: str) -> Worker:
    """The worker with this platform id, created (without consent) when new.

    Raises StudyError for an empty/overlong id and for blocked workers.
    """
    wid = platform_worker_id.strip()
    if not wid or len(wid) > 128 or "\x00" in wid:
        raise StudyError(_("Please enter a valid worker ID."), field="worker_id")
    if platform not in (Platform.MTURK, Platform.PROLIFIC, Platform.LAB):
        raise StudyError(_("Unknown platform."), field="platform")
    worker, _created = Worker.objects.get_or_create(
        platform=platform,
        platform_worker_id=wid,
        defaults={
            "pseudonym": worker_pseudonym(platform=platform, platform_worker_id=wid),
            "created_at": timezone.now(),
        },
    )
    if worker.blocked:
        raise StudyError(_("This worker ID cannot take part in the study."), code="blocked")
    return worker


@transaction.atomic
def worker_consent_give(*, worker: Worker, consent: bool) -> Worker:
    """Record consent; refusing is an error so that the page can say why it cannot continue."""
    if not consent:
        raise StudyError(_("You need to tick the consent box to take part."), field="consent")
    worker.consent = True
    worker.consented_at = timezone.now()
    worker.save(update_fields=["consent", "consented_at"])
    return worker


@transaction.atomic
def worker_demographics_set(
    *, worker: Worker, age: int, location: str, education: str, race: str, gender: str
) -> Worker:
    """Store demographics (already validated by the form; the ranges are re-checked here)."""
    if worker.consent is not True:
        raise StudyError(_("Consent is needed first."), code="no_consent")
    if not 18 <= int(age) <= 122:
        raise StudyError(_("Age must be between 18 and 122."), field="age")
    for name, value in (("location", location), ("education", education), ("race", race), ("gender", gender)):
        if not value.strip() or len(value) > 100:
            raise StudyError(_("Please answer this question."), field=name)
    worker.age = int(age)
    worker.location, worker.education = location.strip(), education.strip()
    worker.race, worker.gender = race.strip(), gender.strip()
    worker.save(update_fields=["age", "location", "education", "race", "gender"])
    return worker


def worker_needs_profile(worker: Worker) -> str | None:
    """'consent' or 'demographics' while the worker still owes them, else None."""
    if worker.consent is not True:
        return "consent"
    if worker.age is None:
        return "demographics"
    return None


# --- topics and balanced assignment ------------------------------------------------------------


def topics_available(*, worker: Worker) -> list[Topic]:
    """Enabled topics the worker has not finished and has no open task on."""
    taken = Task.objects.filter(worker=worker).exclude(status=Task.Status.ABANDONED).values("topic_id")
    return list(Topic.objects.filter(enabled=True).exclude(pk__in=taken))


def topic_pool_draw(*, worker: Worker) -> list[int]:
    """A shuffled sample of available topic ids (against position bias), of the staff-set size."""
    pool = [t.pk for t in topics_available(worker=worker)]
    _rng.shuffle(pool)
    return pool[: study_settings_get().topic_pool_size]


def _live_tasks():
    """Tasks that count against quotas: the site's own, not abandoned (release imports excluded)."""
    return Task.objects.filter(release_task_id__isnull=True).exclude(status=Task.Status.ABANDONED)


def _choose_mode(*, topic: Topic, cfg: StudySettings) -> str:
    """Mode with room under its quota; among those, the one this topic has had least, then the
    one furthest from its quota. Never derived from the topic id."""
    quotas = {Mode.POINTWISE: cfg.pointwise_quota, Mode.PAIRWISE: cfg.pairwise_quota}
    live = _live_tasks()
    total = dict(live.values_list("mode").annotate(n=Count("id")))
    on_topic = dict(live.filter(topic=topic).values_list("mode").annotate(n=Count("id")))
    enabled = [m for m, q in quotas.items() if q > 0]
    if not enabled:
        raise StudyError(_("The study is not taking new tasks."), code="closed")
    open_ = [m for m in enabled if total.get(m, 0) < quotas[m]] or enabled
    return min(
        open_,
        key=lambda m: (on_topic.get(m, 0), total.get(m, 0) / quotas[m], _rng.random()),
    )


def _choose_models(*, mode: str) -> tuple[str, str]:
    """Least-used enabled models under their quota (distinct in pairwise; sides in random order)."""
    models = list(LLMModel.objects.filter(enabled=True))
    need = 2 if mode == Mode.PAIRWISE else 1
    if len(models) < need:
        raise StudyError(_("No language model is available right now. Please try later."), code="no_models")
    live = _live_tasks()
    used = {m.name: 0 for m in models}
    for name, n in live.values_list("model_1").annotate(n=Count("id")):
        if name in used:
            used[name] += n
    for name, n in live.exclude(model_2="").values_list("model_2").annotate(n=Count("id")):
        if name in used:
            used[name] += n
    under = [m for m in models if used[m.name] < m.quota]
    pool = under if len(under) >= need else models
    ranked = sorted(pool, key=lambda m: (used[m.name] / max(m.quota, 1), _rng.random()))
    chosen = [m.name for m in ranked[:need]]
    _rng.shuffle(chosen)  # which model sits left is random, so position is not confounded
    return chosen[0], (chosen[1] if need == 2 else "")


@dataclass(frozen=True)
class Entry:
    """Where the worker came from; stored on every task created in this visit."""

    platform: str
    assignment_id: str = ""
    hit_id: str = ""
    turk_submit_to: str = ""
    study_id: str = ""
    session_id: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@transaction.atomic
def tasks_create_for_topics(
    *, worker: Worker, topic_ids: Iterable[int], offered: Iterable[int], entry: Entry
) -> list[Task]:
    """Create one CHOSEN task per chosen topic, with a balanced mode and models.

    Only topics that were offered to this worker and are still available may be chosen.
    The settings row is locked so that concurrent workers cannot overshoot a quota.
    """
    cfg = StudySettings.objects.select_for_update().get(pk=study_settings_get().pk)
    ids = list(dict.fromkeys(int(t) for t in topic_ids))
    if not ids:
        raise StudyError(_("Please choose at least one topic."), field="topics")
    if len(ids) > cfg.max_topics_per_entry:
        raise StudyError(_("Please choose at most %(n)d topics.") % {"n": cfg.max_topics_per_entry}, field="topics")
    allowed = set(offered) & {t.pk for t in topics_available(worker=worker)}
    if not set(ids) <= allowed:
        raise StudyError(_("One of the chosen topics is not available."), field="topics")
    topics = Topic.objects.in_bulk(ids)
    tasks = []
    for tid in ids:
        mode = _choose_mode(topic=topics[tid], cfg=cfg)
        m1, m2 = _choose_models(mode=mode)
        tasks.append(
            Task.objects.create(
                worker=worker,
                topic=topics[tid],
                mode=mode,
                model_1=m1,
                model_2=m2,
                status=Task.Status.CHOSEN,
                started_at=timezone.now(),
                assignment_id=entry.assignment_id,
                hit_id=entry.hit_id,
                extra={
                    "entry": entry.as_dict(),
                    # Recorded per task: whether gaze and mouse were coupled by WebGazer's learning.
                    "webgazer_learn_during_task": cfg.webgazer_learn_during_task,
                    "sample_interval_ms": cfg.sample_interval_ms,
                    "min_turns": cfg.min_turns,
                    "min_seconds": cfg.min_seconds,
                },
            )
        )
    return tasks


def tasks_open(*, worker: Worker, assignment_id: str | None = None):
    """The worker's unfinished tasks, oldest first: the first one is where the worker is.

    ``assignment_id`` (the session's entry) keeps to the tasks that assignment started: an open
    task belongs to its assignment and is never moved to another (``services.identity``).
    """
    tasks = Task.objects.filter(worker=worker, status__in=OPEN_STATUSES)
    if assignment_id is not None:
        tasks = tasks.filter(assignment_id=assignment_id)
    return tasks.select_related("topic").order_by("pk")


# --- calibration ---------------------------------------------------------------------------------


def _lock(task: Task) -> Task:
    return Task.objects.select_for_update().get(pk=task.pk)


@transaction.atomic
def task_calibration_start(*, task: Task) -> Task:
    """CHOSEN -> CALIBRATING (idempotent while calibrating)."""
    task = _lock(task)
    if task.status == Task.Status.CHOSEN:
        task.status = Task.Status.CALIBRATING
        task.save(update_fields=["status"])
    elif task.status != Task.Status.CALIBRATING:
        raise StudyError(_("This task is not waiting for calibration."), code="state")
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
) -> CalibrationAttempt:
    """Score one attempt from its raw predictions, store it, and start the chat if it passed.

    ``points`` are validation targets ``{"x", "y", "centre": bool, "samples": [{"x","y","t"}]}``;
    the score is the centre score of the point flagged ``centre``. Task must be CHOSEN or
    CALIBRATING; leaves it CALIBRATING (failed) or CHATTING (passed).
    """
    task = _lock(task)
    if task.status not in (Task.Status.CHOSEN, Task.Status.CALIBRATING):
        raise StudyError(_("This task is not waiting for calibration."), code="state")
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


# --- chat turns ----------------------------------------------------------------------------------


def turn_missing_ratings(turn: Turn, mode: str) -> list[str]:
    """Names of the ratings this turn still needs (empty when complete)."""
    need = ["likert_1"]
    if mode == Mode.PAIRWISE:
        need += ["likert_2", "preferred"]
    elif turn.index > 0:
        need.append("better_than_previous")
    return [f for f in need if getattr(turn, f) is None]


def turn_is_answered(turn: Turn, mode: str) -> bool:
    """Every side the mode shows has a stored response (an error is not an answer)."""
    sides = (1, 2) if mode == Mode.PAIRWISE else (1,)
    return all(getattr(turn, f"response_{s}") for s in sides)


def _rated_turns(task: Task) -> list[Turn]:
    return [t for t in task.turns.all() if turn_is_answered(t, task.mode) and not turn_missing_ratings(t, task.mode)]


@transaction.atomic
def turn_create(*, task: Task, query: str) -> Turn:
    """Ask a new question. Task must be CHATTING and the previous turn answered and fully rated."""
    task = _lock(task)
    if task.status != Task.Status.CHATTING:
        raise StudyError(_("This task is not in the chat step."), code="state")
    query = (query or "").strip()
    if not query:
        raise StudyError(_("Please type a question."), field="query")
    if len(query) > MAX_QUERY_CHARS:
        raise StudyError(_("The question is too long."), field="query")
    last = task.turns.order_by("-index").first()
    if last is not None:
        if not turn_is_answered(last, task.mode):
            raise StudyError(_("The previous question has no complete answer yet."), code="unanswered")
        if turn_missing_ratings(last, task.mode):
            raise StudyError(_("Please rate the previous answer first."), code="unrated")
    cfg = study_settings_get()
    bullet = _rng.random() < cfg.bullet_probability
    return Turn.objects.create(
        task=task,
        index=0 if last is None else last.index + 1,
        query=query,
        query_sent=query + cfg.bullet_suffix if bullet else query,
        bullet_instruction=bullet,
        model_1=task.model_1,
        model_2=task.model_2,
        asked_at=timezone.now(),
    )


def turn_response_store(*, turn: Turn, side: int, text: str | None = None, error: str | None = None) -> Turn:
    """Store a finished answer or a provider error for one side, once.

    The write is conditional (no answer stored yet), so two streams racing for the same turn
    (a reload mid-answer) cannot overwrite what the worker was shown. An error clears nothing and
    never fills ``response_*``. Returns the row as stored.
    """
    if side not in (1, 2):
        raise ValueError(side)
    empty = Q(**{f"response_{side}": ""})
    if text is not None:
        Turn.objects.filter(empty, pk=turn.pk).update(
            **{f"response_{side}": text, f"error_{side}": ""}, answered_at=timezone.now()
        )
    else:
        Turn.objects.filter(empty, pk=turn.pk).update(**{f"error_{side}": (error or "error")[:2000]})
    return Turn.objects.get(pk=turn.pk)


@transaction.atomic
def turn_rate(*, turn: Turn, ratings: dict[str, Any]) -> Turn:
    """Save the ratings given so far (each one as soon as it is given).

    Only answered turns can be rated, only fields that belong to the mode, and only while the
    turn is the latest one (a later question freezes it).
    """
    turn = Turn.objects.select_for_update().select_related("task").get(pk=turn.pk)
    task = turn.task
    if task.status != Task.Status.CHATTING:
        raise StudyError(_("This task is not in the chat step."), code="state")
    if not turn_is_answered(turn, task.mode):
        raise StudyError(_("Answers with an error cannot be rated."), code="unanswered")
    if task.turns.filter(index__gt=turn.index).exists():
        raise StudyError(_("This answer can no longer be changed."), code="frozen")
    allowed = {"likert_1"}
    if task.mode == Mode.PAIRWISE:
        allowed |= {"likert_2", "preferred"}
    elif turn.index > 0:
        allowed.add("better_than_previous")
    fields = []
    for name, value in ratings.items():
        if value is None:
            continue
        if name not in allowed:
            raise StudyError(_("This rating does not apply here."), field=name)
        if name.startswith("likert") and not 1 <= int(value) <= 5:
            raise StudyError(_("Choose a value from 1 to 5."), field=name)
        if name == "preferred" and value not in (1, 2):
            raise StudyError(_("Choose the left or the right answer."), field=name)
        setattr(turn, name, value)
        fields.append(name)
    if fields:
        if not turn_missing_ratings(turn, task.mode):
            turn.rated_at = timezone.now()
            fields.append("rated_at")
        turn.save(update_fields=fields)
    return turn


def task_chat_progress(*, task: Task) -> dict[str, Any]:
    """How far the chat is from the finish rule (rated turns and seconds)."""
    cfg = task.extra
    min_turns = int(cfg.get("min_turns", 3))
    min_seconds = int(cfg.get("min_seconds", 240))
    elapsed = (timezone.now() - task.chat_started_at).total_seconds() if task.chat_started_at else 0.0
    rated = len(_rated_turns(task))
    return {
        "rated_turns": rated,
        "min_turns": min_turns,
        "elapsed_s": elapsed,
        "min_seconds": min_seconds,
        "seconds_left": max(0.0, min_seconds - elapsed),
        "can_finish": rated >= min_turns and elapsed >= min_seconds,
    }


@transaction.atomic
def task_chat_finish(*, task: Task) -> Task:
    """CHATTING -> POST_TASK once at least N turns are rated and T seconds have passed."""
    task = _lock(task)
    if task.status == Task.Status.POST_TASK:
        return task
    if task.status != Task.Status.CHATTING:
        raise StudyError(_("This task is not in the chat step."), code="state")
    progress = task_chat_progress(task=task)
    if progress["rated_turns"] < progress["min_turns"]:
        raise StudyError(
            _("Please ask and rate at least %(n)d questions.") % {"n": progress["min_turns"]}, code="too_few_turns"
        )
    if progress["elapsed_s"] < progress["min_seconds"]:
        raise StudyError(
            _("Please keep going for %(s)d more seconds.") % {"s": int(progress["seconds_left"]) + 1}, code="too_early"
        )
    task.status = Task.Status.POST_TASK
    task.save(update_fields=["status"])
    return task


# --- post-task and completion --------------------------------------------------------------------

POST_STEPS = ("summary", "understanding", "sentence")


def task_post_step(task: Task) -> str:
    """The post-task page the worker is on, from what is already stored."""
    if not task.summary:
        return "summary"
    if task.understand_before is None or task.understand_after is None:
        return "understanding"
    return "sentence"


def _answers_text(task: Task) -> list[str]:
    return [t for turn in task.turns.all() for t in (turn.response_1, turn.response_2) if t]


@transaction.atomic
def task_post_answer(*, task: Task, step: str, data: dict[str, Any]) -> Task:
    """Save one post-task page; the last one completes the task. Task must be POST_TASK."""
    task = _lock(task)
    if task.status != Task.Status.POST_TASK:
        raise StudyError(_("This task is not in the post-task step."), code="state")
    if step != task_post_step(task):
        raise StudyError(_("Please answer the questions in order."), code="order")
    if step == "summary":
        summary = (data.get("summary") or "").strip()
        if len(summary) < 20:
            raise StudyError(_("Please write a short summary (at least 20 characters)."), field="summary")
        task.summary = summary
        task.save(update_fields=["summary"])
        return task
    if step == "understanding":
        for name in ("understand_before", "understand_after"):
            if data.get(name) not in (1, 2, 3, 4, 5):
                raise StudyError(_("Choose a value from 1 to 5."), field=name)
        task.understand_before, task.understand_after = data["understand_before"], data["understand_after"]
        task.save(update_fields=["understand_before", "understand_after"])
        return task
    sentence = " ".join((data.get("copy_sentence") or "").split())
    if len(sentence) < 5:
        raise StudyError(_("Please copy one sentence from an answer."), field="copy_sentence")
    if not any(sentence in " ".join(text.split()) for text in _answers_text(task)):
        raise StudyError(_("This sentence is not in any of the answers. Please copy it exactly."),
                         field="copy_sentence")
    task.copy_sentence = sentence
    task.feedback = (data.get("feedback") or "").strip()[:5000]
    task.save(update_fields=["copy_sentence", "feedback"])
    return task_complete(task=task)


def task_completeness_problems(task: Task) -> list[str]:
    """Why the task is not complete (empty list when it is): checked before any code exists."""
    problems = []
    progress = task_chat_progress(task=task)
    if progress["rated_turns"] < progress["min_turns"]:
        problems.append("too few rated turns")
    if not task.summary:
        problems.append("no summary")
    if task.understand_before is None or task.understand_after is None:
        problems.append("no understanding ratings")
    if not task.copy_sentence:
        problems.append("no copied sentence")
    return problems


@transaction.atomic
def task_complete(*, task: Task) -> Task:
    """POST_TASK -> COMPLETED with a random completion code unique to this task/assignment."""
    task = _lock(task)
    if task.status == Task.Status.COMPLETED:
        return task
    if task.status != Task.Status.POST_TASK:
        raise StudyError(_("This task is not finished."), code="state")
    problems = task_completeness_problems(task)
    if problems:
        raise StudyError(_("This task is not complete: %(p)s.") % {"p": ", ".join(problems)}, code="incomplete")
    task.completion_code = secrets.token_urlsafe(12)
    task.status = Task.Status.COMPLETED
    task.finished_at = timezone.now()
    task.save(update_fields=["completion_code", "status", "finished_at"])
    signals.task_completed.send(sender=Task, task=task)
    return task
