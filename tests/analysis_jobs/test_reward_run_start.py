"""``reward_model_run_start``: the one way the admin form, the re-run action and the command start a run."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from analysis.models import RewardModelRun
from analysis.services import DEFAULT_PARAMS, reward_model_run_start
from jobs.models import Job
from tests.support.paths import MINI

pytestmark = pytest.mark.django_db
KIND = "analysis.reward_models"


def test_a_new_run_is_saved_with_the_defaults_and_its_job_linked(admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        run = reward_model_run_start(run=RewardModelRun(name="new", params={"trees": 7}), user=admin_user)
    run.refresh_from_db()
    assert run.params == {**DEFAULT_PARAMS, "trees": 7}
    assert run.created_by == admin_user
    assert run.job.kind == KIND and run.job.params == {"run_pk": run.pk} and run.job.status == Job.Status.PENDING


def test_a_saved_run_is_started_again_not_copied(django_capture_on_commit_callbacks):
    run = RewardModelRun.objects.create(name="old", params={"seeds": [0]})
    with django_capture_on_commit_callbacks(execute=False):
        first = reward_model_run_start(run=run).job
        second = reward_model_run_start(run=run).job
    assert RewardModelRun.objects.count() == 1
    run.refresh_from_db()
    assert first != second and run.job == second  # the run follows its newest job
    assert run.params == {"seeds": [0]}  # a re-run keeps the params it was made with


def test_the_admin_form_and_the_rerun_action_start_through_the_service(
    admin_client, django_capture_on_commit_callbacks
) -> None:
    form = {"name": "from the form", "params": "{}", "seeds": "0", "trees": "20", "selector_trees": "30", "k": "10",
            "n_splits": "3", "calibration": "none", "calibration_fit": "crossfit", "n_jobs": "1"}
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post("/admin/analysis/rewardmodelrun/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    run = RewardModelRun.objects.get()
    assert run.job is not None and run.job.params == {"run_pk": run.pk} and run.params["trees"] == 20
    first = run.job
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post("/admin/analysis/rewardmodelrun/",
                                     {"action": "rerun", "_selected_action": [run.pk]})
    assert response.status_code == 302
    run.refresh_from_db()
    assert RewardModelRun.objects.count() == 1
    assert run.job != first and run.job.kind == KIND  # re-linked to the new job at once


def test_refused_params_leave_no_run_behind_but_keep_a_saved_one():
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    overlap = {"seeds": [0], "trees": 10, "quality_filter": False, "worker_normalise": False,
               "train_workers": ["a", "b"], "test_workers": ["b"]}
    with pytest.raises(ValueError, match="also training workers"):
        reward_model_run_start(run=RewardModelRun(name="refused", params=overlap), inline=True)
    assert not RewardModelRun.objects.exists()
    saved = RewardModelRun.objects.create(name="kept", params=overlap)
    with pytest.raises(ValueError, match="also training workers"):
        reward_model_run_start(run=saved, inline=True)
    assert RewardModelRun.objects.filter(pk=saved.pk).exists()
