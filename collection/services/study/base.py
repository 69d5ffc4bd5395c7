"""What every step of the study flow shares: the error it raises and the open statuses."""

from __future__ import annotations

import random

from ...models import (
    Task,
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


def _lock(task: Task) -> Task:
    """The task row, locked until the end of the transaction (two tabs cannot both advance it)."""
    return Task.objects.select_for_update().get(pk=task.pk)


def _lock_in(task: Task, *statuses: str, refusal: str) -> Task:
    """The locked task row if its status is one of ``statuses``; else ``StudyError(refusal)``.

    Each step of the flow starts here; a step that was already taken (a double click, a reload)
    passes its target status too, so the caller can return the task unchanged.
    """
    task = _lock(task)
    if task.status not in statuses:
        raise StudyError(refusal, code="state")
    return task
