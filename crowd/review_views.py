"""The review queue: one task at a time over a data selection, with one keystroke per call.

``/crowd/review/<selection_id>/`` (or ``/crowd/review/qc/``: the tasks QC flagged, ``?flag=`` one
flag, to check QC's verdicts before a selection exists) shows task ``i`` of the queue (``?i=12`` is "12 of 300"), the
worker's choices and ratings per turn beside the replay of one turn (``?turn=<index>``), the
answers rendered from Markdown, the QC figures against their thresholds, every reviewer's call
on the task and the reviewers' agreement over the queue. ``?only=`` narrows the queue (see
:data:`ONLY`), ``?over=`` picks the selection's kept, left-out or all tasks.

Calls are POSTed to the same URL by plain forms (the buttons work
without JavaScript: the answer is a redirect to the next task, or for a refused call the page
again at the same task with the message beside the field) or by ``review_queue.mjs`` with
fetch (``Accept: application/json``: the answer is JSON with the next task's URL). The page needs
``access.view_staff_pages``; a call needs ``crowd.review_task`` (checked by the service).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
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
    and a note; ``over``/``flag``/``only`` say which queue it was made in, to move on to its next task."""

    task = forms.IntegerField(min_value=1, max_value=2**62)
    call = forms.ChoiceField(choices=ReviewCall.Call.choices)
    reason = forms.ChoiceField(choices=[("", "—"), *ReviewCall.Reason.choices], required=False)
    note = forms.CharField(required=False, max_length=2000)
    over = forms.ChoiceField(choices=list(services.QUEUE_OVER.items()), required=False)
    flag = forms.ChoiceField(choices=list(services.QC_FLAGS.items()), required=False)
    only = forms.ChoiceField(choices=list(ONLY.items()), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("call") == ReviewCall.Call.EXCLUDE and not data.get("reason"):
            self.add_error("reason", "an exclusion needs a reason (one of the list)")
        return data


@dataclass
class Queue:
    """What a queue goes through: its task ids (in order), what defines it in the URL (``fixed``),
    the selection it is over (``None`` for QC's flags) and the other queues of the same source."""

    title: str
    path: str
    ids: list[int]
    selection: DataSelection | None = None
    fixed: dict[str, str] = field(default_factory=dict)
    scopes: list[tuple[str, str, bool]] = field(default_factory=list)  # (label, url, current)
    #: Tasks the selection names here that a withdrawal deleted: not in ``ids`` (positions count
    #: the tasks that exist), said on the page as "withdrawn — deleted".
    n_gone: int = 0

    def url(self, **params: Any) -> str:
        """The queue's URL with ``params`` (empty values left out) after what defines it."""
        query = urlencode({k: v for k, v in {**self.fixed, **params}.items() if v not in ("", None)})
        return self.path + (f"?{query}" if query else "")


def selection_queue(selection: DataSelection, over: str) -> Queue:
    """The queue over a selection's kept (``over=kept``), left-out or all tasks."""
    path = reverse("crowd:review_queue", args=[selection.pk])
    fixed = {} if over == "kept" else {"over": over}
    scopes = [(label, path + ("" if key == "kept" else f"?over={key}"), key == over)
              for key, label in services.QUEUE_OVER.items()]
    return Queue(title=f"{selection.name} v{selection.version}", path=path, selection=selection, fixed=fixed,
                 ids=services.review_queue_task_ids(selection=selection, over=over), scopes=scopes,
                 n_gone=services.review_queue_gone(selection=selection, over=over))


def qc_queue(flag: str) -> Queue:
    """The queue over the tasks QC flagged (with the flag ``flag``, or any)."""
    path = reverse("crowd:review_queue_qc")
    scopes = [(label, path + (f"?flag={key}" if key else ""), key == flag) for key, label in services.QC_FLAGS.items()]
    return Queue(title=f"QC-flagged tasks: {services.QC_FLAGS[flag]}", path=path, fixed={"flag": flag} if flag else {},
                 ids=services.qc_queue_task_ids(flag=flag), scopes=scopes)


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


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


class ReviewQueueView(StaffPage):
    """GET: one task of the queue over a data selection, with the calls and the agreement.
    POST: one call on a task of the queue, then the next task (see the module's docstring)."""

    template_name = "crowd/review_queue.html"

    def queue(self, params: Any) -> Queue:
        """The queue that ``params`` (the query string or the POST) name; unknown values fall back."""
        selection = get_object_or_404(DataSelection, pk=self.kwargs["selection_id"])
        over = params.get("over") or "kept"
        return selection_queue(selection, over if over in services.QUEUE_OVER else "kept")

    #: Where the page is: the query string, or for a refused call the POST's queue at its task.
    params: Any = None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = self.request.user
        params = self.params if self.params is not None else self.request.GET
        queue = self.queue(params)
        only = params.get("only", "")
        only = only if only in ONLY else ""
        base = queue.ids
        calls = services.review_calls(task_ids=base)
        ids = _filtered(base, calls, only, user)
        n = len(ids)
        i = min(max(_int(params.get("i"), 1), 1), n + 1)
        context: dict[str, Any] = {
            **super().get_context_data(**kwargs),
            "title": f"Review queue: {queue.title}",
            "queue": queue,
            "selection": queue.selection,
            "only": only, "i": i, "n": n, "n_base": len(base),
            "filters": [(k, label, len(_filtered(base, calls, k, user)), queue.url(only=k))
                        for k, label in ONLY.items()],
            "previous_url": queue.url(only=only, i=i - 1) if i > 1 else None,
            "next_url": queue.url(only=only, i=i + 1) if i <= n else None,
            "first_url": queue.url(only=only, i=1),
            "pairs": _pairs(calls, base),
            "reasons": list(enumerate(ReviewCall.Reason.choices, start=1)),
            "can_review": user.has_perm("crowd.review_task"),
        }
        if i > n:  # past the end (or an empty queue)
            return context
        task = get_object_or_404(Task.objects.select_related("worker", "topic"), pk=ids[i - 1])
        turns = list(task.turns.order_by("index"))
        index = _int(params.get("turn"), turns[0].index if turns else 0)
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
            turn_rows=[(t, queue.url(only=only, i=i, turn=t.index)) for t in turns],
            **(replay_context(turn) if turn is not None else {"n_samples": 0, "replay": None}),
        )
        return context

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = ReviewCallForm(request.POST)
        if not form.is_valid():
            return self.refuse({k: list(v) for k, v in form.errors.items()})
        data = form.cleaned_data
        queue = self.queue(data)
        only = data.get("only") or ""
        if data["task"] not in queue.ids:
            return self.refuse({"task": [f"task {data['task']} is not in this queue"]})
        task = get_object_or_404(Task, pk=data["task"])
        try:
            row = services.review_call_save(task=task, call=data["call"], reason=data.get("reason") or "",
                                            note=data.get("note") or "", selection=queue.selection,
                                            user=request.user)
        except PermissionDenied as exc:
            return self.refuse({"__all__": [str(exc) or "permission denied"]}, status=403)
        except ValueError as exc:
            name, _, message = str(exc).partition(": ")
            return self.refuse({name: [message]})
        # The next task after this one in the queue as it is now (a call can move a task out of
        # "not called by you", so positions are found by task, not by counting).
        ids = _filtered(queue.ids, services.review_calls(task_ids=queue.ids), only, request.user)
        later = [k for k, t in enumerate(ids, start=1) if t > task.pk]
        next_url = queue.url(only=only, i=later[0] if later else len(ids) + 1)
        if _wants_json(request):
            calls = services.review_calls(task_ids=[task.pk]).get(task.pk, [])
            return JsonResponse({"call": row.call, "reason": row.reason, "task": task.pk,
                                 "status": services.task_review_status(calls), "next_url": next_url})
        return HttpResponseRedirect(next_url)

    def refuse(self, errors: dict[str, list[str]], status: int = 400) -> HttpResponse:
        """A refused call. Fetch gets JSON ``{"errors": {field: [messages]}}``; a plain form gets
        the queue page again at the task it was about (with the same status), each message beside
        its field and the note and reason as typed, so a reviewer without JavaScript is not left on
        a bare error and loses nothing."""
        request = self.request
        if _wants_json(request):
            return JsonResponse({"errors": errors}, status=status)
        post = request.POST
        params = QueryDict(mutable=True)
        for key in ("over", "flag", "turn"):
            if post.get(key):
                params[key] = post[key]
        only = post.get("only", "")
        only = only if only in ONLY else ""
        params["only"] = only
        queue = self.queue(params)
        ids = _filtered(queue.ids, services.review_calls(task_ids=queue.ids), only, request.user)
        task = _int(post.get("task"), 0)
        params["i"] = str(ids.index(task) + 1 if task in ids else 1)
        self.params = params
        labels = {"task": "Task", "call": "Call", "reason": "Reason", "note": "Note", "over": "Queue",
                  "flag": "QC flag", "only": "Filter", "__all__": "Refused"}
        context = self.get_context_data(**self.kwargs)
        context.update(
            errors={k: "; ".join(v) for k, v in errors.items() if k in ("reason", "note")},
            other_errors=[(labels.get(k, k), "; ".join(v)) for k, v in errors.items() if k not in ("reason", "note")],
            posted={"note": post.get("note", ""), "reason": post.get("reason", ""), "call": post.get("call", "")},
        )
        return self.render_to_response(context, status=status)


class QCReviewQueueView(ReviewQueueView):
    """The same queue over the tasks QC flagged (``?flag=`` narrows to one flag)."""

    def queue(self, params: Any) -> Queue:
        flag = params.get("flag") or ""
        return qc_queue(flag if flag in services.QC_FLAGS else "")


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
