"""Study flow: chat turns."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ...models import (
    Mode,
    Task,
    Turn,
)
from ..trajectory import task_rates_store
from .base import MAX_QUERY_CHARS, StudyError, _lock_in, _rng
from .workers import study_settings_get


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
    task = _lock_in(task, Task.Status.CHATTING, refusal=_("This task is not in the chat step."))
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
    Turn.objects.filter(pk=turn.pk).update(**{f"answering_{side}": None})  # the call is over
    return Turn.objects.get(pk=turn.pk)


@transaction.atomic
def turn_rate(*, turn: Turn, ratings: dict[str, Any], box_layout: dict[str, dict] | None = None) -> Turn:
    """Save the ratings given so far (each one as soon as it is given).

    Only answered turns can be rated, only fields that belong to the mode, and only while the
    turn is the latest one (a later question freezes it). ``box_layout`` (``{"1": {...}}``) is
    how the answer boxes looked while the worker rated: kept for the replay, never a rating.
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
    if fields and box_layout:
        turn.box_layout = {**turn.box_layout, **box_layout}
        fields.append("box_layout")
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
    task = _lock_in(task, Task.Status.CHATTING, Task.Status.POST_TASK, refusal=_("This task is not in the chat step."))
    if task.status == Task.Status.POST_TASK:
        return task
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
    # The chat ends here: QC's window for gaps in the logs ends at this moment, not at completion
    # (the post-task pages log nothing).
    task.chat_ended_at = timezone.now()
    task.save(update_fields=["status", "chat_ended_at"])
    return task_rates_store(task=task)
