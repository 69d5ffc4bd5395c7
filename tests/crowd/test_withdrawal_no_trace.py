"""A withdrawal leaves no trace (issue 24, "deletes everywhere"): after it, every char, text, JSON
and binary value of every model of our apps (and the admin's change log) is searched for the
person's pseudonym, the pseudonym their exports carry, and their Prolific id. They may remain only
where docs/withdrawal.md says data is kept: the payment record (``crowd.Assignment``,
``crowd.Payment``) and the platform call log (``crowd.AuditLog``). The feature cache and
``VAR_DIR/exports`` are searched as files (Parquet read as tables, other files as bytes).

Not vacuous: the same scan *before* the withdrawal must find them in every place the service
scrubs or deletes, so a withdrawal that skipped one of them fails here. PostgreSQL, the real
feature cache (``analysis.services.feature_table``) and the real export (``dataset_export``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import models

from alignment.models import PreferenceDataset, PreferencePair, TrainingRun
from analysis.models import AnalysisFigure, Leaderboard, RewardModelRun, RewardPrediction, StudyPlan
from collection.models import (
    CalibrationAttempt,
    DataSelection,
    IdentityEvent,
    ImportRun,
    Invitation,
    Task,
    Turn,
    Worker,
)
from collection.services.study import worker_pseudonym
from crowd.anonymise import keyed_pseudonym
from crowd.models import Assignment, AuditLog, Payment, ReviewCall, Study, TaskQC
from crowd.services.export import dataset_export
from crowd.services.withdrawal import participant_withdraw
from jobs.models import Job
from tests.support.site_tasks import site_task

pytestmark = pytest.mark.django_db

PID = "65f0c0ffee00d1st1nct1v3a"
#: Where docs/withdrawal.md says the platform id stays (the payment record and the call log).
KEPT = {"crowd.assignment", "crowd.payment", "crowd.auditlog"}
OUR_APPS = ("access", "jobs", "collection", "crowd", "analysis", "alignment")


def _serialised(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def db_scan(needles: list[str]) -> set[tuple[str, str]]:
    """(model, field) of every stored value holding one of ``needles``: all rows of every model of
    our apps and the admin log, every char/text/JSON/binary field, serialised."""
    models_ = [m for label in OUR_APPS for m in apps.get_app_config(label).get_models()] + [LogEntry]
    hits: set[tuple[str, str]] = set()
    for model in models_:
        if not model._meta.managed or model._meta.proxy:  # no table of its own (access's permission holder)
            continue
        fields = [f for f in model._meta.concrete_fields
                  if isinstance(f, models.CharField | models.TextField | models.JSONField | models.BinaryField)]
        for row in model._base_manager.values_list(*[f.attname for f in fields]):
            for field, value in zip(fields, row, strict=True):
                text = _serialised(value)
                if any(n in text for n in needles):
                    hits.add((model._meta.label_lower, field.name))
    return hits


def file_scan(roots: list[Path], needles: list[str]) -> set[Path]:
    """Files under ``roots`` holding one of ``needles``: Parquet tables read (every column as text,
    since compression hides the bytes), any other file as bytes."""
    hits = set()
    for root in roots:
        for path in root.rglob("*") if root.is_dir() else []:
            if not path.is_file():
                continue
            if path.suffix == ".parquet":
                frame = pd.read_parquet(path)
                text = frame.astype(str).to_csv() + " ".join(map(str, frame.columns))
            else:
                text = path.read_bytes().decode("latin-1")
            if any(n in text for n in needles):
                hits.add(path)
    return hits


@pytest.fixture
def rich(settings, tmp_path) -> dict[str, Any]:
    """One Prolific participant with a distinctive pseudonym and id, in everything the site makes:
    tasks, turns, samples, calibration, QC, review calls by two reviewers, a selection that keeps
    their task and one that leaves it out, a transfer reward run (params, report, results,
    predictions), a leaderboard, a study plan, a figure, a preference dataset with a training
    run, a real export with its job, an import run, identity events, the admin's change log,
    a submission, a bonus, and the Prolific call log; and one other worker beside them."""
    from analysis.services import feature_table

    settings.VAR_DIR = tmp_path
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    pseudonym = worker_pseudonym(platform="prolific", platform_worker_id=PID)
    exported = keyed_pseudonym(settings.IFLLM_PSEUDONYM_KEY, pseudonym)

    mine = site_task(name="mine", n_turns=2, chunk_sizes=(40, 30), mode="pairwise")
    other = site_task(name="other", n_turns=2, chunk_sizes=(50,), mode="pairwise")
    Worker.objects.filter(pk=mine.worker_id).update(
        pseudonym=pseudonym, platform="prolific", platform_worker_id=PID, age=29, location="Ghent",
        extra={"entry": {"PROLIFIC_PID": PID}},
    )
    me = Worker.objects.get(pk=mine.worker_id)
    other_name = other.worker.pseudonym
    Task.objects.filter(pk=mine.pk).update(assignment_id="SESSION-NT-1", feedback="fine",
                                           extra={"entry": {"PROLIFIC_PID": PID, "SESSION_ID": "SESSION-NT-1"}})
    for task in (mine, other):
        CalibrationAttempt.objects.create(task=task, kind="calibration", score=81, threshold=70, passed=True,
                                          viewport_w=1366, viewport_h=768, points=[], raw={})
        TaskQC.objects.create(task=task, response_score=0.8, note=f"checked {Worker.objects.get(pk=task.worker_id)}")
    IdentityEvent.objects.create(kind="invitation_used", worker=me, task=mine, detail=f"entered as {PID}")
    Invitation.objects.create(worker=me, token="tok-no-trace", note=f"for {PID}")

    reviewers = [User.objects.create_user(f"reviewer{i}", is_staff=True) for i in (1, 2)]
    kept_despite = [{"task": mine.pk, "worker": pseudonym, "overrode": ["calibration"]}]
    keep = DataSelection.objects.create(name="keeps them", task_ids=[mine.pk, other.pk], n_kept=2, n_candidates=2,
                                        summary={"kept_despite": kept_despite})
    leave = DataSelection.objects.create(
        name="leaves them out", task_ids=[other.pk], n_kept=1, n_candidates=2,
        left_out=[{"task": mine.pk, "worker": pseudonym, "reasons": ["calibration"]}],
    )
    for reviewer, call in zip(reviewers, ("keep", "exclude"), strict=True):
        ReviewCall.objects.create(task=mine, reviewer=reviewer, call=call, reason="other" if call == "exclude" else "",
                                  note=f"{pseudonym} looked away", selection=keep)

    run = RewardModelRun.objects.create(
        name="transfer", selection=keep,
        params={"train_workers": [pseudonym, other_name], "test_workers": ["w-third"]},
        report={"transfer_workers_without_features": [pseudonym],
                "per_worker": {pseudonym: {"n": 2, "accuracy": 0.5}, other_name: {"n": 2, "accuracy": 1.0}}},
        results=[{"worker": pseudonym, "accuracy": 0.5}, {"worker": other_name, "accuracy": 1.0}],
        table_text=f"| worker | acc |\n| {pseudonym} | 0.5 |\n| {other_name} | 1.0 |",
    )
    for turn in Turn.objects.filter(task__in=[mine, other]):
        RewardPrediction.objects.create(run=run, turn=turn, model_name="RF + IF", protocol="grouped",
                                        prob_1=0.6, predicted=1, p_winner=0.6)
    board = Leaderboard.objects.create(name="board", selection=keep,
                                       results={"voters": {pseudonym: 4, other_name: 4}},
                                       csv=f"worker,votes\n{pseudonym},4\n{other_name},4\n")
    plan = StudyPlan.objects.create(name="plan", results=[{"workers": [pseudonym, other_name], "accuracy": 0.6}],
                                    svg=f"<svg><text>{pseudonym}</text></svg>")
    figure = AnalysisFigure.objects.create(name="per worker", title=f"Gaze of {pseudonym}",
                                           svg=f"<svg><title>{pseudonym}</title></svg>")
    dataset = PreferenceDataset.objects.create(name="prefs", source="explicit", selection=keep,
                                               params={"valid": 0.0, "test": 0.0, "seed": 0, "workers": [pseudonym]},
                                               counts={"by_worker": {pseudonym: 2, other_name: 2}})
    for turn in Turn.objects.filter(task__in=[mine, other]):
        PreferencePair.objects.create(dataset=dataset, turn=turn, prompt=turn.query, chosen=turn.response_1,
                                      rejected=turn.response_2, chosen_side=1, split="train")
    training = TrainingRun.objects.create(name="dpo", method="dpo", base_model="/models/tiny", dataset=dataset,
                                          metrics={"held_out_workers": [pseudonym]})

    export_dir = tmp_path / "exports" / "ifllm-selection-keep"
    result = dataset_export(path=str(export_dir), selection=keep, formats=("release", "parquet", "hf"))
    export_job = Job.objects.create(kind="crowd.export_dataset", status=Job.Status.SUCCEEDED,
                                    params={"path": str(export_dir), "selection_pk": keep.pk},
                                    result={**json.loads(json.dumps(result, default=str)), "workers": [exported]})
    by_hand = tmp_path / "exports" / "ifllm-by-hand"  # everything, written without a job row (no record)
    dataset_export(path=str(by_hand), selection=None, formats=("release", "parquet"))
    others_only = tmp_path / "exports" / "others-only"  # names only the other worker: must stay
    others_only.mkdir(parents=True)
    (others_only / "workers.csv").write_text(f"worker\n{keyed_pseudonym(settings.IFLLM_PSEUDONYM_KEY, other_name)}\n")
    qc_job = Job.objects.create(kind="crowd.qc", status=Job.Status.SUCCEEDED, params={"worker": pseudonym},
                                result={"flagged": [pseudonym]}, message=f"QC of {pseudonym}", log_tail=f"{PID}\n")
    ImportRun.objects.create(path="/data/release", problems=[f"worker {pseudonym}: duplicate task"],
                             summary={"workers": [pseudonym]})

    study = Study.objects.create(name="prolific pilot", platform="prolific")
    assignment = Assignment.objects.create(study=study, platform="prolific", assignment_id="SESSION-NT-1",
                                           platform_worker_id=PID, worker=me, task=mine,
                                           answer={"comment": "typed"})
    Payment.objects.create(assignment=assignment, amount=Decimal("0.50"), reason="bonus", unique_request_token="nt1")
    AuditLog.objects.create(platform="prolific", operation="POST /submissions/bonus-payments/",
                            request={"csv_bonuses": f"{PID},0.50"}, response={"id": "bonus-1"}, ok=True)
    admin_user = reviewers[0]
    for obj, flag in ((me, CHANGE), (mine, ADDITION)):
        LogEntry.objects.log_action(user_id=admin_user.pk, content_type_id=ContentType.objects.get_for_model(obj).pk,
                                    object_id=obj.pk, object_repr=str(obj), action_flag=flag,
                                    change_message=[{"changed": {"fields": ["extra"]}}])

    feature_table(params={})  # the real feature cache, with both workers' rows
    return {"me": me, "mine": mine, "other": other, "pseudonym": pseudonym, "exported": exported,
            "needles": [pseudonym, exported, PID], "keep": keep, "leave": leave, "run": run, "board": board,
            "plan": plan, "figure": figure, "dataset": dataset, "training": training, "export_job": export_job,
            "qc_job": qc_job, "export_dir": export_dir, "assignment": assignment, "by_hand": by_hand,
            "others_only": others_only,
            "files": [tmp_path / "cache", tmp_path / "exports"], "other_name": other_name}


#: Where the scan must find them before the withdrawal: each is deleted or scrubbed by it.
EXPECTED_BEFORE = {
    ("collection.worker", "pseudonym"), ("collection.worker", "platform_worker_id"), ("collection.worker", "extra"),
    ("collection.task", "extra"), ("collection.identityevent", "detail"), ("collection.invitation", "note"),
    ("collection.dataselection", "left_out"), ("collection.dataselection", "summary"),
    ("collection.importrun", "problems"), ("collection.importrun", "summary"),
    ("crowd.taskqc", "note"), ("crowd.reviewcall", "note"),
    ("analysis.rewardmodelrun", "params"), ("analysis.rewardmodelrun", "report"),
    ("analysis.rewardmodelrun", "results"), ("analysis.rewardmodelrun", "table_text"),
    ("analysis.leaderboard", "results"), ("analysis.leaderboard", "csv"),
    ("analysis.studyplan", "results"), ("analysis.studyplan", "svg"),
    ("analysis.analysisfigure", "title"), ("analysis.analysisfigure", "svg"),
    ("alignment.preferencedataset", "params"), ("alignment.preferencedataset", "counts"),
    ("alignment.trainingrun", "metrics"),
    ("jobs.job", "params"), ("jobs.job", "result"), ("jobs.job", "message"), ("jobs.job", "log_tail"),
    ("admin.logentry", "object_repr"),
    ("crowd.assignment", "platform_worker_id"), ("crowd.auditlog", "request"),
}


def test_withdrawal_leaves_no_trace(rich, django_capture_on_commit_callbacks) -> None:
    needles = rich["needles"]
    before = db_scan(needles)
    assert EXPECTED_BEFORE <= before, sorted(EXPECTED_BEFORE - before)
    files_before = file_scan(rich["files"], needles)
    assert any("features" in p.parts for p in files_before)  # the cache held their rows
    assert any(rich["export_dir"] in p.parents for p in files_before)  # the export held them
    assert any(rich["by_hand"] in p.parents for p in files_before)  # and the one no job records

    with django_capture_on_commit_callbacks(execute=True):
        record = participant_withdraw(worker=rich["me"], channel="command")

    after = db_scan(needles)
    assert {model for model, _field in after} <= KEPT, sorted(h for h in after if h[0] not in KEPT)
    assert file_scan(rich["files"], needles) == set()
    assert not rich["by_hand"].exists() and (rich["others_only"] / "workers.csv").exists()
    assert not any(n in str(p) for p in rich["files"][1].rglob("*") for n in needles)  # nor in a name
    record.refresh_from_db()
    assert record.counts["rows_scrubbed"] >= 10
    assert "analysis.rewardmodelrun: 1" in record.counts["scrubbed_in"]
    # the record itself names no one
    assert not any(n in json.dumps(record.counts) for n in needles)


def test_scrubbed_results_keep_the_other_workers(rich, django_capture_on_commit_callbacks) -> None:
    """Scrubbing takes out the person and nothing else: the other worker's rows stay, worker lists
    lose the withdrawn name (a rebuild with the same settings runs on the workers left), keyed
    tables rename their row, and the payment record stays with the platform id."""
    other = rich["other_name"]
    with django_capture_on_commit_callbacks(execute=True):
        participant_withdraw(worker=rich["me"], channel="command")

    run = RewardModelRun.objects.get(pk=rich["run"].pk)
    assert run.params["train_workers"] == [other] and run.params["test_workers"] == ["w-third"]
    assert run.report["transfer_workers_without_features"] == []
    assert run.report["per_worker"] == {"withdrawn": {"n": 2, "accuracy": 0.5}, other: {"n": 2, "accuracy": 1.0}}
    assert run.results == [{"worker": "withdrawn", "accuracy": 0.5}, {"worker": other, "accuracy": 1.0}]
    assert other in run.table_text and "| withdrawn | 0.5 |" in run.table_text
    board = Leaderboard.objects.get(pk=rich["board"].pk)
    assert board.results == {"voters": {"withdrawn": 4, other: 4}}
    assert StudyPlan.objects.get(pk=rich["plan"].pk).results[0]["workers"] == [other]
    leave = DataSelection.objects.get(pk=rich["leave"].pk)
    assert leave.left_out[0]["worker"] == "withdrawn" and leave.task_ids == [rich["other"].pk]
    assert Job.objects.get(pk=rich["qc_job"].pk).params == {"worker": "withdrawn"}
    assignment = Assignment.objects.get(pk=rich["assignment"].pk)
    assert assignment.platform_worker_id == PID and assignment.worker_id is None
    assert Payment.objects.filter(assignment=assignment).exists()
    assert AuditLog.objects.filter(request__csv_bonuses=f"{PID},0.50").exists()
    assert not ReviewCall.objects.filter(task_id=rich["mine"].pk).exists()
    assert Worker.objects.filter(pseudonym=other).exists()


def test_no_trace_scan_sees_a_leftover(rich) -> None:
    """The scan itself is honest: an identifier left in a field the withdrawal does not know
    about is found (here: written after the data of record is deleted by hand)."""
    Job.objects.create(kind="analysis.custom", params={"note": f"by hand for {rich['pseudonym']}"})
    rich["me"].delete()
    found = db_scan(rich["needles"])
    assert ("jobs.job", "params") in found


def test_a_short_lab_id_is_not_rewritten_in_other_peoples_text(django_capture_on_commit_callbacks) -> None:
    """A lab participant id like ``P07`` is a common token: the scrub leaves it in another worker's
    query (the pseudonyms are still scrubbed); a long id is scrubbed (see the test above)."""
    from crowd.services.withdrawal import identifiers

    mine = site_task(name="lab-short")
    other = site_task(name="lab-other")
    Worker.objects.filter(pk=mine.worker_id).update(platform="lab", platform_worker_id="P07")
    Turn.objects.filter(task=other).update(query="What does protocol P07 say?")
    me = Worker.objects.get(pk=mine.worker_id)
    assert "P07" not in identifiers(me) and me.pseudonym in identifiers(me)
    with django_capture_on_commit_callbacks(execute=True):
        participant_withdraw(worker=me, channel="command")
    assert Turn.objects.filter(task=other, query="What does protocol P07 say?").exists()
