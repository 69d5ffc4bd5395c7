"""The alignment jobs end to end through Django: dataset -> SFT -> DPO/rDPO -> judged evaluation.

Tiny random GPT-2 saved to a local folder stands in for a base checkpoint; the judge is a model
registry entry pointing at a real local OpenAI-compatible server.
"""

from __future__ import annotations

import json
import math
import os
import re
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import call_command

from alignment.models import EvaluationRun, PreferenceDataset, PreferencePair, TrainingRun
from alignment.services import (
    evaluation_run_start,
    preference_dataset_build,
    preference_dataset_export,
    training_run_start,
)
from analysis.models import RewardModelRun, RewardPrediction
from collection.models import LLMModel, Task, Turn
from jobs.models import Job
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.paths import MINI

TINY = {"batch_size": 4, "grad_accum": 1, "max_length": 128, "max_prompt_length": 32, "lr": 1e-3,
        "warmup_steps": 0, "optimizer": "adamw"}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _offline(settings, tmp_path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())


@pytest.fixture
def base_model(tmp_path) -> str:
    from transformers import ByT5Tokenizer, GPT2Config, GPT2LMHeadModel

    tok = ByT5Tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok), n_layer=2, n_embd=32, n_head=2, n_positions=256,
        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    path = tmp_path / "tiny-gpt2"
    GPT2LMHeadModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _job_ok(job: Job) -> None:
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error


def test_explicit_dataset_has_one_pair_per_labelled_turn(tmp_path) -> None:
    ds = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    labelled = Turn.objects.exclude(model_2="").exclude(preferred=None).filter(error_1="", error_2="")
    assert ds.pairs.count() == labelled.count() == sum(ds.counts.values())
    for pair in ds.pairs.select_related("turn"):
        winner = pair.turn.response_1 if pair.turn.preferred == 1 else pair.turn.response_2
        loser = pair.turn.response_2 if pair.turn.preferred == 1 else pair.turn.response_1
        assert (pair.chosen, pair.rejected, pair.chosen_side) == (winner, loser, pair.turn.preferred)
    prompts = {}
    for pair in ds.pairs.all():
        assert prompts.setdefault(pair.prompt, pair.split) == pair.split  # no prompt crosses splits
    out = preference_dataset_export(dataset=ds, path=tmp_path / "export")
    rows = [json.loads(line) for split in ("train", "valid", "test") for line in open(out / f"{split}.jsonl")]
    assert len(rows) == ds.pairs.count()
    assert {"prompt", "chosen", "rejected", "confidence"} <= set(rows[0])
    assert "Splits are grouped by prompt" in (out / "README.md").read_text()
    # pair_id is the turn's public query id: the crowd export names the same pair the same way
    assert sorted(r["pair_id"] for r in rows) == sorted(str(p.turn.public_id) for p in ds.pairs.select_related("turn"))


def test_exported_dataset_loads_and_trains_in_trl(tmp_path, base_model) -> None:
    """The export is a Hub-style folder: `load_dataset(folder)` -> TRL's DPOTrainer, unchanged."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    ds = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT, test=0.0)
    out = preference_dataset_export(dataset=ds, path=tmp_path / "export")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    sizes = {name: len(split) for name, split in loaded.items()}
    assert sizes == {"train": ds.counts["train"], "validation": ds.counts["valid"]}  # empty test split left out
    first = ds.pairs.filter(split="train").order_by("pk").first()
    assert (loaded["train"][0]["prompt"], loaded["train"][0]["chosen"]) == (first.prompt, first.chosen)
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(base_model),
        ref_model=AutoModelForCausalLM.from_pretrained(base_model),
        args=DPOConfig(output_dir=str(tmp_path / "trl"), max_steps=2, per_device_train_batch_size=2,
                       max_length=128, use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True),
        train_dataset=loaded["train"], processing_class=AutoTokenizer.from_pretrained(base_model),
    )
    result = trainer.train()
    assert result.global_step == 2 and math.isfinite(result.training_loss)


def _reward_run() -> RewardModelRun:
    """A reward-model run's OOF predictions: P(response 1) from a fixed rule, some wrong."""
    run = RewardModelRun.objects.create(name="fixture")
    for i, turn in enumerate(Turn.objects.exclude(model_2="").exclude(preferred=None).order_by("pk")):
        prob_1 = 0.8 if (turn.preferred == 1) != (i % 4 == 0) else 0.3
        predicted = 1 if prob_1 >= 0.5 else 2
        RewardPrediction.objects.create(
            run=run, turn=turn, model_name="RF + IF", protocol="grouped", prob_1=prob_1,
            predicted=predicted, p_winner=max(prob_1, 1 - prob_1), label=turn.preferred,
        )
    return run


def test_reward_dataset_uses_predicted_winner_and_its_probability() -> None:
    run = _reward_run()
    ds = preference_dataset_build(name="rf", source=PreferenceDataset.Source.REWARD_RUN, reward_run=run)
    for pair in ds.pairs.select_related("turn"):
        pred = run.predictions.get(turn=pair.turn)
        assert pair.chosen_side == pred.predicted
        assert pair.confidence == pytest.approx(pred.p_winner)
        assert pair.confidence >= 0.5


def _build_action(admin_client, run: RewardModelRun):
    return admin_client.post(
        "/admin/analysis/rewardmodelrun/",
        {"action": "build_dataset", "_selected_action": [run.pk]},
        follow=True,
    )


def test_admin_action_builds_dataset_from_rf_if_predictions(admin_client) -> None:
    run = _reward_run()
    # A weaker model's predictions in the same run must not be the ones used.
    for p in run.predictions.all():
        RewardPrediction.objects.create(
            run=run, turn_id=p.turn_id, model_name="Text FT", protocol="grouped", prob_1=1 - p.prob_1,
            predicted=3 - p.predicted, p_winner=p.p_winner, label=p.label,
        )
    response = _build_action(admin_client, run)
    assert response.status_code == 200
    ds = PreferenceDataset.objects.get()
    assert (ds.source, ds.reward_run, ds.reward_model, ds.reward_protocol) == ("reward_run", run, "RF + IF", "grouped")
    assert b"built from RF + IF (grouped)" in response.content
    rf = {p.turn_id: p.predicted for p in run.predictions.filter(model_name="RF + IF")}
    assert {p.turn_id: p.chosen_side for p in ds.pairs.all()} == rf


def test_admin_action_warns_when_a_run_has_no_predictions(admin_client) -> None:
    run = RewardModelRun.objects.create(name="empty")
    response = _build_action(admin_client, run)
    assert b"no RF + IF or text reward-model predictions" in response.content
    assert not PreferenceDataset.objects.exists()


def test_dataset_add_form_refuses_a_reward_source_without_predictions(admin_client) -> None:
    empty = RewardModelRun.objects.create(name="empty")
    for run in ("", empty.pk):
        response = admin_client.post(
            "/admin/alignment/preferencedataset/add/",
            {"name": "x", "source": "reward_run", "reward_run": run, "reward_model": "", "reward_protocol": ""},
        )
        assert response.status_code == 200  # the form again, with the error on the field
        assert response.context["adminform"].form.errors["reward_run"]
    assert not PreferenceDataset.objects.exists()
    response = admin_client.post(
        "/admin/alignment/preferencedataset/add/",
        {"name": "rf", "source": "reward_run", "reward_run": _reward_run().pk, "reward_model": "",
         "reward_protocol": ""},
    )
    assert response.status_code == 302
    assert (PreferenceDataset.objects.get().reward_model, PreferenceDataset.objects.get().reward_protocol) == (
        "RF + IF", "grouped",
    )


def test_dataset_from_a_text_reward_model(admin_client, tiny_bert, django_capture_on_commit_callbacks) -> None:
    """analysis.text_reward (a real fine-tuned text classifier) -> admin action -> rDPO-ready dataset."""
    from jobs.services import job_start

    run = RewardModelRun.objects.create(name="text", params={
        "model_path": tiny_bert, "epochs": 1, "batch_size": 8, "max_length": 64, "n_splits": 2,
        "quality_filter": False, "protocols": ["grouped"],
    })
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.text_reward", params={"run_pk": run.pk})
    _job_ok(job)
    _build_action(admin_client, run)
    ds = PreferenceDataset.objects.get()
    assert (ds.reward_model, ds.reward_protocol) == ("Text FT", "grouped")
    preds = {p.turn_id: p for p in run.predictions.filter(model_name="Text FT", protocol="grouped")}
    assert ds.pairs.count() == len(preds) > 0
    for pair in ds.pairs.select_related("turn"):
        pred = preds[pair.turn_id]
        winner = pair.turn.response_1 if pred.predicted == 1 else pair.turn.response_2
        assert (pair.chosen, pair.chosen_side) == (winner, pred.predicted)
        assert pair.confidence == pytest.approx(pred.p_winner)


def test_rdpo_refuses_explicit_labels(base_model) -> None:
    ds = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    sft = TrainingRun.objects.create(method="sft", base_model=base_model)
    with pytest.raises(ValueError, match="confidences"):
        training_run_start(method="rdpo", dataset=ds, sft_run=sft)


def _judge_reply(messages, request) -> str:
    prompt = messages[-1]["content"]
    a = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", prompt, re.S).group(1)
    b = re.search(r"\[Answer B\]\n(.*?)\n\nReply", prompt, re.S).group(1)
    return json.dumps({"score_a": 1 + len(a) % 10, "score_b": 1 + len(b) % 10, "winner": "A"})


def test_sft_then_rdpo_then_evaluation(base_model, django_capture_on_commit_callbacks) -> None:
    dataset = preference_dataset_build(
        name="rf", source=PreferenceDataset.Source.REWARD_RUN, reward_run=_reward_run()
    )
    with django_capture_on_commit_callbacks(execute=True):
        sft = training_run_start(method="sft", base_model=base_model, config={**TINY, "holdout_test_queries": 3})
    _job_ok(sft.job)
    sft.refresh_from_db()
    assert (Path(sft.output_dir) / "final" / "config.json").exists()
    assert sft.metrics["step"] == sft.metrics["total_steps"] > 0
    assert sft.job.queue == "gpu"

    with django_capture_on_commit_callbacks(execute=True):
        rdpo = training_run_start(method="rdpo", dataset=dataset, sft_run=sft, config={**TINY, "beta": 0.1})
    _job_ok(rdpo.job)
    rdpo.refresh_from_db()
    assert "rewards_train/margins" in rdpo.metrics
    assert "epsilon_train/mean" in rdpo.metrics and 0 <= rdpo.metrics["epsilon_train/mean"] <= 0.45

    with FakeLLMServer(_judge_reply) as server:
        judge = LLMModel.objects.create(
            name="judge", provider="openai", model_id="judge-1", base_url=server.openai_base_url, can_judge=True
        )
        with django_capture_on_commit_callbacks(execute=True):
            ev = evaluation_run_start(
                sft_run=sft, aligned_run=rdpo, judge=judge, params={"n_queries": 3, "max_new_tokens": 8}
            )
        _job_ok(ev.job)
        assert len(server.requests) == 1 + 6  # the judge check, then 3 queries x both presentation orders
    ev.refresh_from_db()
    assert len(ev.comparisons) == 3
    overall = [r for r in ev.table if r["breakdown"] == "overall"][0]
    assert overall["n"] == 3
    assert overall["dpo_win_share"] + overall["tie_share"] + overall["sft_win_share"] == pytest.approx(1)
    assert {c["winner"] for c in ev.comparisons} <= {"dpo", "sft", "tie"}


def test_training_refuses_a_missing_checkpoint_before_starting(tmp_path) -> None:
    with pytest.raises(ValueError, match="the path does not exist"):
        training_run_start(method="sft", base_model=str(tmp_path / "missing"), config=TINY)
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


def test_training_job_failure_is_recorded(tmp_path, django_capture_on_commit_callbacks) -> None:
    broken = tmp_path / "broken"  # looks like a checkpoint, but no weights or tokenizer load from it
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "gpt2"}')
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_start(method="sft", base_model=str(broken), config=TINY)
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.FAILED and run.job.error


def test_admin_pages(admin_client, base_model) -> None:
    preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    TrainingRun.objects.create(method="sft", base_model=base_model)
    for name in ("preferencedataset", "preferencepair", "trainingrun", "evaluationrun"):
        assert admin_client.get(f"/admin/alignment/{name}/").status_code == 200
        assert admin_client.get(f"/admin/alignment/{name}/add/").status_code in (200, 403)
    response = admin_client.post(
        "/admin/alignment/trainingrun/add/",
        {"name": "x", "method": "rdpo", "base_model": "", "config": "{}",
         "dataset": PreferenceDataset.objects.get().pk},
    )
    assert response.status_code == 200  # form redisplayed with errors, nothing started
    assert b"start from an SFT run" in response.content
    assert not Job.objects.exists()
    assert Task.objects.exists() and PreferencePair.objects.exists() and not EvaluationRun.objects.exists()


def test_human_evaluation_export_and_import(tmp_path) -> None:
    import pandas as pd

    from alignment.services import human_batch_export

    sft = TrainingRun.objects.create(method="sft", base_model="x")
    dpo = TrainingRun.objects.create(method="dpo", base_model="x", sft_run=sft)
    comparisons = [
        {"query": f"q{i}", "sft_answer": f"short {i}", "dpo_answer": f"a longer answer {i}",
         "score_sft": float(3 + i % 3), "score_dpo": float(5 + i % 4), "winner": "dpo"}
        for i in range(8)
    ]
    ev = EvaluationRun.objects.create(sft_run=sft, aligned_run=dpo, comparisons=comparisons)
    folder = human_batch_export(evaluation=ev)
    batch = pd.read_csv(folder / "batch.csv")
    key = pd.read_csv(folder / "key.csv")
    assert len(batch) == 8 and "${query}" in (folder / "template.html").read_text()
    assert set(key["a_system"]) == {"dpo", "sft"}  # order randomised, not always DPO first
    # Two workers who rate like the judge: DPO answers score from the judge's score.
    rows = []
    for worker in ("W1", "W2"):
        for i, (item, a_sys) in enumerate(zip(key["item_id"], key["a_system"], strict=True)):
            judge = {"dpo": comparisons[i]["score_dpo"], "sft": comparisons[i]["score_sft"]}
            b_sys = "sft" if a_sys == "dpo" else "dpo"
            rows.append({"WorkerId": worker, "Input.item_id": item,
                         "Answer.overall_a": min(5, judge[a_sys] - 2), "Answer.overall_b": min(5, judge[b_sys] - 2),
                         "Answer.comparison": "A" if a_sys == "dpo" else "B"})
    results = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(results, index=False)
    out = StringIO()
    call_command("import_human_eval", str(ev.pk), str(results), stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["overall"]["mean_dpo"] > summary["overall"]["mean_sft"]
    assert summary["overall"]["human_vs_judge"] > 0.5
    ev.refresh_from_db()
    assert ev.human_eval["results"]["overall"]["n"] == 32


def test_database_error_during_training_fails_the_job(
    base_model, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """Only a cancellation stops training quietly: a failing progress write fails the job."""
    from django.db import OperationalError

    from jobs.runner import JobContext

    real_progress = JobContext.progress

    def flaky_progress(self, pct: float, message: str = "") -> None:
        if message.startswith("step"):
            raise OperationalError("server closed the connection unexpectedly")
        real_progress(self, pct, message)

    monkeypatch.setattr(JobContext, "progress", flaky_progress)
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_start(method="sft", base_model=base_model, config={**TINY, "holdout_test_queries": 3})
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    assert "server closed the connection" in run.job.error
    assert not (Path(run.output_dir) / "final").exists()


def test_cancellation_during_training_stops_at_a_checkpoint(
    base_model, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from jobs.exceptions import JobCancelled
    from jobs.runner import JobContext

    real_progress = JobContext.progress

    def cancelled(self, pct: float, message: str = "") -> None:
        if message.startswith("step"):
            Job.objects.filter(pk=self.job.pk).update(status=Job.Status.CANCELLED)
        real_progress(self, pct, message)  # raises JobCancelled once the row is CANCELLED

    monkeypatch.setattr(JobContext, "progress", cancelled)
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_start(method="sft", base_model=base_model, config={**TINY, "holdout_test_queries": 3})
    run.job.refresh_from_db()
    run.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED, run.job.error
    assert run.metrics["stopped"] is True
    assert JobCancelled.__name__ not in run.job.error  # a clean stop, not a traceback


def test_training_job_leaves_the_run_config_as_recorded(base_model, django_capture_on_commit_callbacks) -> None:
    """The job reads its overrides from a copy: every save of the run carries the config as given."""
    from django.db.models.signals import post_save

    config = {**TINY, "holdout_test_queries": 3}
    seen: list[dict] = []

    def record(sender, instance, **kwargs) -> None:
        seen.append(dict(instance.config))

    post_save.connect(record, sender=TrainingRun)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = training_run_start(method="sft", base_model=base_model, config=dict(config))
    finally:
        post_save.disconnect(record, sender=TrainingRun)
    _job_ok(run.job)
    run.refresh_from_db()
    assert run.config == config
    assert len(seen) > 2 and all(c == config for c in seen)


def test_judge_with_an_unset_key_variable_is_refused_not_sent_a_placeholder(monkeypatch) -> None:
    """One key rule (collection.llm.clients.api_key) for chat models and the judge."""
    from alignment.checks import check_evaluation
    from alignment.tasks import judge_client_fn
    from collection.llm.clients import ProviderError

    monkeypatch.delenv("IFLLM_TEST_JUDGE_KEY", raising=False)
    judge = LLMModel.objects.create(name="keyed judge", provider="openai", model_id="j", can_judge=True,
                                    api_key_env="IFLLM_TEST_JUDGE_KEY")
    with pytest.raises(ProviderError, match="IFLLM_TEST_JUDGE_KEY is not set"):
        judge_client_fn(judge)
    errors = check_evaluation(sft_run=None, aligned_run=None, judge=judge, params={})
    assert "IFLLM_TEST_JUDGE_KEY is not set" in errors["judge"]
    monkeypatch.setenv("IFLLM_TEST_JUDGE_KEY", "sk-test")
    assert callable(judge_client_fn(judge))
    assert "judge" not in check_evaluation(sft_run=None, aligned_run=None, judge=judge, params={})


def test_dpo_runs_precompute_the_reference_once_and_cache_it_on_the_dataset(
    tmp_path, base_model, django_capture_on_commit_callbacks
) -> None:
    """Default DPO runs: packed batches, reference log-probs computed once, kept on the pairs (and in
    the export), read back by the next run; the losses equal a live-reference padded run's."""
    dataset = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    with django_capture_on_commit_callbacks(execute=True):
        sft = training_run_start(method="sft", base_model=base_model, config={**TINY, "holdout_test_queries": 3})
    _job_ok(sft.job)
    runs = {}
    for name, extra in {"first": {}, "cached": {},
                        "live": {"precompute_reference": False, "packing": False}}.items():
        with django_capture_on_commit_callbacks(execute=True):
            runs[name] = training_run_start(method="dpo", dataset=dataset, sft_run=sft, config={**TINY, **extra})
        _job_ok(runs[name].job)
        runs[name].refresh_from_db()
    assert "computed" in runs["first"].job.log_tail and "cache" in runs["first"].job.log_tail
    assert "read from the dataset's cache" in runs["cached"].job.log_tail
    assert "reference log-probs" not in runs["live"].job.log_tail
    dataset.refresh_from_db()
    assert len(dataset.reference_key) == 64 and dataset.reference_checkpoint.endswith("final")
    train = dataset.pairs.filter(split="train")
    assert not train.filter(reference_chosen_logps=None).exists()
    assert train.exclude(reference_chosen_logps__lt=0).count() == 0  # summed log-probs are negative
    # Training rows only (the validation rows of each epoch carry valid/... keys instead).
    losses = {name: [h["loss/train"] for h in run.metrics["history"] if "loss/train" in h]
              for name, run in runs.items()}
    assert all(losses.values())
    assert losses["cached"] == losses["first"]
    assert losses["live"] == pytest.approx(losses["first"], abs=1e-3)

    out = preference_dataset_export(dataset=dataset, path=tmp_path / "export")
    row = json.loads(open(out / "train.jsonl").readline())
    pair = next(p for p in dataset.pairs.select_related("turn") if str(p.turn.public_id) == row["pair_id"])
    assert row["reference_chosen_logps"] == pytest.approx(pair.reference_chosen_logps)
    assert row["reference_rejected_logps"] == pytest.approx(pair.reference_rejected_logps)
    assert dataset.reference_key[:12] in (out / "README.md").read_text()


def test_reference_cache_key_follows_the_checkpoint_and_settings(tmp_path, base_model) -> None:
    from alignment.services import dataset_reference_logps_store, reference_logps_key
    from alignment.training.config import DPOConfig

    dataset = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    key = reference_logps_key(dataset=dataset, reference_path=base_model, cfg=DPOConfig())
    assert key == reference_logps_key(dataset=dataset, reference_path=base_model, cfg=DPOConfig())
    assert key != reference_logps_key(dataset=dataset, reference_path=base_model, cfg=DPOConfig(max_length=256))
    pair = dataset.pairs.first()
    dataset_reference_logps_store(dataset=dataset, key=key, reference_path=base_model,
                                  values={str(pair.turn.public_id): (-3.0, -4.0)})
    dataset.refresh_from_db()
    (Path(base_model) / "model.safetensors").touch()  # the checkpoint was rewritten in place
    os.utime(Path(base_model) / "model.safetensors", ns=(1, 1))
    new_key = reference_logps_key(dataset=dataset, reference_path=base_model, cfg=DPOConfig())
    assert new_key != key
    from alignment.services import dataset_records

    assert "reference_chosen_logps" not in dataset_records(dataset=dataset, reference_key=new_key)[0]
    records = {r["pair_id"]: r for r in dataset_records(dataset=dataset, reference_key=key)}
    assert records[str(pair.turn.public_id)]["reference_chosen_logps"] == -3.0
