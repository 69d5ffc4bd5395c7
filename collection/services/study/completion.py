"""Study flow: post-task and completion."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from ... import signals
from ...models import (
    Task,
)
from ...sentences import copy_problem, normalise
from ..trajectory import task_rates_store
from .base import StudyError, _lock_in
from .turns import task_chat_progress

POST_STEPS = ("summary", "understanding", "sentence")

#: What the worker is told for each way a copy is not one sentence (``collection.sentences``).
COPY_PROBLEMS = {
    "short": _lazy("Please copy one sentence from an answer."),
    "not_found": _lazy("This sentence is not in any of the answers. Please copy it exactly."),
    "several": _lazy("Please copy only one sentence, not several (one sentence ends with a full stop)."),
    "fragment": _lazy("Please copy the whole sentence, not only a few words of it."),
}


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
    task = _lock_in(task, Task.Status.POST_TASK, refusal=_("This task is not in the post-task step."))
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
    sentence = normalise(data.get("copy_sentence") or "")
    problem = copy_problem(sentence, _answers_text(task))
    if problem is not None:
        raise StudyError(str(COPY_PROBLEMS[problem]), field="copy_sentence")
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
    task = _lock_in(task, Task.Status.POST_TASK, Task.Status.COMPLETED, refusal=_("This task is not finished."))
    if task.status == Task.Status.COMPLETED:
        return task
    problems = task_completeness_problems(task)
    if problems:
        raise StudyError(_("This task is not complete: %(p)s.") % {"p": ", ".join(problems)}, code="incomplete")
    task.completion_code = secrets.token_urlsafe(12)
    task.status = Task.Status.COMPLETED
    task.finished_at = timezone.now()
    task.save(update_fields=["completion_code", "status", "finished_at"])
    task_rates_store(task=task)  # again: the chat's last samples arrived after it ended
    signals.task_completed.send(sender=Task, task=task)
    return task
