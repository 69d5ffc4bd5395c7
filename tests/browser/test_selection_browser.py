"""Data selections in Chromium at 1400x900 and 1920x1080: created from the QC page with its
thresholds, read on its own page, then taken by a reward run, a leaderboard and a preference
dataset whose pages name it. Screenshots: set IFLLM_SCREENSHOT_DIR (kept out of git)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from alignment.services import preference_dataset_build
from analysis.models import Leaderboard, RewardModelRun
from collection.models import DataSelection, Task
from crowd import services
from jobs.models import Job
from jobs.services import job_start
from tests.support.admin_browser import admin_page
from tests.support.paths import MINI
from tests.support.scaled_release import scaled_release

from .test_results_browser import _right_edge_inside, _shots

SMALL = {"seeds": [0], "trees": 20, "selector_trees": 20, "k": 10, "n_splits": 3, "worker_normalise": False}


@pytest.mark.django_db(transaction=True)
def test_a_selection_from_the_qc_page_to_the_runs_that_take_it(browser, asgi_server, tmp_path,
                                                               django_user_model) -> None:
    call_command("import_ifllm", str(scaled_release(MINI, tmp_path / "scaled", copies=4)), "--jobs", "1",
                 stdout=StringIO())
    job_start(kind="crowd.compute_qc", params={"release": True})
    first, second = Task.objects.filter(qc__isnull=False).order_by("pk")[:2]
    services.task_exclude(task=first, note="summary copied from the answer")
    services.task_keep(task=second)
    page = admin_page(browser, asgi_server, django_user_model)

    # The QC page offers its thresholds as a new selection; the form arrives filled with them.
    page.goto("/crowd/qc/?source=release&min_response_score=&min_max_index_score=0.3")
    _shots(page, "selection-qc-page")
    page.locator("#create-selection").click()
    page.wait_for_url("**/admin/collection/dataselection/add/**")
    assert page.locator("#id_min_response_score").input_value() == ""
    assert page.locator("#id_min_max_index_score").input_value() == "0.3"
    assert page.locator("#id_scope").input_value() == "release"
    page.locator("#id_name").fill("release, max-index 0.3")
    _shots(page, "selection-add")
    page.get_by_role("button", name="Save", exact=True).click()
    selection = DataSelection.objects.get(name="release, max-index 0.3")
    assert selection.n_left_out >= 1 and selection.rules["thresholds"]["min_response_score"] is None
    page.goto("/admin/collection/dataselection/")
    _right_edge_inside(page, "#result_list")
    _shots(page, "selection-list")
    page.goto(f"/admin/collection/dataselection/{selection.pk}/change/")
    text = page.locator("#content").inner_text()
    assert f"{selection.n_kept} of {selection.n_candidates} tasks kept" in text
    assert "excluded by staff" in text and "Kept only with max-index score (share of answer read) >= 0.3" in text
    _shots(page, "selection-detail")
    page.goto("/crowd/release-exclusions/")
    assert page.locator("#create-selection").count() == 1
    _shots(page, "selection-release-exclusions")

    # A reward run, a leaderboard and a dataset that take it name it on their pages.
    run = RewardModelRun.objects.create(name="on the selection", params=SMALL, selection=selection)
    run.job = job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
    run.save(update_fields=["job"])
    board = Leaderboard.objects.create(sources=["explicit"], rounds=60, selection=selection)
    board.job = job_start(kind="analysis.leaderboard", params={"leaderboard_pk": board.pk})
    board.save(update_fields=["job"])
    assert Job.objects.exclude(status=Job.Status.SUCCEEDED).count() == 0, list(Job.objects.values("kind", "error"))
    dataset = preference_dataset_build(name="from the run", source="reward_run", reward_run=run)
    label = f"release, max-index 0.3 v1 (data selection {selection.pk})"
    for url, name in ((f"/admin/analysis/rewardmodelrun/{run.pk}/change/", "selection-reward-run"),
                      (f"/analysis/leaderboard/?pk={board.pk}", "selection-leaderboard"),
                      (f"/admin/alignment/preferencedataset/{dataset.pk}/change/", "selection-dataset")):
        page.goto(url)
        assert label in page.locator(".ifllm-selection").first.inner_text(), url
        _shots(page, name)
    page.goto("/admin/analysis/rewardmodelrun/add/")
    assert page.locator("#id_selection option").count() == 2  # empty choice + the selection
