"""Reward runs, leaderboards and preference datasets take a data selection: they use exactly its
tasks, record its id and rules, and show them on their pages (and say so when there is none)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from alignment.models import PreferenceDataset
from alignment.services import preference_dataset_build
from analysis.models import Leaderboard, RewardModelRun
from collection.models import DataSelection, Task, Turn, Worker
from crowd import services
from jobs.models import Job
from jobs.services import job_start
from tests.support.leaderboard_sim import store_simulated_votes
from tests.support.paths import MINI
from tests.support.scaled_release import scaled_release

SMALL = {"seeds": [0], "trees": 20, "k": 10, "n_splits": 3, "quality_filter": True, "worker_normalise": True}
OFF = dict.fromkeys(("min_calibration_score", "min_response_score", "min_max_index_score", "min_sampling_rate_hz",
                     "min_head_in_box_share", "min_time_on_task_s", "max_log_gap_s", "min_summary_words"))

pytestmark = pytest.mark.django_db


def _excluding(workers: list[Worker], *, name: str) -> DataSelection:
    """A selection with every QC threshold off that leaves out the given workers' tasks (staff
    exclusions), so what it must keep and leave out is known without computing QC."""
    for task in Task.objects.filter(worker__in=workers):
        services.task_exclude(task=task)
    selection = services.data_selection_create(name=name, thresholds=OFF, require_qc=False)
    Task.objects.filter(worker__in=workers).update(excluded=False)  # frozen: the selection keeps its list
    return selection


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return scaled_release(MINI, tmp_path_factory.mktemp("scaled"), copies=4)


def _job_ok(job: Job) -> None:
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error


def test_reward_run_uses_the_selection_records_and_shows_it(
    release: Path, django_capture_on_commit_callbacks, admin_client
) -> None:
    call_command("import_ifllm", str(release), "--jobs", "1", stdout=StringIO())
    left_worker = Worker.objects.filter(tasks__turns__model_2__gt="").order_by("pk").first()
    selection = _excluding([left_worker], name="without one worker")
    kept_tasks = set(selection.task_ids)
    assert kept_tasks and not kept_tasks & set(Task.objects.filter(worker=left_worker).values_list("pk", flat=True))
    run = RewardModelRun.objects.create(params=SMALL, selection=selection)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
    _job_ok(job)
    run.refresh_from_db()
    data = run.report["data"]
    assert data["selection"]["id"] == selection.pk and data["selection"]["rules"] == selection.rules
    assert data["quality_filter"].startswith("not applied") and "quality_filter" not in run.report
    # must keep: every labelled pairwise turn of the kept tasks; must leave out: the worker's
    preds = run.predictions.filter(model_name="RF + IF", protocol="grouped").select_related("turn")
    predicted = {p.turn.task_id for p in preds}
    assert predicted <= kept_tasks and not predicted & set(Task.objects.filter(worker=left_worker).values_list("pk",
                                                                                                              flat=True))
    labelled = Turn.objects.filter(task__in=kept_tasks).exclude(model_2="").exclude(preferred=None)
    assert preds.count() == labelled.count() > 0
    page = admin_client.get(f"/admin/analysis/rewardmodelrun/{run.pk}/change/").content.decode()
    assert f"(data selection {selection.pk})" in page and "without one worker v1" in page
    assert "Left out by staff decision" in page and "excluded by staff" in page
    # a run without a selection keeps today's behaviour and says so
    plain = RewardModelRun.objects.create(params=SMALL)
    page = admin_client.get(f"/admin/analysis/rewardmodelrun/{plain.pk}/change/").content.decode()
    assert "No data selection." in page and "paper&#x27;s fixed quality filter" in page
    # a preference dataset built from the run takes the run's selection and shows it
    dataset = preference_dataset_build(name="", source="reward_run", reward_run=run)
    assert dataset.selection == selection and dataset.params["selection"]["id"] == selection.pk
    assert set(dataset.pairs.values_list("turn__task_id", flat=True)) <= kept_tasks
    page = admin_client.get(f"/admin/alignment/preferencedataset/{dataset.pk}/change/").content.decode()
    assert f"(data selection {selection.pk})" in page
    # the selection cannot be deleted while a run uses it
    response = admin_client.post(f"/admin/collection/dataselection/{selection.pk}/delete/", {"post": "yes"})
    assert DataSelection.objects.filter(pk=selection.pk).exists(), response.status_code


def test_explicit_dataset_from_a_selection_keeps_its_pairs_and_leaves_out_the_rest(admin_client) -> None:
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    left_worker = Worker.objects.filter(tasks__turns__model_2__gt="").order_by("pk").first()
    selection = _excluding([left_worker], name="explicit")
    everything = preference_dataset_build(name="all", source="explicit")
    chosen = preference_dataset_build(name="selected", source="explicit", selection=selection)
    all_tasks = set(everything.pairs.values_list("turn__task_id", flat=True))
    chosen_tasks = set(chosen.pairs.values_list("turn__task_id", flat=True))
    assert chosen_tasks == all_tasks & set(selection.task_ids) and chosen_tasks < all_tasks
    assert everything.selection is None and everything.params["selection"] is None
    page = admin_client.get(f"/admin/alignment/preferencedataset/{everything.pk}/change/").content.decode()
    assert "No data selection." in page
    # the admin add form takes a selection
    response = admin_client.post("/admin/alignment/preferencedataset/add/",
                                 {"name": "via admin", "source": "explicit", "selection": selection.pk})
    assert response.status_code == 302
    assert PreferenceDataset.objects.get(name="via admin").selection == selection


def test_leaderboard_counts_the_votes_of_the_selection_only(admin_client, django_capture_on_commit_callbacks) -> None:
    turns = store_simulated_votes({"alpha-7b": 0.0, "beta-13b": 0.8, "gamma-70b": 1.6})
    workers = list(Worker.objects.order_by("pk")[:3])
    selection = _excluding(workers, name="nine workers")
    kept_votes = Turn.objects.filter(task__in=selection.task_ids).count()
    assert 0 < kept_votes < len(turns)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/analysis/leaderboard/", {"sources": ["explicit"], "rounds": 60,
                                                                "selection": selection.pk})
    board = Leaderboard.objects.get()
    assert response.status_code == 302 and board.selection == selection
    _job_ok(board.job)
    board.refresh_from_db()
    assert board.n_votes == kept_votes
    assert board.results["params"]["selection"]["id"] == selection.pk
    assert board.results["params"]["selection"]["rules"] == selection.rules
    page = admin_client.get(f"/analysis/leaderboard/?pk={board.pk}").content.decode()
    assert "nine workers v1" in page and f"(data selection {selection.pk})" in page
    data = json.loads(admin_client.get(f"/analysis/leaderboard/{board.pk}.json").content)
    assert data["params"]["selection"]["n_kept"] == selection.n_kept
    # without a selection every task counts, and the page says QC was not applied
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/analysis/leaderboard/", {"sources": ["explicit"], "rounds": 60, "selection": ""})
    plain = Leaderboard.objects.exclude(pk=board.pk).get()
    plain.refresh_from_db()
    assert plain.n_votes == len(turns) and plain.selection is None
    assert "QC thresholds not applied" in admin_client.get(f"/analysis/leaderboard/?pk={plain.pk}").content.decode()
    bad = admin_client.post("/analysis/leaderboard/", {"sources": ["explicit"], "selection": "999999"})
    assert bad.status_code == 400 and b"selection" in bad.content
