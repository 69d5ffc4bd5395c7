"""Text reward-model runs: fine-tune a local checkpoint on the labelled pairs under CV (GPU job)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from django.db import transaction

from analysis.reward.models import TEXT_FT, TEXT_FT_IF

from ..models import RewardModelRun
from .base import Progress, no_log, no_progress
from .features import feature_table
from .reward_runs import data_report, predictions_store, results_rows

TEXT_DEFAULTS: dict[str, Any] = {
    "model_path": "",
    "epochs": 2,
    "lr": 1e-5,
    "batch_size": 1,
    "max_length": 512,
    "n_splits": 5,
    "seeds": [0],
    "protocols": ["grouped", "ungrouped"],
    "with_features": False,
    "k": 50,
    "quality_filter": True,
}


def text_reward_run_execute(
    *, run: RewardModelRun, progress: Progress = no_progress, log: Callable[[str], None] = no_log
) -> RewardModelRun:
    """Fine-tune a local checkpoint on the labelled pairs (optionally + IF) under CV; store OOF."""
    from analysis import pipeline
    from analysis.features import feature_columns
    from analysis.reward import format_table, pairwise_labels
    from analysis.reward.evaluate import EvalResult
    from analysis.reward.text_finetune import TextPairClassifier, cross_validate_text

    params = {**TEXT_DEFAULTS, **run.params}
    if not params["model_path"]:
        raise ValueError("params.model_path: the local path of a checkpoint is required")
    turns, table = feature_table(params={"worker_normalise": False}, progress=lambda *_: None,
                                 selection=run.selection)
    features = table.features
    if run.selection is None and params["quality_filter"] and not features.empty:
        features = pipeline.apply_quality_filter(features, table.quality)
    run.report = {**(run.report or {}), "data": data_report(selection=run.selection,
                                                            quality_filter=params["quality_filter"])}
    labels = pairwise_labels(turns)
    rows = features[(features["mode"] == "pairwise") & features["query_id"].isin(labels.index)]
    rows = rows.set_index("query_id")
    pairs = turns.set_index("query_id").loc[rows.index, ["query", "response_1", "response_2"]]
    name = TEXT_FT_IF if params["with_features"] else TEXT_FT

    def make_model(seed: int) -> TextPairClassifier:
        return TextPairClassifier(
            params["model_path"], epochs=int(params["epochs"]), lr=float(params["lr"]),
            batch_size=int(params["batch_size"]), max_length=int(params["max_length"]), seed=seed,
        )

    scores, oof = cross_validate_text(
        pairs, labels.loc[rows.index].to_numpy(), rows["worker"].to_numpy(), rows.index.to_numpy(),
        make_model=make_model, model_name=name, protocols=params["protocols"],
        seeds=[int(s) for s in params["seeds"]], n_splits=int(params["n_splits"]),
        features=rows[feature_columns(rows)] if params["with_features"] else None, k=int(params["k"]),
        on_fold=lambda done, total: progress(10 + 85 * done / total, f"fold {done} of {total}"),
    )
    result = EvalResult(scores=scores, oof=oof, importances=pd.DataFrame())
    run.params = params
    run.results = results_rows({"Pairwise": result})
    run.table_text = format_table({"Pairwise": result})
    run.n_samples = len(rows)
    run.data_version = table.data_version
    with transaction.atomic():
        progress(95, "storing the table and out-of-fold predictions")
        run.save()
        predictions_store(run, oof.assign(setting="Pairwise"), turns)
    return run
