"""The alignment admin refuses what would fail, never overwrites a finished run, and reads well.

The base model is the smoke-test model a fresh install makes (``make_smoke_model``).
"""

from __future__ import annotations

import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from alignment.models import EvaluationRun, PreferenceDataset, TrainingRun
from alignment.services import preference_dataset_build, training_run_start
from alignment.training.smoke import SMOKE_NAME, is_smoke_model
from collection.models import LLMModel
from jobs.models import Job
from tests.support.paths import MINI

TINY = {"batch_size": 4, "grad_accum": 1, "max_length": 96, "max_prompt_length": 32, "lr": 1e-3,
        "warmup_steps": 0, "optimizer": "adamw", "holdout_test_queries": 3}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings, tmp_path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    settings.IFLLM_MODELS_DIR = tmp_path / "models"
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())


@pytest.fixture
def smoke(tmp_path) -> str:
    out = StringIO()
    call_command("make_smoke_model", stdout=out)
    path = tmp_path / "models" / SMOKE_NAME
    assert str(path) in out.getvalue() and is_smoke_model(path)
    return str(path)


@pytest.fixture
def finished_sft(smoke, django_capture_on_commit_callbacks) -> TrainingRun:
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_start(method="sft", base_model=smoke, config=TINY)
    run.refresh_from_db()
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    return run


def _errors(response) -> dict[str, str]:
    form = response.context["adminform"].form
    return {k: " ".join(v) for k, v in form.errors.items()}


def test_add_form_refuses_unknown_settings_and_missing_paths(admin_client, tmp_path) -> None:
    response = admin_client.post(
        "/admin/alignment/trainingrun/add/",
        {"name": "x", "method": "sft", "base_model": str(tmp_path / "no-such-model"), "config": '{"tree": 50}',
         "lr": "abc"},
    )
    assert response.status_code == 200
    errors = _errors(response)
    assert "the path does not exist" in errors["base_model"]
    assert "unknown setting(s) for sft: tree" in errors["config"]
    assert "lr" in errors  # a real field: "Enter a number."
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


def test_add_form_shows_defaults_and_stores_the_settings(admin_client, smoke, django_capture_on_commit_callbacks) -> None:  # noqa: E501
    page = admin_client.get("/admin/alignment/trainingrun/add/").content.decode()
    assert 'name="warmup_steps"' in page and 'value="150"' in page  # the default, shown in the field
    assert "Default: 5e-07" in page
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(
            "/admin/alignment/trainingrun/add/",
            {"name": "s", "method": "sft", "base_model": smoke, "lr": "0.001", "epochs": "1", "batch_size": "4",
             "grad_accum": "1", "warmup_steps": "0", "max_length": "96", "beta": "0.1", "nll_weight": "1",
             "config": '{"max_prompt_length": 32}'},
        )
    assert response.status_code == 302, _errors(response)
    run = TrainingRun.objects.get()
    assert run.config == {"lr": 0.001, "epochs": 1, "batch_size": 4, "grad_accum": 1, "warmup_steps": 0,
                          "max_length": 96, "max_prompt_length": 32}  # no DPO-only settings on SFT
    page = admin_client.get(reverse("admin:alignment_trainingrun_change", args=[run.pk])).content.decode()
    assert "Config used" in page and "rmsprop" in page  # defaults the run uses, not "-"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any(f"job {run.job_id}" in m for m in messages)


def test_sft_run_field_accepts_only_finished_sft_runs(admin_client, finished_sft) -> None:
    dataset = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    dpo = TrainingRun.objects.create(method="dpo", base_model="x", sft_run=finished_sft, dataset=dataset)
    unfinished = TrainingRun.objects.create(method="sft", base_model=finished_sft.base_model)
    form = admin_client.get("/admin/alignment/trainingrun/add/").context["adminform"].form
    assert set(form.fields["sft_run"].queryset) == {finished_sft, unfinished}
    for sft_run, message in ((dpo.pk, "Select a valid choice"), (unfinished.pk, "has not finished")):
        response = admin_client.post(
            "/admin/alignment/trainingrun/add/",
            {"method": "dpo", "dataset": dataset.pk, "sft_run": sft_run, "config": "{}"},
        )
        assert message in _errors(response)["sft_run"]


def test_resume_refuses_a_finished_run_and_keeps_its_checkpoint(admin_client, finished_sft) -> None:
    final = Path(finished_sft.output_dir) / "final" / "model.safetensors"
    before = final.stat().st_mtime_ns
    response = admin_client.post(
        "/admin/alignment/trainingrun/",
        {"action": "resume_runs", "_selected_action": [finished_sft.pk]}, follow=True,
    )
    assert "is not resumed" in response.content.decode()
    finished_sft.refresh_from_db()
    assert Job.objects.count() == 1 and final.stat().st_mtime_ns == before


def test_resumed_run_shows_its_new_job(admin_client, smoke, django_capture_on_commit_callbacks) -> None:
    from jobs.services import job_cancel

    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(method="sft", base_model=smoke, config=TINY)
    job_cancel(job=run.job)
    with django_capture_on_commit_callbacks(execute=False):  # queued, not yet run: PENDING
        admin_client.post("/admin/alignment/trainingrun/", {"action": "resume_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.job.status == Job.Status.PENDING and Job.objects.count() == 2
    listing = admin_client.get("/admin/alignment/trainingrun/").content.decode()
    assert f"job {run.job_id}: Pending" in listing and "Cancelled" not in listing


def test_empty_training_runs_page_makes_the_smoke_model(admin_client, tmp_path) -> None:
    page = admin_client.get("/admin/alignment/trainingrun/").content.decode()
    assert "Make the smoke-test model" in page
    response = admin_client.post(reverse("admin:alignment_smoke_model"))
    assert response.status_code == 302 and "/add/?method=sft" in response["Location"]
    assert is_smoke_model(tmp_path / "models" / SMOKE_NAME)
    form = admin_client.get(response["Location"]).context["adminform"].form
    assert form.initial["base_model"] == str(tmp_path / "models" / SMOKE_NAME)


def test_evaluation_form_offers_judges_only_and_checks_the_context(admin_client, finished_sft) -> None:
    chat = LLMModel.objects.create(name="chat", provider="demo", model_id="demo-a", enabled=True)
    judge = LLMModel.objects.create(name="demo judge", provider="demo", model_id="demo-judge", can_judge=True)
    form = admin_client.get("/admin/alignment/evaluationrun/add/").context["adminform"].form
    assert list(form.fields["judge"].queryset) == [judge]
    assert finished_sft not in form.fields["aligned_run"].queryset
    response = admin_client.post(
        "/admin/alignment/evaluationrun/add/",
        {"sft_run": finished_sft.pk, "aligned_run": finished_sft.pk, "judge": chat.pk, "n_queries": "3",
         "max_new_tokens": "5000", "seed": "0", "params": "{}"},
    )
    errors = _errors(response)
    assert "judge" in errors and "aligned_run" in errors
    assert not EvaluationRun.objects.exists() and Job.objects.count() == 1
    # The context check on its own: the smoke model has 1024 positions.
    from alignment.checks import check_evaluation

    problems = check_evaluation(sft_run=finished_sft, aligned_run=None, judge=judge,
                                params={"n_queries": 3, "max_new_tokens": 5000})
    assert re.search(r"exceeds the 1024-token context", problems["max_new_tokens"])
    assert check_evaluation(sft_run=finished_sft, aligned_run=None, judge=judge,
                            params={"n_queries": 3, "max_new_tokens": 64}) == {}


def test_add_form_offers_the_speed_settings_with_their_defaults(admin_client) -> None:
    """Precomputed reference and packing are on unless staff say otherwise; a post that leaves
    them out keeps the defaults instead of switching them off."""
    from alignment.admin import TrainingRunForm

    page = admin_client.get("/admin/alignment/trainingrun/add/").content.decode()
    for name in ("precompute_reference", "packing", "gradient_checkpointing"):
        assert f'name="{name}"' in page
    form = TrainingRunForm()
    assert form["precompute_reference"].value() is True and form["packing"].value() is True
    assert form["gradient_checkpointing"].value() is False
    assert "Default: true" in form.fields["packing"].help_text
    data = {"name": "x", "method": "sft", "base_model": "", "config": "{}", "packing": "false"}
    bound = TrainingRunForm(data=data)
    bound.is_valid()
    assert bound.cleaned_data["config"] == {"packing": False}
    assert "precompute_reference" not in bound.cleaned_data["config"]  # DPO-only, and left at its default
