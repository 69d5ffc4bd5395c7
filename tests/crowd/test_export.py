"""export_dataset: cleaned (excluded tasks left out), pseudonymised, no platform ids or free text."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.test import override_settings

from collection.models import Platform, Task, Topic, Turn, Worker
from crowd import anonymise, services
from crowd.models import Assignment, Study

pytestmark = pytest.mark.django_db

SECRETS = [
    "A3PLATFORMWORKERID9",
    "3ASSIGNMENTIDXYZ",
    "3HITIDXYZ",
    "SECRETCODE42",
    "Jane Doe from Springfield",
    "Springfield, Ohio",
    "call me at 555-0100",
]


@pytest.fixture
def site_data(mini_release: None) -> Worker:
    worker = Worker.objects.create(
        pseudonym="site-hmac-1", platform=Platform.MTURK, platform_worker_id=SECRETS[0], location=SECRETS[5], age=30
    )
    topic = Topic.objects.create(title="Eye tracking")
    task = Task.objects.create(
        worker=worker,
        topic=topic,
        mode="pairwise",
        status="completed",
        assignment_id=SECRETS[1],
        hit_id=SECRETS[2],
        completion_code=SECRETS[3],
        summary=SECRETS[4],
        feedback=SECRETS[6],
        model_1="m1",
        model_2="m2",
    )
    Turn.objects.create(
        task=task,
        index=0,
        query="What is a saccade?",
        model_1="m1",
        model_2="m2",
        response_1="A fast eye movement.",
        response_2="A jump.",
        preferred=2,
    )
    Turn.objects.create(
        task=task, index=1, query="Why?", model_1="m1", model_2="m2", response_1="r1", response_2="r2", preferred=1
    )
    study = Study.objects.create(name="s", platform="mturk")
    Assignment.objects.create(
        study=study,
        platform="mturk",
        assignment_id=SECRETS[1],
        platform_worker_id=SECRETS[0],
        task=task,
        completion_code=SECRETS[3],
    )
    return worker


def _all_text(root: Path) -> str:
    parts = []
    for path in root.rglob("*"):
        if path.suffix in (".csv", ".jsonl", ".md", ".json"):
            parts.append(path.read_text())
        elif path.suffix == ".parquet":
            parts.append(pd.read_parquet(path).to_csv())
    return "\n".join(parts)


def test_export_has_no_platform_ids_and_no_free_text(site_data: Worker, tmp_path: Path) -> None:
    excluded = Task.objects.get(worker__pseudonym="worker_0ddfe023", release_task_id=200)
    services.task_exclude(task=excluded)
    counts = services.dataset_export(path=tmp_path)
    text = _all_text(tmp_path)
    for secret in SECRETS:
        assert secret not in text, secret
    for original in ("worker_0484ce71", "worker_5a944891", "site-hmac-1"):
        assert original not in text, original
    key_pseudonym = anonymise.keyed_pseudonym
    from django.conf import settings

    expected = key_pseudonym(settings.IFLLM_PSEUDONYM_KEY, "site-hmac-1")
    assert (
        tmp_path / "release" / "user_behavior" / key_pseudonym(settings.IFLLM_PSEUDONYM_KEY, "worker_0484ce71")
    ).is_dir()
    tasks = pd.read_parquet(tmp_path / "parquet" / "tasks.parquet")
    assert expected in set(tasks["worker"])
    # the excluded task (and its turns and samples) is left out; release task ids repeat across
    # workers (they are topic ids), so a task is (worker, task_id)
    gone = key_pseudonym(settings.IFLLM_PSEUDONYM_KEY, "worker_0ddfe023")
    assert not ((tasks["worker"] == gone) & (tasks["task_id"] == 200)).any()
    turns = pd.read_parquet(tmp_path / "parquet" / "turns.parquet")
    assert not ((turns["worker"] == gone) & (turns["task_id"] == 200)).any()
    assert Turn.objects.filter(task=excluded).count() == 3
    samples = pd.read_parquet(tmp_path / "parquet" / "samples.parquet", columns=["task_id", "worker"])
    assert gone not in set(samples["worker"]) and set(samples["worker"]) <= set(tasks["worker"])
    assert counts["tasks"] == Task.objects.filter(excluded=False).count()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["excluded_tasks_left_out"] == 1 and manifest["include_free_text"] is False


def test_hf_preferences_follow_the_labels(site_data: Worker, tmp_path: Path) -> None:
    services.dataset_export(path=tmp_path, formats=("hf",))
    records = [json.loads(line) for line in (tmp_path / "hf" / "train.jsonl").read_text().splitlines()]
    by_prompt = {r["prompt"]: r for r in records}
    assert by_prompt["What is a saccade?"]["chosen"] == "A jump."  # preferred = 2 (right)
    assert by_prompt["Why?"]["chosen"] == "r1"
    pairwise_turns = Turn.objects.filter(task__excluded=False).exclude(response_2="").exclude(preferred=None)
    assert len(records) == pairwise_turns.count()
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "path: train.parquet" in card and f"{len(records)} records" in card
    # the same pair gets the same record as in an alignment export: pair_id is the turn's query id
    turn = Turn.objects.get(query="Why?")
    assert by_prompt["Why?"]["pair_id"] == str(turn.public_id) and by_prompt["Why?"]["source"] == "explicit"


def test_pseudonyms_are_stable_across_exports_and_change_with_the_key(site_data: Worker, tmp_path: Path) -> None:
    services.dataset_export(path=tmp_path / "a", formats=("parquet",))
    services.dataset_export(path=tmp_path / "b", formats=("parquet",))
    a = pd.read_parquet(tmp_path / "a" / "parquet" / "workers.parquet")["worker"]
    b = pd.read_parquet(tmp_path / "b" / "parquet" / "workers.parquet")["worker"]
    assert list(a) == list(b) and all(w.startswith("w_") for w in a)
    with override_settings(IFLLM_PSEUDONYM_KEY="another key"):
        services.dataset_export(path=tmp_path / "c", formats=("parquet",))
    c = pd.read_parquet(tmp_path / "c" / "parquet" / "workers.parquet")["worker"]
    assert not set(a) & set(c)


def test_free_text_only_when_staff_opt_in(site_data: Worker, tmp_path: Path) -> None:
    out = StringIO()
    call_command("export_dataset", str(tmp_path), "--format", "parquet", "--include-free-text", stdout=out)
    tasks = pd.read_parquet(tmp_path / "parquet" / "tasks.parquet")
    assert SECRETS[4] in set(tasks["summary"])
    assert SECRETS[0] not in _all_text(tmp_path)  # platform ids never, even with free text
    assert "Exported" in out.getvalue()


def test_anonymise_frame_scrubs_raw_overrides() -> None:
    df = pd.DataFrame(
        {
            "worker": ["x"],
            "summary": ["mine"],
            "raw_overrides": [{"summary": "raw", "accuracy": "7"}],
            "duplicates": [[{"user_id": "x"}]],
        }
    )
    out = anonymise.anonymise_frame(df, {"x": "w_1"}, blank=["summary"])
    assert out.loc[0, "summary"] == "" and out.loc[0, "raw_overrides"] == {"accuracy": "7"}
    assert "duplicates" not in out.columns and out.loc[0, "worker"] == "w_1"
    with pytest.raises(KeyError):
        anonymise.anonymise_frame(df, {}, blank=[])
