"""Frozen data selections that name tasks a withdrawal deleted (issue 24): nothing 500s and
nothing counts the deleted tasks as present.

Chosen behaviour: the review queue counts the tasks that exist ("1 of 2", not "1 of 3") and says
"+ 1 withdrawn — deleted (skipped)"; the selection's admin page and summary block keep the frozen
numbers and add how many of the kept tasks were withdrawn; a call on a deleted task is a 400
naming ``task``; exports, leaderboards and the feature table of reward runs started from the
selection use only the tasks that remain. PostgreSQL, real services.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from analysis.leaderboard_services import leaderboard_compute
from analysis.services import feature_table
from collection.models import DataSelection, Task
from collection.selection_html import selection_block
from crowd import services
from crowd.qc import THRESHOLD_NAMES
from crowd.services.export import dataset_export
from crowd.services.withdrawal import participant_withdraw
from tests.support.site_tasks import site_task

from .conftest import client_for

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def frozen(settings, tmp_path, django_capture_on_commit_callbacks) -> dict:
    """Three pairwise tasks kept by one selection, the first also left out by another (a strict
    one); then the first task's worker withdraws."""
    settings.VAR_DIR = tmp_path
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    tasks = [site_task(name=f"f{n}", n_turns=2, mode="pairwise") for n in range(3)]
    for task in tasks:
        services.task_qc_compute(task=task)
    keep = services.data_selection_create(name="all", thresholds=dict.fromkeys(THRESHOLD_NAMES), require_qc=False,
                                          validation=False)
    assert sorted(keep.task_ids) == [t.pk for t in tasks]
    gone = tasks[0]
    strict = DataSelection.objects.create(
        name="strict", task_ids=[t.pk for t in tasks[1:]], n_kept=2, n_candidates=3, n_left_out=1,
        left_out=[{"task": gone.pk, "worker": gone.worker.pseudonym, "task_id": gone.pk, "reasons": ["calibration"],
                   "messages": ["calibration below threshold"]}],
        summary={"kept_despite": [], "by_reason": {}},
    )
    before = {"keep_queue": services.review_queue_task_ids(selection=keep)}
    with django_capture_on_commit_callbacks(execute=True):
        participant_withdraw(worker=gone.worker, channel="command")
    keep.refresh_from_db()
    strict.refresh_from_db()
    return {"tasks": tasks, "gone": gone.pk, "keep": keep, "strict": strict, "before": before, "tmp": tmp_path}


def _queue(selection: DataSelection, **query: str) -> str:
    url = reverse("crowd:review_queue", args=[selection.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_queue_counts_existing_tasks_and_says_one_was_withdrawn(frozen, researcher) -> None:
    keep, gone = frozen["keep"], frozen["gone"]
    assert len(frozen["before"]["keep_queue"]) == 3  # the case is not empty: 3 before, 2 after
    client = client_for(researcher)
    first = client.get(_queue(keep))
    assert first.status_code == 200
    html = first.content.decode()
    assert "1 of 2" in html and "+ 1 withdrawn — deleted (skipped)" in html
    assert first.context["task"].pk == frozen["tasks"][1].pk
    last = client.get(_queue(keep, i="2"))
    assert last.status_code == 200 and "2 of 2" in last.content.decode()
    end = client.get(_queue(keep, i="3"))
    assert end.status_code == 200 and "end of queue (2 tasks)" in end.content.decode()
    # left-out queue of the strict selection: its one task is gone
    left = client.get(_queue(frozen["strict"], over="left_out"))
    assert left.status_code == 200
    assert "end of queue (0 tasks)" in left.content.decode() and "+ 1 withdrawn — deleted" in left.content.decode()
    # a stale page's call on the deleted task: 400 naming the field, no 500
    answer = client.post(_queue(keep), {"task": gone, "call": "keep"}, **JSON)
    assert answer.status_code == 400 and "task" in answer.json()["errors"]
    # a queue without withdrawn tasks says nothing of the kind
    fresh = services.data_selection_create(name="after", thresholds=dict.fromkeys(THRESHOLD_NAMES),
                                           require_qc=False, validation=False)
    page = client.get(_queue(fresh)).content.decode()
    assert "1 of 2" in page and "withdrawn" not in page


def test_selection_admin_page_and_summary_block(frozen, researcher) -> None:
    keep, strict, gone = frozen["keep"], frozen["strict"], frozen["gone"]
    client = client_for(researcher)
    for selection in (keep, strict):
        response = client.get(reverse("admin:collection_dataselection_change", args=[selection.pk]))
        assert response.status_code == 200
    html = client.get(reverse("admin:collection_dataselection_change", args=[strict.pk])).content.decode()
    assert f"task {gone} <span class=\"ifllm-withdrawn\">(withdrawn — deleted)</span>" in html
    assert reverse("crowd:task_review", args=[gone]) not in html  # no link to a task that is gone
    assert client.get(reverse("admin:collection_dataselection_changelist")).status_code == 200
    block = str(selection_block(keep, without=""))
    assert "3 of 3 tasks kept" in block and "1 of the kept tasks withdrawn — deleted" in block
    assert "2 remain" in block
    assert "withdrawn" not in str(selection_block(strict, without=""))  # its kept tasks all exist
    assert keep.record()["n_withdrawn"] == 1 and strict.record()["n_withdrawn"] == 0


def test_exports_leaderboards_and_features_from_the_selection_use_what_remains(frozen) -> None:
    keep, strict, gone = frozen["keep"], frozen["strict"], frozen["gone"]
    remaining = {t.pk for t in frozen["tasks"][1:]}
    assert set(keep.tasks().values_list("pk", flat=True)) == remaining

    counts = dataset_export(path=str(frozen["tmp"] / "exports" / "keep"), selection=keep, formats=("parquet", "hf"))
    assert counts["tasks"] == 2 and counts["workers"] == 2
    manifest = json.loads((frozen["tmp"] / "exports" / "keep" / "manifest.json").read_text())
    assert manifest["selection"]["n_withdrawn"] == 1
    dataset_export(path=str(frozen["tmp"] / "exports" / "strict"), selection=strict, formats=("parquet",))
    strict_manifest = json.loads((frozen["tmp"] / "exports" / "strict" / "manifest.json").read_text())
    assert strict_manifest["left_out"]["total"] == 0  # the withdrawn task is not listed as left out

    board, _run = leaderboard_compute(sources=["explicit"], rounds=20, selection=keep)
    assert board.params["selection"]["n_withdrawn"] == 1
    assert board.boards["explicit"].votes == 4  # 2 remaining tasks x 2 voted turns (6 before)

    turns, table = feature_table(params={}, selection=keep)
    assert set(turns["task_pk"]) == remaining and gone not in set(turns["task_pk"])
    assert Task.objects.filter(pk=gone).count() == 0


def test_a_dataset_card_says_the_withdrawn_tasks_were_not_used(frozen) -> None:
    from alignment.models import PreferenceDataset
    from alignment.services import _selection_sentence

    keep, strict = frozen["keep"], frozen["strict"]
    assert "3 of 3 tasks kept (1 of them since withdrawn and deleted, so not used)" in _selection_sentence(
        PreferenceDataset(name="card", selection=keep))
    assert "withdrawn" not in _selection_sentence(PreferenceDataset(name="card", selection=strict))
