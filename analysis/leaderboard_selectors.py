"""Reads for the leaderboard: the turns (votes) and a reward-model run's predictions as frames."""

from __future__ import annotations

import pandas as pd

from collection.models import Task
from collection.selectors import turns_frame

from .models import RewardModelRun, RewardPrediction


def vote_turns(*, selection=None) -> pd.DataFrame:
    """Turns of the data ``selection``'s tasks (default: every task not excluded by staff), in the
    release ``queries`` format."""
    tasks = selection.tasks() if selection is not None else Task.objects.counted().filter(excluded=False)
    return turns_frame(tasks=tasks)


def reward_run_latest() -> RewardModelRun | None:
    """The newest reward-model run that stored out-of-fold predictions."""
    return RewardModelRun.objects.filter(predictions__isnull=False).distinct().order_by("-created_at", "-pk").first()


def reward_predictions_frame(*, run: RewardModelRun, model_name: str, protocol: str) -> pd.DataFrame:
    """``query_id``, ``prob_1`` of one reward model and protocol of ``run`` (query id as in
    :func:`collection.selectors.turns_frame`)."""
    rows = RewardPrediction.objects.filter(run=run, model_name=model_name, protocol=protocol).values_list(
        "turn_id", "turn__release_query_id", "prob_1"
    )
    df = pd.DataFrame(list(rows), columns=["turn_id", "release_query_id", "prob_1"])
    df["query_id"] = df["release_query_id"].fillna(df["turn_id"]).astype(int)
    return df[["query_id", "prob_1"]]


def reward_prediction_choices(*, run: RewardModelRun) -> list[tuple[str, str]]:
    """(model_name, protocol) pairs a run holds predictions for."""
    return list(run.predictions.values_list("model_name", "protocol").distinct().order_by("model_name", "protocol"))
