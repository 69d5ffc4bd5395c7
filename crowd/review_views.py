"""The review queue: one task at a time over a data selection, with one keystroke per call.

``/crowd/review/<selection_id>/`` shows task ``i`` of the queue (``?i=12`` is "12 of 300"), the
worker's choices and ratings per turn beside the replay of one turn (``?turn=<index>``), the
answers rendered from Markdown, the QC figures against their thresholds, every reviewer's call
on the task and the reviewers' agreement over the queue. ``?only=`` narrows the queue (see
:data:`ONLY`), ``?over=`` picks the selection's kept, left-out or all tasks.

Calls are POSTed to the same URL by plain forms (the buttons work
without JavaScript: the answer is a redirect to the next task) or by ``review_queue.mjs`` with
fetch (``Accept: application/json``: the answer is JSON with the next task's URL). The page needs
``access.view_staff_pages``; a call needs ``crowd.review_task`` (checked by the service).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from collection.models import DataSelection, Task

from . import review_agreement, services
from .models import ReviewCall, TaskQC
from .views import StaffPage, qc_figures, replay_context

#: The queue's narrowing filters: query value -> label. "Unreviewed" means not called by *you*.
ONLY = {
    "": "all",
    "unreviewed": "not called by you",
    "flagged": "flagged by a reviewer",
    "disputed": "disputed",
    "qc_flagged": "flagged by QC",
}


class ReviewCallForm(forms.Form):
    """One call from the queue: the task, keep/exclude/flag, the reason (an exclusion needs one)
    and a note; ``over``/``only`` say which queue it was made in, to move on to its next task."""

    task = forms.IntegerField(min_value=1, max_value=2**62)
    call = forms.ChoiceField(choices=ReviewCall.Call.choices)
    reason = forms.ChoiceField(choices=[("", "—"), *ReviewCall.Reason.choices], required=False)
    note = forms.CharField(required=False, max_length=2000)
    over = forms.ChoiceField(choices=list(services.QUEUE_OVER.items()), required=False)
    only = forms.ChoiceField(choices=list(ONLY.items()), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("call") == ReviewCall.Call.EXCLUDE and not data.get("reason"):
            self.add_error("reason", "an exclusion needs a reason (one of the list)")
        return data


def _queue_params(request: HttpRequest) -> tuple[str, str]:
    """``over`` and ``only`` from the query string; unknown values fall back to the defaults."""
    over = request.GET.get("over", "kept")
    only = request.GET.get("only", "")
    return (over if over in services.QUEUE_OVER else "kept"), (only if only in ONLY else "")


def _filtered(ids: list[int], calls: dict[int, list[ReviewCall]], only: str, user: Any) -> list[int]:
    """The queue's task ids narrowed by ``only`` (see :data:`ONLY`)."""
    if only == "unreviewed":
        return [t for t in ids if not any(c.reviewer_id == user.pk for c in calls.get(t, []))]
    if only == "flagged":
        return [t for t in ids if any(c.call == ReviewCall.Call.FLAG for c in calls.get(t, []))]
    if only == "disputed":
        return [t for t in ids if services.task_review_status(calls.get(t, [])) == review_agreement.DISPUTED]
    if only == "qc_flagged":
        flagged = set(TaskQC.objects.filter(task_id__in=ids, flagged=True).values_list("task_id", flat=True))
        return [t for t in ids if t in flagged]
    return ids


def _url(selection: DataSelection, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in ("", None) and not (k == "over" and v == "kept")})
    return reverse("crowd:review_queue", args=[selection.pk]) + (f"?{query}" if query else "")


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


class ReviewQueueView(StaffPage):
    """GET: one task of the queue over a data selection, with the calls and the agreement.
    POST: one call on a task of the queue, then the next task (see the module's docstring)."""

    template_name = "crowd/review_queue.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        selection = get_object_or_404(DataSelection, pk=kwargs["selection_id"])
        user = self.request.user
        over, only = _queue_params(self.request)
        base = services.review_queue_task_ids(selection=selection, over=over)
        calls = services.review_calls(task_ids=base)
        queue = _filtered(base, calls, only, user)
        n = len(queue)
        i = min(max(_int(self.request.GET.get("i"), 1), 1), n + 1)
        context: dict[str, Any] = {
            **super().get_context_data(**kwargs),
            "title": f"Review queue: {selection}",
            "selection": selection,
            "over": over, "only": only, "i": i, "n": n, "n_base": len(base),
            "overs": [(k, label, _url(selection, over=k, only=only)) for k, label in services.QUEUE_OVER.items()],
            "filters": [(k, label, len(_filtered(base, calls, k, user)), _url(selection, over=over, only=k))
                        for k, label in ONLY.items()],
            "previous_url": _url(selection, over=over, only=only, i=i - 1) if i > 1 else None,
            "next_url": _url(selection, over=over, only=only, i=i + 1) if i <= n else None,
            "first_url": _url(selection, over=over, only=only, i=1),
            "pairs": _pairs(calls, base),
            "reasons": list(enumerate(ReviewCall.Reason.choices, start=1)),
            "can_review": user.has_perm("crowd.review_task"),
            "call_url": reverse("crowd:review_queue", args=[selection.pk]),
        }
        if i > n:  # past the end (or an empty queue)
            return context
        task = get_object_or_404(Task.objects.select_related("worker", "topic"), pk=queue[i - 1])
        turns = list(task.turns.order_by("index"))
        index = _int(self.request.GET.get("turn"), turns[0].index if turns else 0)
        turn = next((t for t in turns if t.index == index), turns[0] if turns else None)
        task_calls = calls.get(task.pk, [])
        mine = next((c for c in task_calls if c.reviewer_id == user.pk), None)
        others = [
            {"call": c, "agree": None if mine is None else c.call == mine.call}
            for c in task_calls if c.reviewer_id != user.pk
        ]
        qc_row = TaskQC.objects.filter(task=task).select_related("decided_by").first()
        context.update(
            task=task, turns=turns, turn=turn, mine=mine, others=others,
            status=services.task_review_status(task_calls),
            qc=qc_row, figures=qc_figures(qc_row),
            turn_rows=[(t, _url(selection, over=over, only=only, i=i, turn=t.index)) for t in turns],
            **(replay_context(turn) if turn is not None else {"n_samples": 0, "replay": None}),
        )
        return context

    def post(self, request: HttpRequest, selection_id: int) -> HttpResponse:
        selection = get_object_or_404(DataSelection, pk=selection_id)
        form = ReviewCallForm(request.POST)
        if not form.is_valid():
            return _refuse(request, {k: list(v) for k, v in form.errors.items()})
        data = form.cleaned_data
        over, only = data.get("over") or "kept", data.get("only") or ""
        base = services.review_queue_task_ids(selection=selection, over=over)
        if data["task"] not in base:
            return _refuse(request, {"task": [f"task {data['task']} is not in this queue"]})
        task = get_object_or_404(Task, pk=data["task"])
        try:
            row = services.review_call_save(task=task, call=data["call"], reason=data.get("reason") or "",
                                            note=data.get("note") or "", selection=selection, user=request.user)
        except PermissionDenied as exc:
            if _wants_json(request):
                return JsonResponse({"errors": {"__all__": [str(exc) or "permission denied"]}}, status=403)
            raise
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            return _refuse(request, {field: [message]})
        # The next task after this one in the queue as it is now (a call can move a task out of
        # "not called by you", so positions are found by task, not by counting).
        queue = _filtered(base, services.review_calls(task_ids=base), only, request.user)
        later = [k for k, t in enumerate(queue, start=1) if t > task.pk]
        next_url = _url(selection, over=over, only=only, i=later[0] if later else len(queue) + 1)
        if _wants_json(request):
            calls = services.review_calls(task_ids=[task.pk]).get(task.pk, [])
            return JsonResponse({"call": row.call, "reason": row.reason, "task": task.pk,
                                 "status": services.task_review_status(calls), "next_url": next_url})
        return HttpResponseRedirect(next_url)


def _pairs(calls: dict[int, list[ReviewCall]], ids: list[int]) -> list[dict[str, Any]]:
    """Each pair of reviewers' agreement over the queue's tasks, with their names, for the header."""
    names: dict[int, str] = {}
    flat = []
    for task in ids:
        for c in calls.get(task, []):
            names[c.reviewer_id] = c.reviewer.get_username()
            flat.append((task, c.reviewer_id, c.call))
    return [{"a": names[r1], "b": names[r2], "agreement": result, "percent": 100 * (result.percent or 0.0)}
            for r1, r2, result in review_agreement.pairwise(flat)]


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _refuse(request: HttpRequest, errors: dict[str, list[str]], status: int = 400) -> HttpResponse:
    """A refused call: JSON ``{"errors": {field: [messages]}}`` for fetch, plain text otherwise;
    either names the field."""
    if _wants_json(request):
        return JsonResponse({"errors": errors}, status=status)
    text = "\n".join(f"{field}: {'; '.join(msgs)}" for field, msgs in errors.items())
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
