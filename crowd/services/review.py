"""The review queue's writes and reads: reviewers' calls on tasks and what they decide.

How calls feed a task's decision (``TaskQC.decision`` and ``Task.excluded``, what data selections
and exports read):

* each reviewer has one current call per task (:class:`~crowd.models.ReviewCall`); a new call
  replaces that reviewer's old one, the other reviewers' calls stay;
* when the decisive calls (keep, exclude) of all reviewers agree, that decision is applied
  through :func:`~crowd.services.qc.task_keep` / :func:`~crowd.services.qc.task_exclude`, the same
  services as the task review page (so the decision, its author and a note are recorded the same
  way); it is applied only when it differs from the task's decision, so the first author stays;
* when they disagree the task is *disputed*: it keeps the decision it had (the first reviewer's,
  or one made on the task page) until a reviewer changes their call, or a researcher decides on
  the task page;
* a flag ("needs another look") decides nothing: the task keeps the decision it had;
* agreeing calls override a decision made on the task page (they are the newer judgement).

A data selection is frozen: the decisions reach it through a new version (the admin action "New
version with the same rules and today's QC and decisions").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction

from collection.models import DataSelection, Task

from .. import qc, review_agreement
from ..models import ReviewCall, TaskQC
from .base import CrowdError, _require
from .qc import task_exclude, task_keep

#: Which tasks of a selection a queue goes through.
QUEUE_OVER = {"kept": "tasks kept", "left_out": "tasks left out", "all": "all candidate tasks"}


def review_queue_task_ids(*, selection: DataSelection, over: str = "kept") -> list[int]:
    """The task ids of a queue over ``selection``, in a stable order (the tasks' primary keys).

    ``over`` is ``kept`` (the frozen tasks), ``left_out`` (the ones the rules left out, to check
    the rules) or ``all``; anything else is a ``ValueError`` naming the field.
    """
    ids = _named(selection, over)
    present = set(Task.objects.filter(pk__in=ids).values_list("pk", flat=True))  # deleted tasks drop out
    return sorted(ids & present)


def review_queue_gone(*, selection: DataSelection, over: str = "kept") -> int:
    """How many tasks the queue over ``selection`` would name but a participant's withdrawal
    deleted: the queue skips them (positions count the tasks that exist) and says so."""
    return len(_named(selection, over) & selection.tasks_gone())


def _named(selection: DataSelection, over: str) -> set[int]:
    """The task ids ``selection`` names for ``over`` (frozen, so possibly deleted since)."""
    if over not in QUEUE_OVER:
        raise ValueError(f"over: expected one of {', '.join(QUEUE_OVER)}")
    kept = {int(t) for t in selection.task_ids}
    left = {int(r["task"]) for r in selection.left_out or []}
    return {"kept": kept, "left_out": left, "all": kept | left}[over]


#: QC flags a queue over the QC verdicts can narrow to ("" = any flag).
QC_FLAGS = {"": "any QC flag", "validation": "validation failed", **{r.metric: r.label for r in qc.RULES}}


def qc_queue_task_ids(*, flag: str = "") -> list[int]:
    """The tasks QC flagged (all of them, or those with the flag ``flag``), by primary key: a
    queue for checking QC's verdicts before any selection is made."""
    if flag not in QC_FLAGS:
        raise ValueError(f"flag: expected one of {', '.join(k for k in QC_FLAGS if k)} (or nothing)")
    rows = TaskQC.objects.filter(flagged=True)
    if flag:
        rows = rows.filter(flags__contains=f",{flag},")
    return sorted(rows.values_list("task_id", flat=True))


def review_calls(*, task_ids: list[int]) -> dict[int, list[ReviewCall]]:
    """Every call on these tasks, per task, oldest first (with the reviewer loaded)."""
    out: dict[int, list[ReviewCall]] = defaultdict(list)
    for row in ReviewCall.objects.filter(task_id__in=task_ids).select_related("reviewer").order_by("created_at", "pk"):
        out[row.task_id].append(row)
    return out


def _clean(call: str, reason: str) -> str:
    if call not in ReviewCall.Call.values:
        raise ValueError(f"call: expected one of {', '.join(ReviewCall.Call.values)}")
    if reason and reason not in ReviewCall.Reason.values:
        raise ValueError(f"reason: expected one of {', '.join(ReviewCall.Reason.values)}")
    if call == ReviewCall.Call.EXCLUDE and not reason:
        raise ValueError("reason: an exclusion needs a reason")
    return "" if call == ReviewCall.Call.KEEP else reason


def review_call_save(
    *, task: Task, call: str, reason: str = "", note: str = "", selection: DataSelection | None = None, user: Any
) -> ReviewCall:
    """Record ``user``'s call on ``task`` (replacing their earlier one) and apply what the calls
    now agree on (see the module's docstring).

    Needs ``crowd.review_task`` and a logged-in reviewer (a call is a person's judgement, so the
    system cannot make one). Raises ``ValueError`` naming the field for a bad call or reason (an
    exclusion needs a reason; a keep drops any reason given).
    """
    _require(user, "crowd.review_task")
    if user is None or not getattr(user, "is_authenticated", False):
        raise CrowdError("a review call needs a logged-in reviewer")
    reason = _clean(call, reason)
    with transaction.atomic():
        # One reviewer at a time per task, so the calls read below are the ones that decide.
        task = Task.objects.select_for_update().get(pk=task.pk)
        row, _ = ReviewCall.objects.update_or_create(
            task=task, reviewer=user, defaults={"call": call, "reason": reason, "note": note, "selection": selection},
        )
        calls = list(ReviewCall.objects.filter(task=task).order_by("created_at", "pk").values_list("call", flat=True))
        decision = review_agreement.agreed_decision(calls)
        current = TaskQC.objects.filter(task=task).values_list("decision", flat=True).first() or ""
        if decision is not None and decision != current:
            label = ReviewCall.Reason(reason).label if reason else ""
            text = "; ".join(part for part in (f"review queue: {label}" if label else "review queue", note) if part)
            apply = task_exclude if decision == ReviewCall.Call.EXCLUDE else task_keep
            apply(task=task, user=user, note=text)
    return row


def task_review_status(calls: list[ReviewCall]) -> str:
    """The queue status of a task from its calls (:func:`crowd.review_agreement.task_status`)."""
    return review_agreement.task_status([c.call for c in calls])
