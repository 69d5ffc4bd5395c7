"""Withdrawal pages: the staff page of one withdrawal (what it deleted, what it affected, rebuild
buttons), the staff worker page's withdraw button, and the participant's own withdrawal.

The participant's pages are study pages (``collection.views.study_page``: the worker comes from
the server-side session, never from the request), served from here because the withdrawal
service imports every app and ``collection`` may not import ``crowd``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from collection import session as study_session
from collection.models import Withdrawal, Worker
from collection.views import _base_context, study_page

from .admin_withdrawal import artifact_admin_url, rebuilt_admin_url
from .services.withdrawal import PERMISSION, WithdrawalError, artifact_rebuild, participant_withdraw, withdrawal_preview
from .views import StaffPage

# --------------------------------------------------------------------------- staff


class StaffWithdrawForm(forms.Form):
    confirm = forms.BooleanField(required=True, error_messages={
        "required": gettext_lazy("confirm: tick the box to confirm that their data is deleted everywhere")})


def staff_withdraw(request: HttpRequest, worker: Worker) -> HttpResponse:
    """The worker page's "withdraw" button (POST ``op=withdraw`` with ``confirm``)."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied(f"withdrawing a participant needs the {PERMISSION} permission")
    form = StaffWithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
        return HttpResponseRedirect(reverse("crowd:worker_review", args=[worker.pk]))
    record = participant_withdraw(worker=worker, channel=Withdrawal.Channel.STAFF_PAGE, user=request.user)
    if record is None:
        messages.info(request, "Already withdrawn.")
        return HttpResponseRedirect(reverse("crowd:index"))
    messages.success(request, f"Participant withdrawn ({record}): their data is deleted.")
    return HttpResponseRedirect(reverse("crowd:withdrawal", args=[record.pk]))


#: What a withdrawal's counts (``Withdrawal.counts``) mean, in the order a reader wants them.
COUNT_WORDS: dict[str, str] = {
    "workers": "participant record",
    "tasks": "tasks",
    "turns": "turns (questions, answers, ratings)",
    "samples": "gaze and mouse samples",
    "trajectory_chunks": "sample uploads (batches)",
    "calibration_attempts": "calibration attempts",
    "task_qc": "QC rows of their tasks",
    "preference_pairs": "preference pairs from their turns",
    "reward_predictions": "reward-model predictions on their turns",
    "identity_events": "identity events (entries, sign-ins)",
    "invitations": "lab invitations",
    "sessions": "browser sessions ended",
    "assignment_answers_cleared": "platform submissions whose answers were cleared",
    "selections_scrubbed": "frozen data selections that named them (name replaced)",
    "feature_cache_files": "feature-cache files rewritten without them",
    "export_folders": "export folders removed",
}
#: Counts of what is kept, not deleted (shown apart, with why).
KEPT_WORDS: dict[str, str] = {"assignments_kept": "platform submissions (payment records)"}


def count_rows(counts: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[str], list[tuple[str, Any]]]:
    """A withdrawal's counts for its page: (what was deleted, non-zero, in words; what there was
    none of; what was kept). Unknown keys are shown as they are, after the known ones."""
    deleted, none = [], []
    for key in [*COUNT_WORDS, *sorted(k for k in counts if k not in COUNT_WORDS and k not in KEPT_WORDS)]:
        if key not in counts or key == "file_errors":
            continue
        label, value = COUNT_WORDS.get(key, key.replace("_", " ")), counts[key]
        (deleted.append((label, value)) if value else none.append(label))
    kept = [(label, counts[key]) for key, label in KEPT_WORDS.items() if counts.get(key)]
    return deleted, none, kept


def _kind(key: str) -> str:
    """An artifact kind (``app.model``) in the admin's words (``preference dataset``)."""
    from django.apps import apps

    try:
        return str(apps.get_model(key)._meta.verbose_name)
    except (LookupError, ValueError):
        return key


class WithdrawalView(StaffPage):
    """One withdrawal: counts deleted, and every artifact it marked, each with its rebuild control."""

    template_name = "crowd/withdrawal.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        record = get_object_or_404(Withdrawal.objects.select_related("acted_by"), pk=kwargs["withdrawal_id"])
        marks = [(m, artifact_admin_url(m), rebuilt_admin_url(m), _kind(m.key))
                 for m in record.affected.select_related("rebuilt_by")]
        deleted, none, kept = count_rows(record.counts or {})
        return {
            **super().get_context_data(**kwargs),
            "title": str(record),
            "record": record,
            "marks": marks,
            "counts": deleted, "counts_none": none, "counts_kept": kept,
            "file_errors": (record.counts or {}).get("file_errors") or [],
            "can_rebuild": self.request.user.has_perm(PERMISSION),
        }

    def post(self, request: HttpRequest, withdrawal_id: int) -> HttpResponse:
        record = get_object_or_404(Withdrawal, pk=withdrawal_id)
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied(f"rebuilding needs the {PERMISSION} permission")
        raw = str(request.POST.get("mark", "")).strip()
        mark = record.affected.filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 19 else None
        if request.POST.get("op") != "rebuild" or mark is None:
            return HttpResponse("op: expected op=rebuild and the id of one of this withdrawal's marks", status=400)
        try:
            made = artifact_rebuild(artifact=mark, user=request.user)
        except (WithdrawalError, ValueError) as exc:
            messages.error(request, f"{mark.label}: {exc}")
        else:
            messages.success(request, f"{mark.label}: rebuilding ({made}).")
        return HttpResponseRedirect(reverse("crowd:withdrawal", args=[record.pk]))


# --------------------------------------------------------------------------- the participant


class SelfWithdrawForm(forms.Form):
    """The confirmation posts back the pseudonym shown when the page was drawn: a tab left open on
    a shared computer, after another participant entered there, withdraws no one."""

    participant = forms.CharField(max_length=64)


@require_http_methods(["GET", "POST"])
@study_page
def withdraw(request: HttpRequest, worker: Worker) -> HttpResponse:
    """"Withdraw from the study": GET explains what is deleted and kept; POST (CSRF) withdraws the
    worker bound to this session, and only them, then ends the session."""
    if request.method == "POST":
        form = SelfWithdrawForm(request.POST)
        if not form.is_valid():
            return HttpResponse(_("participant: missing or too long"), status=400)
        if form.cleaned_data["participant"] != worker.pseudonym:
            return HttpResponse(_("participant: this page belongs to another participant's session; "
                                  "reload it"), status=403)
        record = participant_withdraw(worker=worker, channel=Withdrawal.Channel.WORKER)
        counts = record.counts if record is not None else {}
        study_session.session_end(request)
        return render(request, "collection/withdrawn.html", _base_context(request, counts=counts))
    preview = withdrawal_preview(worker=worker, with_affected=False)
    return render(request, "collection/withdraw.html", _base_context(
        request, participant=worker.pseudonym, preview=preview, hide_withdraw_link=True))
