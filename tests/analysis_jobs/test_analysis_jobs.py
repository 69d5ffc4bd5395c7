"""The analysis jobs through Django, on the imported mini release."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from analysis.models import AnalysisFigure, RewardModelRun
from collection.models import Turn
from jobs.models import Job
from jobs.services import job_start
from tests.support.paths import MINI
from tests.support.scaled_release import scaled_release

SMALL = {"seeds": [0], "trees": 20, "k": 10, "n_splits": 3, "quality_filter": False, "worker_normalise": False}

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return scaled_release(MINI, tmp_path_factory.mktemp("scaled"), copies=4)


@pytest.fixture(autouse=True)
def _imported(release: Path) -> None:
    call_command("import_ifllm", str(release), "--jobs", "1", stdout=StringIO())


def test_reward_model_job_stores_table_and_oof_predictions(django_capture_on_commit_callbacks, admin_client) -> None:
    run = RewardModelRun.objects.create(params=SMALL)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.queue == "cpu"
    run.refresh_from_db()
    assert run.job_id == job.pk
    assert "| RF + IF |" in run.table_text
    assert {r["protocol"] for r in run.results} >= {"paper", "grouped", "ungrouped"}
    labelled = Turn.objects.exclude(model_2="").exclude(preferred=None)
    preds = run.predictions.filter(model_name="RF + IF", protocol="grouped")
    assert preds.count() == labelled.count()
    for p in preds.select_related("turn"):
        assert p.label == p.turn.preferred  # label direction: 1 = response 1 preferred
        assert p.p_winner >= 0.5 and p.p_winner == pytest.approx(max(p.prob_1, 1 - p.prob_1))
        assert p.predicted == (1 if p.prob_1 >= 0.5 else 2)
    # The run page: Table 2 as HTML (one table per setting x protocol, best per column marked),
    # the accuracy plot with the length-only baseline, and the settings from the results.
    page = admin_client.get(f"/admin/analysis/rewardmodelrun/{run.pk}/change/").content.decode()
    settings = {r["setting"] for r in run.results}
    n_tables = len({(r["setting"], r["protocol"]) for r in run.results})
    # Table 2 (seed spread): one table per setting x protocol, nothing marked best, the leaky
    # paper protocol last and marked; above it the worker intervals and the verdict per setting.
    assert page.count('<table class="ifllm-results">') + page.count('<table class="ifllm-results leaky">') \
        == n_tables >= 3
    assert 'class="best"' not in page and "(length-only baseline)" in page and "<svg" in page
    assert "Pairwise (left vs right)" not in page and "Pairwise" in settings
    assert page.count('class="ifllm-results ifllm-intervals') == n_tables
    assert page.index('data-protocol="grouped"') < page.index('data-protocol="ungrouped"') \
        < page.index('data-protocol="paper"')
    assert "LEAKY" in page
    from analysis.reward.verdict import setting_verdicts

    verdicts = setting_verdicts(run.report["intervals"])
    assert {v["setting"] for v in verdicts} == set(run.report["intervals"])
    for v in verdicts:
        assert v["sentence"] in page and " over length on new workers: " in v["sentence"]
    other = RewardModelRun.objects.create(name="other run", results=run.results, params=run.params,
                                          report=run.report)
    compare = admin_client.post("/admin/analysis/rewardmodelrun/",
                                {"action": "compare_runs", "_selected_action": [run.pk, other.pk]})
    assert compare.status_code == 200
    text = compare.content.decode()
    assert text.count('class="ifllm-results ifllm-compare-table') == n_tables
    assert "Δ accuracy (B − A)" in text and "Δ ECE" in text and "Δ Brier" in text
    assert "+0.000" in text  # the same results: Δ = 0 in every cell


def test_cancelled_reward_job_stops_between_folds_and_stores_nothing(
    django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """Cancel while the second fold is logged: the next fold check stops the job; no half table."""
    from jobs.runner import JobContext
    from jobs.services import job_cancel

    folds_after_cancel: list[str] = []
    original_log = JobContext.log

    def log(self: JobContext, line: str) -> None:
        original_log(self, line)
        if "fold" in line and Job.objects.get(pk=self.job.pk).status == Job.Status.CANCELLED:
            folds_after_cancel.append(line)
        if "pairwise: fold 2 of " in line:
            job_cancel(job=Job.objects.get(pk=self.job.pk))

    monkeypatch.setattr(JobContext, "log", log)
    run = RewardModelRun.objects.create(params=SMALL)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert folds_after_cancel == []  # stopped at the fold where it was cancelled
    assert "pairwise: fold 2 of " in job.log_tail  # the log says what it did
    assert run.results == [] and run.table_text == "" and not run.predictions.exists()


def test_reward_models_command_prints_table() -> None:
    out = StringIO()
    call_command(
        "reward_models", "--seeds", "0", "--trees", "10", "--k", "20", "--n-splits", "3", "--no-quality-filter",
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    assert "Pairwise" in text and "grouped" in text
    assert RewardModelRun.objects.get().predictions.exists()


def test_figures_job_renders_png_and_svg(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.figures", params={})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    names = set(AnalysisFigure.objects.values_list("name", flat=True))
    assert {"reading_position_length_gaze", "heatmap_mouse", "gaze_mouse_correlation"} <= names
    fig = AnalysisFigure.objects.get(name="heatmap_gaze")
    assert bytes(fig.png[:8]) == b"\x89PNG\r\n\x1a\n" and fig.svg.lstrip().startswith("<?xml")
    assert fig.job_id == job.pk


def test_dashboard_and_admin(admin_client, client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job_start(kind="analysis.figures", params={})
    fig = AnalysisFigure.objects.first()
    assert client.get("/analysis/").status_code == 302  # staff only
    assert client.get(f"/analysis/figures/{fig.pk}.png").status_code == 302
    page = admin_client.get("/analysis/")
    assert page.status_code == 200 and fig.title.encode() in page.content
    png = admin_client.get(f"/analysis/figures/{fig.pk}.png")
    assert png["Content-Type"] == "image/png"
    for name in ("rewardmodelrun", "rewardprediction", "analysisfigure"):
        assert admin_client.get(f"/admin/analysis/{name}/").status_code == 200
    assert admin_client.get(f"/admin/analysis/analysisfigure/{fig.pk}/change/").status_code == 200


def test_feature_table_is_cached_by_data_version(settings, tmp_path, monkeypatch) -> None:
    import pandas as pd

    import analysis.features
    from analysis.services import feature_table

    settings.VAR_DIR = tmp_path
    _, first = feature_table(params={})
    assert list(tmp_path.glob("cache/features/features-*.parquet"))

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(analysis.features, "build_feature_table", boom)
    _, second = feature_table(params={})
    assert second.data_version == first.data_version
    pd.testing.assert_frame_equal(second.features, first.features, check_dtype=False)
    turn = Turn.objects.first()
    turn.response_1 += " (edited)"
    turn.save()
    with pytest.raises(AssertionError, match="recomputed"):
        feature_table(params={})


@pytest.mark.parametrize("with_features", [False, True])
def test_text_reward_job_on_gpu_queue(tiny_bert, with_features, django_capture_on_commit_callbacks) -> None:
    run = RewardModelRun.objects.create(params={
        "model_path": tiny_bert, "epochs": 1, "batch_size": 8, "max_length": 128, "n_splits": 3,
        "quality_filter": False, "with_features": with_features, "k": 5, "protocols": ["grouped"],
    })
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.text_reward", params={"run_pk": run.pk})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.queue == "gpu"
    run.refresh_from_db()
    name = "Text FT + IF" if with_features else "Text FT"
    preds = run.predictions.filter(model_name=name, protocol="grouped")
    labelled = Turn.objects.exclude(model_2="").exclude(preferred=None)
    assert preds.count() == labelled.count()
    assert all(0.5 <= p.p_winner <= 1 for p in preds)
    assert f"| {name} |" in run.table_text


def test_text_reward_needs_a_checkpoint(django_capture_on_commit_callbacks) -> None:
    run = RewardModelRun.objects.create(params={})
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.text_reward", params={"run_pk": run.pk})
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "model_path" in job.error


def test_calibrated_confidence_is_stored_and_labels_preference_datasets(django_capture_on_commit_callbacks) -> None:
    from alignment.models import PreferenceDataset
    from alignment.services import preference_dataset_build

    run = RewardModelRun.objects.create(params={**SMALL, "calibration": "platt"})
    with django_capture_on_commit_callbacks(execute=True):
        job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
    run.refresh_from_db()
    grouped = run.predictions.filter(model_name="RF + IF", protocol="grouped")
    assert grouped.exists() and not grouped.filter(p_winner_cal=None).exists()
    # calibration is fitted in the grouped training folds only; the leaky protocols stay raw
    assert not run.predictions.filter(protocol="paper").exclude(p_winner_cal=None).exists()
    for p in grouped:
        assert p.p_winner_cal == pytest.approx(max(p.prob_1_cal, 1 - p.prob_1_cal))
    assert any(abs(p.prob_1_cal - p.prob_1) > 1e-3 for p in grouped)  # it is not the raw forest vote
    # stage timings and intervals are on the run's report (stable keys, see services docstring)
    assert run.report["timings"]["reward models"] > 0
    keys = {"accuracy", "acc_lo", "acc_hi", "diff", "diff_lo", "diff_hi", "ece"}
    assert keys <= set(run.report["intervals"]["Pairwise"][0])
    dataset = preference_dataset_build(name="cal", source=PreferenceDataset.Source.REWARD_RUN, reward_run=run)
    by_turn = {p.turn_id: p for p in grouped}
    pairs = list(dataset.pairs.all())
    assert pairs
    for pair in pairs:
        pred = by_turn[pair.turn_id]
        assert pair.confidence == pytest.approx(pred.p_winner_cal)
        assert pair.chosen_side == (1 if pred.prob_1_cal >= 0.5 else 2)


def test_reward_models_command_transfer_between_worker_files(tmp_path) -> None:
    import json

    from collection.models import Worker

    workers = sorted(Worker.objects.values_list("pseudonym", flat=True))
    assert len(workers) >= 4
    half = len(workers) // 2
    (tmp_path / "train.txt").write_text("\n".join(workers[:half]) + "\n")
    (tmp_path / "test.txt").write_text("# held-out cohort\n" + "\n".join(workers[half:]) + "\n")
    out = StringIO()
    call_command(
        "reward_models", "--seeds", "0", "--trees", "10", "--k", "10", "--no-quality-filter",
        "--train-workers", str(tmp_path / "train.txt"), "--test-workers", str(tmp_path / "test.txt"),
        "--json", str(tmp_path / "out.json"), stdout=out, stderr=StringIO(),
    )
    assert "Δ vs length-only" in out.getvalue()
    result = json.loads((tmp_path / "out.json").read_text())
    assert result  # settings with enough labelled rows on the mini copies
    rf = next(iter(result.values()))["RF + IF"]
    assert {"accuracy", "auc", "ece", "brier", "n_test", "workers_test", "acc_lo", "acc_hi", "diff_lo"} <= set(rf)
    assert rf["workers_test"] <= len(workers) - half
    assert rf["acc_lo"] <= rf["accuracy"] <= rf["acc_hi"]


def test_transfer_run_page_shows_its_intervals_verdict_and_plot(tmp_path, admin_client) -> None:
    """A transfer run's rows have ``accuracy`` (no seed means): the page renders them, not an
    empty Table 2 and a JSON blob; a named worker without features is a warning on the run."""
    from analysis.reward.verdict import setting_verdicts
    from collection.models import Worker

    workers = sorted(Worker.objects.values_list("pseudonym", flat=True))
    idle = Worker.objects.create(pseudonym="worker_without_tasks", platform="release")
    half = len(workers) // 2
    (tmp_path / "train.txt").write_text("\n".join(workers[:half]))
    (tmp_path / "test.txt").write_text("\n".join([*workers[half:], idle.pseudonym]))
    call_command("reward_models", "--seeds", "0", "--trees", "10", "--k", "10", "--no-quality-filter",
                 "--train-workers", str(tmp_path / "train.txt"), "--test-workers", str(tmp_path / "test.txt"),
                 stdout=StringIO(), stderr=StringIO())
    run = RewardModelRun.objects.get()
    assert run.results and all("accuracy_mean" not in r for r in run.results)
    page = admin_client.get(f"/admin/analysis/rewardmodelrun/{run.pk}/change/").content.decode()
    assert page.count('data-protocol="transfer"') == len(run.report["intervals"]) >= 1
    for v in setting_verdicts(run.report["intervals"]):
        assert v["sentence"] in page and "over length on the test workers" in v["sentence"]
    rows = next(iter(run.report["intervals"].values()))
    rf = next(r for r in rows if r["model"] == "RF + IF")
    assert f"{rf['accuracy']:.3f}" in page
    plot = page.split("field-accuracy_plot", 1)[1].split("field-table", 1)[0]
    assert plot.count("<svg") == 1 and plot.count("<path") > 20  # drawn, not an empty figure
    assert "worker_without_tasks" in page and 'class="ifllm-warning"' in page
    assert '{"Pairwise"' not in page and "&quot;RF + IF&quot;" not in page  # no JSON blob of the results


def test_reward_models_command_refuses_unknown_workers(tmp_path) -> None:
    from django.core.management.base import CommandError

    from collection.models import Worker

    w = sorted(Worker.objects.values_list("pseudonym", flat=True))
    (tmp_path / "a.txt").write_text("\n".join(w[:2]))
    (tmp_path / "b.txt").write_text("nobody_here\n")
    with pytest.raises(CommandError, match="test_workers: 1 unknown worker id"):
        call_command("reward_models", "--seeds", "0", "--trees", "10", "--no-quality-filter",
                     "--train-workers", str(tmp_path / "a.txt"), "--test-workers", str(tmp_path / "b.txt"),
                     stdout=StringIO(), stderr=StringIO())
    assert not RewardModelRun.objects.exists()


def test_reward_models_command_refuses_overlapping_workers(tmp_path) -> None:
    from django.core.management.base import CommandError

    from collection.models import Worker

    w = list(Worker.objects.values_list("pseudonym", flat=True))
    (tmp_path / "a.txt").write_text("\n".join(w))
    with pytest.raises(CommandError, match="test_workers"):
        call_command("reward_models", "--seeds", "0", "--trees", "10", "--no-quality-filter",
                     "--train-workers", str(tmp_path / "a.txt"), "--test-workers", str(tmp_path / "a.txt"),
                     stdout=StringIO(), stderr=StringIO())
    assert not RewardModelRun.objects.exists()
