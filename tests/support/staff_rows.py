"""One row of every model a staff page lists, hung on a given task, so change pages can be opened.

Rows are made through services where one exists (QC, study settings); the rest are the smallest
valid row of the model.
"""

from __future__ import annotations

import io
from decimal import Decimal

from django.contrib.auth.models import User

from collection.models import CalibrationAttempt, IdentityEvent, ImportRun, Invitation, LLMModel, Task
from collection.services.study import study_settings_get
from crowd.models import HIT, Assignment, AuditLog, Payment, ReviewCall, Study
from jobs.models import Job


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def one_of_each(*, task: Task, user: User, tag: str = "a") -> None:
    """A row of every admin model (except those ``task`` already brings) tied to ``task``."""
    from alignment.models import EvaluationRun, PreferenceDataset, PreferencePair, TrainingRun
    from analysis.models import AnalysisFigure, Leaderboard, RewardModelRun, RewardPrediction, StudyPlan

    study_settings_get()
    turn = task.turns.order_by("index").first()
    job = Job.objects.create(kind="jobs.count", params={"n": 1}, status=Job.Status.SUCCEEDED, created_by=user)
    judge = LLMModel.objects.create(name=f"judge-{tag}", provider="demo", model_id=f"judge-{tag}")
    ImportRun.objects.create(path=f"/data/release-{tag}", created_by=user, summary={"loaded": {"tasks": 1}})
    Invitation.objects.create(worker=task.worker, token=f"invitation-{tag}", created_by=user)
    IdentityEvent.objects.create(kind=IdentityEvent.Kind.values[0], worker=task.worker, task=task, detail={"tag": tag})
    CalibrationAttempt.objects.create(
        task=task, kind=CalibrationAttempt.Kind.CALIBRATION, score=80.0, threshold=70.0, passed=True,
        viewport_w=1366, viewport_h=768, n_clicks=45, points=[], raw={},
    )
    study = Study.objects.create(name=f"study-{tag}")
    hit = HIT.objects.create(
        study=study, environment="sandbox", hit_id=f"HIT{tag}", unique_request_token=f"tok-{tag}",
        max_assignments=3, reward=Decimal("2.00"),
    )
    assignment = Assignment.objects.create(
        study=study, hit=hit, platform=study.platform, assignment_id=f"ASSIGN{tag}", platform_worker_id=f"W{tag}",
        worker=task.worker, task=task,
    )
    Payment.objects.create(
        assignment=assignment, amount=Decimal("0.50"), reason="bonus", unique_request_token=f"pay-{tag}",
        created_by=user,
    )
    AuditLog.objects.create(user=user, platform=study.platform, operation="ListHITs", request={}, ok=True, study=study)
    from crowd.services import data_selection_create

    selection = data_selection_create(name=f"selection-{tag}")  # judged by the real rules, on the real QC rows
    ReviewCall.objects.create(task=task, reviewer=user, call="exclude", reason="other", note=f"review {tag}",
                              selection=selection)
    run = RewardModelRun.objects.create(name=f"run-{tag}", job=job, created_by=user, n_samples=1, selection=selection)
    RewardPrediction.objects.create(
        run=run, turn=turn, model_name="gaze", protocol="worker-cv", prob_1=0.6, predicted=1, p_winner=0.6
    )
    AnalysisFigure.objects.create(name=f"fig-{tag}", title=f"Figure {tag}", job=job, png=_png(), svg="<svg/>")
    Leaderboard.objects.create(
        name=f"board-{tag}", job=job, created_by=user, csv="model,score\n", png=_png(), svg="<svg/>",
        selection=selection,
    )
    StudyPlan.objects.create(name=f"plan-{tag}", job=job, created_by=user, svg="<svg/>", results=_plan_results())
    dataset = PreferenceDataset.objects.create(name=f"prefs-{tag}", source=PreferenceDataset.Source.EXPLICIT,
                                               selection=selection)
    PreferencePair.objects.create(
        dataset=dataset, turn=turn, prompt=turn.query, chosen=turn.response_1, rejected="worse",
        chosen_side=1, split=PreferencePair.Split.TRAIN,
    )
    sft = TrainingRun.objects.create(name=f"sft-{tag}", method=TrainingRun.Method.SFT, base_model="/models/tiny")
    dpo = TrainingRun.objects.create(
        name=f"dpo-{tag}", method=TrainingRun.Method.DPO, base_model="/models/tiny", dataset=dataset, sft_run=sft
    )
    EvaluationRun.objects.create(name=f"eval-{tag}", sft_run=sft, aligned_run=dpo, judge=judge)
    from collection.models import AffectedArtifact, Withdrawal

    withdrawal = Withdrawal.objects.create(channel=Withdrawal.Channel.STAFF_PAGE, acted_by=user, platform="lab",
                                           counts={"tasks": 1, "samples": 40})
    for obj in (run, dataset, selection, dpo):
        AffectedArtifact.objects.create(withdrawal=withdrawal, app_label=obj._meta.app_label,
                                        model_name=obj._meta.model_name, object_id=obj.pk, label=str(obj),
                                        reason="its data selection contains their task(s)")


def _plan_results() -> dict:
    """A study plan's results as the job stores them, small: two sizes, two models, no answer."""
    rows = [{"n": n, "model": m, "accuracy": 0.6, "acc_lo": 0.5, "acc_hi": 0.7, "diff": 0.01 if m == "RF + IF" else 0.0,
             "diff_lo": -0.05, "diff_hi": 0.07, "repeats": 2, "rows": 40, "workers_test": 8}
            for n in (8, 16) for m in ("RF + Text lengths", "RF + IF")]
    return {"model": "RF + IF", "baseline": "RF + Text lengths", "curve": rows, "fit": {}, "workers_needed": None,
            "workers_needed_detail": {"sentence": "RF + IF: not shown to rise above length-only."},
            "votes_needed": [], "design_effect": None}
