"""Training runs through Django: validation metrics each epoch stored on the run, the "too short
to move the model" refusal on the add form, the list's summary column and the curve overlay."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from alignment.models import PreferenceDataset, TrainingRun
from alignment.services import preference_dataset_build, training_run_start
from jobs.models import Job
from tests.alignment_jobs.test_alignment_jobs import TINY, _offline, _reward_run, base_model  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset() -> PreferenceDataset:
    return preference_dataset_build(name="rf", source=PreferenceDataset.Source.REWARD_RUN, reward_run=_reward_run())


def _finished_sft(checkpoint: str, tmp_path: Path) -> TrainingRun:
    """An SFT run whose final checkpoint is the tiny base model (no SFT training needed here)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "sft-run"
    AutoModelForCausalLM.from_pretrained(checkpoint).save_pretrained(folder / "final")
    AutoTokenizer.from_pretrained(checkpoint).save_pretrained(folder / "final")
    return TrainingRun.objects.create(method="sft", base_model=checkpoint, output_dir=str(folder))


def test_rdpo_job_scores_the_validation_split_each_epoch(base_model, dataset, tmp_path,  # noqa: F811
                                                         django_capture_on_commit_callbacks, admin_client) -> None:
    sft = _finished_sft(base_model, tmp_path)
    assert dataset.counts["valid"] > 0
    with django_capture_on_commit_callbacks(execute=True):
        rdpo = training_run_start(method="rdpo", dataset=dataset, sft_run=sft, config={**TINY, "epochs": 2})
    rdpo.refresh_from_db()
    rdpo.job.refresh_from_db()
    assert rdpo.job.status == Job.Status.SUCCEEDED, rdpo.job.error
    rows = [h for h in rdpo.metrics["history"] if "valid/reward_accuracy" in h]
    per_epoch = rdpo.metrics["total_steps"] // 2
    assert [r["step"] for r in rows] == [per_epoch, 2 * per_epoch]
    assert all(r["valid/pairs"] == dataset.counts["valid"] for r in rows)
    assert 0 <= rdpo.metrics["valid/reward_accuracy"] <= 1 and rdpo.metrics["valid/nll"] > 0
    assert "validation after step" in rdpo.job.log_tail
    assert rdpo.metrics["warnings"] == []  # lr 1e-3: long enough

    # The list shows the summary; two runs' curves overlaid on one page.
    other = TrainingRun.objects.create(method="dpo", base_model=base_model, metrics={
        "history": [{"step": 1, "loss/train": 0.7}, {"step": 1, "valid/reward_accuracy": 0.5}],
        "loss/train": 0.7, "valid/reward_accuracy": 0.5})
    listing = admin_client.get(reverse("admin:alignment_trainingrun_changelist")).content.decode()
    assert f"{rdpo.metrics['loss/train']:.3g}</span><br><span" in listing
    assert f">{rdpo.metrics['valid/reward_accuracy']:.3g} · " in listing
    page = admin_client.post(reverse("admin:alignment_trainingrun_changelist"),
                             {"action": "compare_curves", "_selected_action": [rdpo.pk, other.pk]})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="compare-curves"' in html and "<svg" in html
    assert f"#{rdpo.pk} " in html and f"#{other.pk} " in html and "validation" in html
    one = admin_client.post(reverse("admin:alignment_trainingrun_changelist"),
                            {"action": "compare_curves", "_selected_action": [rdpo.pk]}, follow=True)
    assert "Select two to four runs" in one.content.decode()


def _form(dataset, sft, **extra) -> dict:
    return {"name": "r", "method": "rdpo", "dataset": dataset.pk, "sft_run": sft.pk, "lr": "5e-07", "epochs": "1",
            "batch_size": "8", "grad_accum": "8", "warmup_steps": "150", "max_length": "128",
            "max_prompt_length": "32", "beta": "0.1", "nll_weight": "1", "config": "{}", **extra}


def test_add_form_warns_before_starting_a_run_too_short_to_move_the_model(admin_client, base_model, dataset,  # noqa: F811
                                                                          tmp_path, django_capture_on_commit_callbacks) -> None:  # noqa: E501
    sft = _finished_sft(base_model, tmp_path)
    n_train = dataset.counts["train"]
    with django_capture_on_commit_callbacks(execute=False):
        refused = admin_client.post("/admin/alignment/trainingrun/add/", _form(dataset, sft))
        assert refused.status_code == 200
        error = " ".join(refused.context["adminform"].form.errors["start_anyway"])
        assert f"too short to move the model: {n_train} records → 1 optimizer steps" in error
        assert not TrainingRun.objects.filter(method="rdpo").exists()

        # Long enough (lr 1e-3 over the same step): accepted without the box.
        ok = admin_client.post("/admin/alignment/trainingrun/add/", _form(dataset, sft, lr="0.001", name="long"))
        assert ok.status_code == 302
        # Too short but confirmed: started, and the warning stays on the run.
        forced = admin_client.post("/admin/alignment/trainingrun/add/", _form(dataset, sft, start_anyway="on",
                                                                               name="short"))
        assert forced.status_code == 302
    assert TrainingRun.objects.get(name="long").metrics == {}
    short = TrainingRun.objects.get(name="short")
    assert "too short to move the model" in short.metrics["warnings"][0]
    page = admin_client.get(reverse("admin:alignment_trainingrun_change", args=[short.pk])).content.decode()
    assert "too short to move the model" in page
