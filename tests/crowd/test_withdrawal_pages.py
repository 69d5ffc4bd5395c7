"""Withdrawal through its three doors (issue 24): the staff worker page and the admin action
(only with ``collection.withdraw_participant``), and the participant's own session (only
themselves); the withdrawal page's rebuild control; the notice on affected admin pages."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from analysis.models import RewardModelRun
from collection.models import AffectedArtifact, DataSelection, Task, Withdrawal, Worker
from tests.support.site_tasks import site_task

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def marked(db) -> dict:
    """A worker with a task in a selection that a reward run uses, and another worker."""
    mine, other = site_task(name="mine"), site_task(name="other")
    selection = DataSelection.objects.create(name="clean", task_ids=[mine.pk, other.pk], n_kept=2)
    run = RewardModelRun.objects.create(name="run on clean", selection=selection)
    return {"worker": mine.worker, "task": mine, "other": other, "run": run, "selection": selection}


# --------------------------------------------------------------------------- staff worker page


def test_staff_page_withdraws_with_confirmation(marked, researcher) -> None:
    client = client_for(researcher)
    url = reverse("crowd:worker_review", args=[marked["worker"].pk])
    page = client.get(url).content.decode()
    assert "Withdraw participant" in page and 'name="confirm"' in page
    # without the confirmation box: nothing happens, the page says why
    r = client.post(url, {"op": "withdraw"}, follow=True)
    assert "confirm" in r.content.decode() and Worker.objects.filter(pk=marked["worker"].pk).exists()
    r = client.post(url, {"op": "withdraw", "confirm": "1"})
    record = Withdrawal.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("crowd:withdrawal", args=[record.pk])
    assert not Worker.objects.filter(pk=marked["worker"].pk).exists()
    assert record.channel == "staff_page" and record.acted_by == researcher
    assert Task.objects.filter(pk=marked["other"].pk).exists()
    # the withdrawal page lists the affected run with its rebuild control
    page = client.get(r["Location"]).content.decode()
    assert "run on clean" in page and "Rebuild with the same settings" in page
    mark = record.affected.get(model_name="rewardmodelrun")
    r = client.post(r["Location"], {"op": "rebuild", "mark": mark.pk})
    mark.refresh_from_db()
    assert r.status_code == 302 and mark.rebuilt_at is not None and mark.rebuilt_as.startswith("jobs.job:")
    assert "rebuilt" in client.get(r["Location"]).content.decode()
    assert client.post(r["Location"], {"op": "rebuild", "mark": "x"}).status_code == 400


@pytest.mark.parametrize("actor", ["viewer", "staff_no_role"])
def test_staff_without_the_permission_are_refused(marked, actor, request) -> None:
    client = client_for(request.getfixturevalue(actor))
    url = reverse("crowd:worker_review", args=[marked["worker"].pk])
    if actor == "viewer":
        assert "Withdraw participant" not in client.get(url).content.decode()
    assert client.post(url, {"op": "withdraw", "confirm": "1"}).status_code == 403
    assert Worker.objects.filter(pk=marked["worker"].pk).exists() and not Withdrawal.objects.exists()


def test_viewer_sees_the_withdrawal_page_without_rebuild(marked, researcher, viewer) -> None:
    client_for(researcher).post(reverse("crowd:worker_review", args=[marked["worker"].pk]),
                                {"op": "withdraw", "confirm": "1"})
    record = Withdrawal.objects.get()
    client = client_for(viewer)
    page = client.get(reverse("crowd:withdrawal", args=[record.pk])).content.decode()
    assert "run on clean" in page and "Rebuild with the same settings" not in page
    mark = record.affected.get(model_name="rewardmodelrun")
    assert client.post(reverse("crowd:withdrawal", args=[record.pk]),
                       {"op": "rebuild", "mark": mark.pk}).status_code == 403
    mark.refresh_from_db()
    assert mark.rebuilt_at is None


# --------------------------------------------------------------------------- admin


def test_admin_action_asks_then_withdraws(marked, researcher) -> None:
    client = client_for(researcher)
    url = reverse("admin:collection_worker_changelist")
    data = {"action": "withdraw_participants", ACTION_CHECKBOX_NAME: [marked["worker"].pk]}
    r = client.post(url, data)
    assert r.status_code == 200 and "run on clean" in r.content.decode()  # the confirmation page
    assert Worker.objects.filter(pk=marked["worker"].pk).exists()
    r = client.post(url, {**data, "apply": "1"})  # confirmation box not ticked
    assert r.status_code == 200 and Worker.objects.filter(pk=marked["worker"].pk).exists()
    r = client.post(url, {**data, "apply": "1", "confirm": "on"})
    assert r.status_code == 302 and not Worker.objects.filter(pk=marked["worker"].pk).exists()
    assert Withdrawal.objects.get().channel == "admin"
    assert Worker.objects.filter(pk=marked["other"].worker_id).exists()


def test_admin_action_refused_without_the_permission(marked, viewer) -> None:
    client = client_for(viewer)
    url = reverse("admin:collection_worker_changelist")
    assert "withdraw_participants" not in client.get(url).content.decode()
    client.post(url, {"action": "withdraw_participants", ACTION_CHECKBOX_NAME: [marked["worker"].pk],
                      "apply": "1", "confirm": "on"})
    assert Worker.objects.filter(pk=marked["worker"].pk).exists() and not Withdrawal.objects.exists()


def test_affected_admin_page_says_so_with_the_way_to_rebuild(marked, researcher) -> None:
    client = client_for(researcher)
    run_url = reverse("admin:analysis_rewardmodelrun_change", args=[marked["run"].pk])
    assert "Affected by a withdrawal" not in client.get(run_url).content.decode()
    client.post(reverse("crowd:worker_review", args=[marked["worker"].pk]), {"op": "withdraw", "confirm": "1"})
    page = client.get(run_url).content.decode()
    record = Withdrawal.objects.get()
    assert f"Affected by a withdrawal on {record.created_at:%Y-%m-%d}" in page
    assert reverse("crowd:withdrawal", args=[record.pk]) in page
    sel_page = client.get(reverse("admin:collection_dataselection_change", args=[marked["selection"].pk]))
    assert "Affected by a withdrawal" in sel_page.content.decode()
    # the marks' admin: the rebuild action
    r = client.post(reverse("admin:collection_affectedartifact_changelist"),
                    {"action": "rebuild_artifacts", ACTION_CHECKBOX_NAME: list(
                        AffectedArtifact.objects.values_list("pk", flat=True))})
    assert r.status_code == 302
    assert AffectedArtifact.objects.get(model_name="rewardmodelrun").rebuilt_at is not None


def test_leaderboard_and_plan_pages_show_the_notice(marked, researcher) -> None:
    from analysis.models import Leaderboard, StudyPlan

    board = Leaderboard.objects.create(name="board", selection=marked["selection"], results={"sources": []})
    plan = StudyPlan.objects.create(name="plan", results={"curve": [], "model": "m", "baseline": "b"}, svg="<svg/>")
    client = client_for(researcher)
    board_url = f"{reverse('analysis:leaderboard')}?pk={board.pk}"
    plan_url = f"{reverse('analysis:plan')}?pk={plan.pk}"
    assert "Affected by a withdrawal" not in client.get(board_url).content.decode()
    client.post(reverse("crowd:worker_review", args=[marked["worker"].pk]), {"op": "withdraw", "confirm": "1"})
    for url in (board_url, plan_url):
        page = client.get(url).content.decode()
        assert "Affected by a withdrawal on" in page and "withdrawal and rebuild" in page, url


def test_the_withdrawal_page_says_what_was_deleted_in_words(marked, researcher) -> None:
    from crowd.withdrawal_views import count_rows

    client = client_for(researcher)
    client.post(reverse("crowd:worker_review", args=[marked["worker"].pk]), {"op": "withdraw", "confirm": "1"})
    record = Withdrawal.objects.get()
    page = client.get(reverse("crowd:withdrawal", args=[record.pk])).content.decode()
    counts = page.split('id="withdrawal-counts"', 1)[1].split("</section>", 1)[0]
    assert "gaze and mouse samples" in counts and "trajectory_chunks" not in counts  # words, not keys
    assert "None to delete:" in counts  # the zeros in one line, not a column of them
    assert "reward model run #" in page and "analysis.rewardmodelrun #" not in page  # the admin's words
    # The pure part: non-zero counts in words, zeros listed apart, what is kept apart, unknown keys kept.
    deleted, none, kept = count_rows({"samples": 40, "tasks": 1, "invitations": 0, "assignments_kept": 2,
                                      "new_thing": 3, "file_errors": ["x: OSError"]})
    assert deleted == [("tasks", 1), ("gaze and mouse samples", 40), ("new thing", 3)]
    assert none == ["lab invitations"] and kept == [("platform submissions (payment records)", 2)]


def test_the_worker_page_names_its_qc_averages_in_words(marked, researcher) -> None:
    from crowd import services

    client = client_for(researcher)
    url = reverse("crowd:worker_review", args=[marked["worker"].pk])
    page = client.get(url).content.decode()
    assert "response score (gaze on answer text)" in page and ">response_score<" not in page
    assert "No QC computed for their tasks yet." in page
    services.task_qc_compute(task=marked["task"])
    page = client.get(url).content.decode()
    assert "No QC computed for their tasks yet." not in page
