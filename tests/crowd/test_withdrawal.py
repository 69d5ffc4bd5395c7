"""A participant's withdrawal (issue 24): their data deleted everywhere, other workers' data
untouched, every artifact built from their data marked before the deletion, the feature cache
purged, an audit record without personal data, re-entry refused, rebuilds through the services.

On the real database (PostgreSQL in CI) with the real feature-cache code: the cache file is
written by ``analysis.services.feature_table`` itself, then searched for the pseudonym.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from alignment.models import PreferenceDataset, PreferencePair, TrainingRun
from analysis.models import Leaderboard, RewardModelRun, RewardPrediction
from collection.models import (
    AffectedArtifact,
    CalibrationAttempt,
    DataSelection,
    IdentityEvent,
    Invitation,
    Task,
    TrajectoryChunk,
    Turn,
    Withdrawal,
    Worker,
)
from collection.services.study import StudyError, worker_get_or_create, worker_pseudonym
from crowd.models import Assignment, Payment, Study, TaskQC
from crowd.services.withdrawal import (
    affected_artifacts,
    artifact_rebuild,
    participant_find,
    participant_withdraw,
)
from jobs.models import Job
from tests.support.site_tasks import site_task

pytestmark = pytest.mark.django_db

PID = "5f1e0c0ffee0000000000001"


def _their_rows(task_ids: list[int]) -> dict[str, int]:
    return {
        "tasks": Task.objects.filter(pk__in=task_ids).count(),
        "turns": Turn.objects.filter(task_id__in=task_ids).count(),
        "chunks": TrajectoryChunk.objects.filter(task_id__in=task_ids).count(),
        "attempts": CalibrationAttempt.objects.filter(task_id__in=task_ids).count(),
        "qc": TaskQC.objects.filter(task_id__in=task_ids).count(),
        "predictions": RewardPrediction.objects.filter(turn__task_id__in=task_ids).count(),
        "pairs": PreferencePair.objects.filter(turn__task_id__in=task_ids).count(),
        "events": IdentityEvent.objects.filter(task_id__in=task_ids).count(),
    }


@pytest.fixture
def world(settings, tmp_path) -> dict:
    """Two workers with tasks, turns, chunks, calibration, QC, and every kind of artifact: some
    built from both (must be marked), some from the other worker only (must not be)."""
    from analysis.services import feature_table

    settings.VAR_DIR = tmp_path
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    old = RewardModelRun.objects.create(name="before anyone took part")
    RewardModelRun.objects.filter(pk=old.pk).update(created_at=datetime(2020, 1, 1, tzinfo=UTC))

    mine = site_task(name="mine", n_turns=2, chunk_sizes=(40, 30), mode="pairwise")
    other = site_task(name="other", n_turns=2, chunk_sizes=(50,), mode="pairwise")
    me = mine.worker
    Worker.objects.filter(pk=me.pk).update(
        platform="prolific", platform_worker_id=PID, age=34, location="Lyon", education="Master", race="x",
        gender="woman", raw_overrides={"age": "34 years"}, extra={"note": "personal"},
    )
    me.refresh_from_db()
    Task.objects.filter(pk=mine.pk).update(assignment_id="SESSION-1", feedback="my feedback", summary="my summary")
    for task in (mine, other):
        CalibrationAttempt.objects.create(task=task, kind="calibration", score=80, threshold=70, passed=True,
                                          viewport_w=1366, viewport_h=768, points=[], raw={})
        TaskQC.objects.create(task=task, response_score=0.8)
        IdentityEvent.objects.create(kind="invitation_used", worker=task.worker, task=task)
    Invitation.objects.create(worker=me, token="tok-mine")
    IdentityEvent.objects.create(kind="assignment_refused", assignment_id="SESSION-1", platform="prolific")
    study = Study.objects.create(name="pilot", platform="prolific")
    assignment = Assignment.objects.create(study=study, platform="prolific", assignment_id="SESSION-1",
                                           platform_worker_id=PID, worker=me, task=mine,
                                           answer={"comment": "typed by them"})
    Payment.objects.create(assignment=assignment, amount=Decimal("1.00"), reason="bonus", unique_request_token="p1")

    both = DataSelection.objects.create(name="clean", task_ids=[mine.pk, other.pk], n_kept=2, n_candidates=2)
    only_other = DataSelection.objects.create(name="others", task_ids=[other.pk], n_kept=1, n_candidates=2,
                                              left_out=[])
    run = RewardModelRun.objects.create(name="run on clean", selection=both, params={"seeds": 1})
    run_other = RewardModelRun.objects.create(name="run on others", selection=only_other)
    for turn in Turn.objects.filter(task__in=[mine, other]):
        RewardPrediction.objects.create(run=run, turn=turn, model_name="RF + IF", protocol="grouped",
                                        prob_1=0.6, predicted=1, p_winner=0.6)
    board = Leaderboard.objects.create(name="board on clean", selection=both)
    board_other = Leaderboard.objects.create(name="board on others", selection=only_other)
    dataset = PreferenceDataset.objects.create(name="prefs", source="explicit", selection=both,
                                               params={"valid": 0.0, "test": 0.0, "seed": 0})
    for turn in Turn.objects.filter(task__in=[mine, other]):
        PreferencePair.objects.create(dataset=dataset, turn=turn, prompt=turn.query, chosen=turn.response_1,
                                      rejected=turn.response_2, chosen_side=1, split="train")
    sft = TrainingRun.objects.create(name="sft", method="sft", base_model="/models/tiny")
    dpo = TrainingRun.objects.create(name="dpo", method="dpo", base_model="/models/tiny", dataset=dataset,
                                     sft_run=sft)
    exports = tmp_path / "exports"
    export_both = Job.objects.create(kind="crowd.export_dataset", status=Job.Status.SUCCEEDED,
                                     params={"path": str(exports / "both"), "selection_pk": both.pk})
    export_other = Job.objects.create(kind="crowd.export_dataset", status=Job.Status.SUCCEEDED,
                                      params={"path": str(exports / "other"), "selection_pk": only_other.pk})
    for name in ("both", "other"):
        (exports / name).mkdir(parents=True)
        (exports / name / "manifest.json").write_text("{}")
    dataset_folder = tmp_path / "runs" / "datasets" / f"dataset-{dataset.pk}"
    dataset_folder.mkdir(parents=True)
    (dataset_folder / "train.jsonl").write_text("{}")

    feature_table(params={})  # the real cache: features-<v>.parquet with both workers' rows
    cache = tmp_path / "cache" / "features"
    assert list(cache.glob("features-*.parquet"))
    # a cache file of the other worker only (an earlier version): must survive
    others_only = cache / "features-0000others0000.parquet"
    pd.DataFrame({"worker": [other.worker.pseudonym], "task_id": [other.pk], "query_id": [1]}).to_parquet(others_only)
    return {
        "me": me, "mine": mine, "other": other, "both": both, "only_other": only_other, "run": run,
        "run_other": run_other, "old": old, "board": board, "board_other": board_other, "dataset": dataset,
        "sft": sft, "dpo": dpo, "export_both": export_both, "export_other": export_other, "cache": cache,
        "others_only": others_only, "exports": exports, "dataset_folder": dataset_folder,
        "assignment": assignment,
    }


def _withdraw(world: dict, django_capture_on_commit_callbacks, **kwargs) -> Withdrawal:
    with django_capture_on_commit_callbacks(execute=True):
        record = participant_withdraw(worker=world["me"], **kwargs)
    record.refresh_from_db()
    return record


def _keys(record: Withdrawal) -> set[tuple[str, str, int]]:
    return set(record.affected.values_list("app_label", "model_name", "object_id"))


def _session(worker: Worker) -> str:
    """A stored browser session bound to ``worker``, with an unverified entry's demographics."""
    from django.contrib.sessions.backends.db import SessionStore

    from collection.session import PROFILE_KEY, WORKER_KEY

    store = SessionStore()
    store[WORKER_KEY] = worker.pk
    store[PROFILE_KEY] = {"consent": True, "age": 34, "location": "Lyon"}
    store.create()
    return store.session_key


def test_withdrawal_deletes_their_data_and_only_theirs(world, django_capture_on_commit_callbacks) -> None:
    from django.contrib.sessions.models import Session

    mine, other, me = world["mine"], world["other"], world["me"]
    my_session, other_session = _session(me), _session(other.worker)
    before_other = _their_rows([other.pk])
    assert all(_their_rows([mine.pk]).values())  # the case is not empty
    pseudonym = me.pseudonym

    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")

    assert _their_rows([mine.pk]) == dict.fromkeys(before_other, 0)
    assert not Worker.objects.filter(pk=me.pk).exists()
    assert not Worker.objects.filter(pseudonym=pseudonym).exists()
    assert not Invitation.objects.filter(token="tok-mine").exists()
    assert not IdentityEvent.objects.filter(assignment_id="SESSION-1").exists()
    # the other worker keeps everything
    assert _their_rows([other.pk]) == before_other
    assert Worker.objects.filter(pk=other.worker_id).exists()
    # payment records kept with the platform id, without what they typed and without the task link
    assignment = Assignment.objects.get(pk=world["assignment"].pk)
    assert (assignment.platform_worker_id, assignment.answer, assignment.task_id, assignment.worker_id) == (
        PID, {}, None, None)
    assert Payment.objects.filter(assignment=assignment).count() == 1
    assert record.counts["tasks"] == 1 and record.counts["turns"] == 2
    assert record.counts["samples"] == 70 and record.counts["trajectory_chunks"] == 2
    assert record.counts["calibration_attempts"] == 1 and record.counts["task_qc"] == 1
    assert record.counts["reward_predictions"] == 2 and record.counts["preference_pairs"] == 2
    assert record.counts["identity_events"] == 2 and record.counts["invitations"] == 1
    assert not Session.objects.filter(session_key=my_session).exists() and record.counts["sessions"] == 1
    assert Session.objects.filter(session_key=other_session).exists()


def test_feature_cache_and_folders_built_from_them_are_deleted(world, django_capture_on_commit_callbacks) -> None:
    pseudonym = world["me"].pseudonym
    files = list(world["cache"].glob("*.parquet"))
    assert any(pseudonym in set(pd.read_parquet(p)["worker"].astype(str)) for p in files)

    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")

    for path in world["cache"].rglob("*"):
        if path.suffix == ".parquet":
            assert pseudonym not in set(pd.read_parquet(path)["worker"].astype(str)), path
        assert pseudonym.encode() not in path.read_bytes(), path
    assert world["others_only"].exists(), "a cache file without their rows is kept"
    assert record.counts["feature_cache_files"] >= 2  # features and quality of the version (+ report)
    assert not (world["exports"] / "both").exists()
    assert (world["exports"] / "other" / "manifest.json").exists()
    assert not world["dataset_folder"].exists()
    assert record.counts["export_folders"] == 2


def test_artifacts_built_from_their_data_are_marked_before_deletion(world, django_capture_on_commit_callbacks) -> None:
    w = world
    expected = {
        ("collection", "dataselection", w["both"].pk), ("analysis", "rewardmodelrun", w["run"].pk),
        ("analysis", "leaderboard", w["board"].pk), ("alignment", "preferencedataset", w["dataset"].pk),
        ("alignment", "trainingrun", w["dpo"].pk), ("alignment", "trainingrun", w["sft"].pk),
        ("jobs", "job", w["export_both"].pk),
    }
    not_expected = {
        ("collection", "dataselection", w["only_other"].pk), ("analysis", "rewardmodelrun", w["run_other"].pk),
        ("analysis", "rewardmodelrun", w["old"].pk), ("analysis", "leaderboard", w["board_other"].pk),
        ("jobs", "job", w["export_other"].pk),
    }
    found = {(a.app_label, a.model_name, a.object_id) for a in affected_artifacts(worker=w["me"])}
    assert expected <= found and not (not_expected & found)

    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")

    assert expected <= _keys(record) and not (not_expected & _keys(record))
    # the evidence survives the cascades: the dataset and the run still exist, and the marks say why
    mark = record.affected.get(app_label="alignment", model_name="preferencedataset")
    assert mark.reason == "pairs from their turns" and mark.label == "prefs"
    assert PreferenceDataset.objects.filter(pk=w["dataset"].pk).exists()
    # the frozen selection is untouched, and its tasks() no longer finds their task
    both = DataSelection.objects.get(pk=w["both"].pk)
    assert w["mine"].pk in both.task_ids and list(both.tasks()) == [w["other"]]


def test_audit_record_holds_no_personal_data(world, django_capture_on_commit_callbacks) -> None:
    me = world["me"]
    personal = [me.pseudonym, PID, "Lyon", "Master", "woman", "my feedback", "my summary", "typed by them",
                "34 years", worker_pseudonym(platform="prolific", platform_worker_id=PID)]
    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    fields = {f.name for f in Withdrawal._meta.get_fields()}
    assert fields == {"id", "created_at", "channel", "acted_by", "platform", "subject_key", "counts", "affected"}
    stored = str(list(Withdrawal.objects.filter(pk=record.pk).values())) + str(
        list(AffectedArtifact.objects.filter(withdrawal=record).values()))
    for value in personal:
        assert value not in stored, value
    assert len(record.subject_key) == 64 and record.subject_key != me.pseudonym
    assert record.channel == "command" and record.acted_by is None


def test_reentry_with_the_same_platform_id_is_refused(world, django_capture_on_commit_callbacks) -> None:
    _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    with pytest.raises(StudyError) as refused:
        worker_get_or_create(platform="prolific", platform_worker_id=PID)
    assert refused.value.code == "withdrawn"
    assert not Worker.objects.filter(platform_worker_id=PID).exists()
    # another id, or the same id on another platform, still enters
    assert worker_get_or_create(platform="prolific", platform_worker_id="5f1e0c0ffee0000000000002").pk
    assert worker_get_or_create(platform="mturk", platform_worker_id=PID).pk


def test_second_withdrawal_does_nothing(world, django_capture_on_commit_callbacks) -> None:
    _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    before = _their_rows([world["other"].pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert participant_withdraw(worker=world["me"], channel="command") is None
    assert Withdrawal.objects.count() == 1
    assert _their_rows([world["other"].pk]) == before


def test_staff_need_the_withdraw_permission(world, researcher, viewer, staff_no_role) -> None:
    for user in (viewer, staff_no_role):
        with pytest.raises(PermissionDenied):
            participant_withdraw(worker=world["me"], channel="staff_page", user=user)
    assert Worker.objects.filter(pk=world["me"].pk).exists() and Withdrawal.objects.count() == 0
    record = participant_withdraw(worker=world["me"], channel="staff_page", user=researcher)
    assert record.acted_by == researcher and not Worker.objects.filter(pk=world["me"].pk).exists()


def test_rebuilds_rerun_with_the_same_settings(world, researcher, django_capture_on_commit_callbacks) -> None:
    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    run_mark = record.affected.get(app_label="analysis", model_name="rewardmodelrun")
    made = artifact_rebuild(artifact=run_mark, user=researcher)
    run = RewardModelRun.objects.get(pk=world["run"].pk)
    assert made == f"jobs.job:{run.job_id}" and run.job.kind == "analysis.reward_models"
    assert run.job.params == {"run_pk": run.pk} and run.params == {"seeds": 1}
    run_mark.refresh_from_db()
    assert run_mark.rebuilt_at is not None and run_mark.rebuilt_by == researcher
    with pytest.raises(ValueError, match="already rebuilt"):
        artifact_rebuild(artifact=run_mark, user=researcher)

    # the DPO run needs its SFT run rebuilt first
    dpo_mark = record.affected.get(app_label="alignment", model_name="trainingrun", object_id=world["dpo"].pk)
    with pytest.raises(ValueError, match="SFT run"):
        artifact_rebuild(artifact=dpo_mark, user=researcher)

    # a dataset is built anew from the same selection: their turns are gone from it
    ds_mark = record.affected.get(app_label="alignment", model_name="preferencedataset")
    made = artifact_rebuild(artifact=ds_mark, user=researcher)
    new = PreferenceDataset.objects.get(pk=int(made.split(":")[1]))
    assert new.selection_id == world["both"].pk and new.pk != world["dataset"].pk
    turns = set(new.pairs.values_list("turn__task_id", flat=True))
    assert turns == {world["other"].pk}

    # a selection gets a new version (DataSelection rows are frozen)
    sel_mark = record.affected.get(app_label="collection", model_name="dataselection")
    made = artifact_rebuild(artifact=sel_mark, user=researcher)
    new_sel = DataSelection.objects.get(pk=int(made.split(":")[1]))
    assert new_sel.name == "clean" and new_sel.version == 2 and world["mine"].pk not in new_sel.task_ids


def test_rebuild_checks_the_permission_of_the_service(world, viewer, django_capture_on_commit_callbacks) -> None:
    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    mark = record.affected.get(app_label="analysis", model_name="leaderboard")
    with pytest.raises(PermissionDenied):
        artifact_rebuild(artifact=mark, user=viewer)
    mark.refresh_from_db()
    assert mark.rebuilt_at is None


def test_find_by_pseudonym_or_platform_id(world, django_capture_on_commit_callbacks) -> None:
    me = world["me"]
    assert participant_find(identifier=me.pseudonym) == me
    assert participant_find(identifier=PID, platform_id=True) == me
    with pytest.raises(ValueError, match="pseudonym"):
        participant_find(identifier=PID)
    _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    with pytest.raises(ValueError, match="already withdrew"):
        participant_find(identifier=PID, platform_id=True)


def test_command(world, django_capture_on_commit_callbacks, capsys) -> None:
    me = world["me"]
    with pytest.raises(CommandError, match="--yes"):
        call_command("withdraw_participant", me.pseudonym)
    assert Worker.objects.filter(pk=me.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("withdraw_participant", PID, "--platform", "--yes")
    out = capsys.readouterr().out
    assert "Withdrawn" in out and "rewardmodelrun" in out and PID not in out
    assert not Worker.objects.filter(pk=me.pk).exists()
    assert Withdrawal.objects.get().channel == "command"
    with pytest.raises(CommandError, match="already withdrew"):
        call_command("withdraw_participant", PID, "--platform", "--yes")
    with pytest.raises(CommandError, match="no participant"):
        call_command("withdraw_participant", "nobody", "--yes")


def test_cache_search_is_by_rows_not_by_name(tmp_path: Path) -> None:
    """The pure search: a file with their rows (and its version's siblings) is found; a file of
    other workers is not; the embedding cache (no worker column) is matched on query ids."""
    from analysis.features.cache import files_with_rows

    pd.DataFrame({"worker": ["a", "b"], "task_id": [1, 2]}).to_parquet(tmp_path / "features-v1.parquet")
    pd.DataFrame({"worker": ["b"], "task_id": [2]}).to_parquet(tmp_path / "quality-v1.parquet")
    (tmp_path / "report-v1.json").write_text("{}")
    pd.DataFrame({"worker": ["b"], "task_id": [2]}).to_parquet(tmp_path / "features-v2.parquet")
    emb = tmp_path / "emb" / "text-emb-x.parquet"
    emb.parent.mkdir()
    pd.DataFrame({"emb.q.0": [0.1, 0.2]}, index=pd.Index([10, 11], name="query_id")).to_parquet(emb)
    found = {p.name for p in files_with_rows(tmp_path, workers=["a"], query_ids=[11])}
    assert found == {"features-v1.parquet", "quality-v1.parquet", "report-v1.json", "text-emb-x.parquet"}
    assert files_with_rows(tmp_path, workers=["zzz"], query_ids=[99]) == []


def test_unknown_first_moment_marks_everything_made_without_a_selection(db) -> None:
    """A worker whose data carries no time at all (no chunks, no start, no creation time): every
    run made without a data selection may have used it, whenever it was made."""
    from alignment.models import EvaluationRun
    from collection.models import Topic

    worker = Worker.objects.create(pseudonym="timeless", platform="release")
    task = Task.objects.create(worker=worker, topic=Topic.objects.create(title="t"), mode="pointwise")
    Turn.objects.create(task=task, index=0, query="q", response_1="a")
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    run = RewardModelRun.objects.create(name="old run")
    sft = TrainingRun.objects.create(name="old sft", method="sft", base_model="/m")
    dpo = TrainingRun.objects.create(name="old dpo", method="dpo", base_model="/m", sft_run=sft)
    ev = EvaluationRun.objects.create(name="old eval", sft_run=sft, aligned_run=dpo)
    for model, obj in ((RewardModelRun, run), (TrainingRun, sft), (EvaluationRun, ev)):
        model.objects.filter(pk=obj.pk).update(created_at=long_ago)
    found = {(a.model_name, a.object_id) for a in affected_artifacts(worker=worker)}
    assert {("rewardmodelrun", run.pk), ("trainingrun", sft.pk), ("trainingrun", dpo.pk),
            ("evaluationrun", ev.pk)} <= found


def test_one_rebuild_closes_every_mark(world, researcher, django_capture_on_commit_callbacks) -> None:
    """Two participants withdrawn from the same selection: one rebuild of the run closes both marks,
    and a second rebuild from the other mark is refused (no second job)."""
    first = _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    with django_capture_on_commit_callbacks(execute=True):
        second = participant_withdraw(worker=world["other"].worker, channel="command")
    marks = list(AffectedArtifact.objects.filter(model_name="rewardmodelrun", object_id=world["run"].pk))
    assert {m.withdrawal_id for m in marks} == {first.pk, second.pk}
    artifact_rebuild(artifact=marks[0], user=researcher)
    with pytest.raises(ValueError, match="already rebuilt"):
        artifact_rebuild(artifact=marks[1], user=researcher)
    assert Job.objects.filter(kind="analysis.reward_models").count() == 1


def test_frozen_selections_no_longer_name_them(world, django_capture_on_commit_callbacks) -> None:
    mine, other = world["mine"], world["other"]
    pseudonym, other_pseudonym = world["me"].pseudonym, other.worker.pseudonym
    listed = DataSelection.objects.create(
        name="strict", task_ids=[], n_kept=0, n_candidates=2,
        left_out=[{"task": mine.pk, "worker": pseudonym, "task_id": mine.pk, "reasons": ["response_score"]},
                  {"task": other.pk, "worker": other_pseudonym, "task_id": other.pk, "reasons": ["gaps"]}],
        summary={"kept_despite": [{"task": mine.pk, "worker": pseudonym, "task_id": mine.pk, "overrode": []}]},
    )
    record = _withdraw(world, django_capture_on_commit_callbacks, channel="command")
    listed.refresh_from_db()
    assert [r["worker"] for r in listed.left_out] == ["withdrawn", other_pseudonym]
    assert [r["task"] for r in listed.left_out] == [mine.pk, other.pk]  # what the selection meant stays
    assert listed.summary["kept_despite"][0]["worker"] == "withdrawn"
    assert not any(pseudonym in json.dumps([s.left_out, s.summary]) for s in DataSelection.objects.all())
    assert record.counts["selections_scrubbed"] == 1
