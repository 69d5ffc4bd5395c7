"""Reward-model runs: start one (job or inline), compute Table 2 from the database, store it.

The pure code (``analysis.pipeline`` and the packages below it) takes the release's dataframes;
here the same frames are built from the database (:mod:`analysis.services.features`), so
imported release data and the site's own sessions go through identical computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from analysis.pipeline import DEFAULT_REWARD_PARAMS
from jobs.services import job_start

from ..models import RewardModelRun, RewardPrediction
from .base import Progress, no_log, no_progress
from .features import feature_table

#: Defaults of a reward-model run (kept in the pure pipeline, read from ``EvalConfig()``, so
#: notebooks and benchmarks use the same).
DEFAULT_PARAMS: dict[str, Any] = dict(DEFAULT_REWARD_PARAMS)


def workers_file(path: str) -> list[str]:
    """Worker pseudonyms, one per line (blank lines and ``#`` comments ignored)."""
    lines = [line.split("#", 1)[0].strip() for line in open(path, encoding="utf-8")]
    return [line for line in lines if line]


JOB_KIND = "analysis.reward_models"


def reward_model_run_start(
    *,
    run: RewardModelRun,
    user: AbstractBaseUser | None = None,
    inline: bool = False,
    progress: Progress = no_progress,
) -> RewardModelRun:
    """Start a reward-model run: the one way the admin's form, its re-run action and
    ``manage.py reward_models`` start runs.

    A new (unsaved) ``run`` is saved first, its ``params`` laid over :data:`DEFAULT_PARAMS` and
    ``user`` recorded as its creator; a saved one is computed again (the re-run action). The run
    is started as an ``analysis.reward_models`` job linked to it at once (its page follows the
    job), or with ``inline`` computed here, in this process (the command: no worker needed). A
    run this call saved is deleted again when its ``params`` are refused (``ValueError``, e.g.
    transfer workers that overlap), so a refused start leaves no empty run behind.
    """
    created = run.pk is None
    if created:
        run.params = {**DEFAULT_PARAMS, **(run.params or {})}
        run.created_by = user if user is not None else run.created_by
        run.save()
    if not inline:
        run.job = job_start(kind=JOB_KIND, params={"run_pk": run.pk}, user=user)
        run.save(update_fields=["job"])
        return run
    try:
        return reward_model_run_execute(run=run, progress=progress)
    except ValueError:
        if created:
            run.delete()
        raise


def data_report(*, selection, quality_filter: bool) -> dict[str, Any]:
    """What a run's page says about its data: the selection (id, name, version, rules, counts),
    or that there was none and what filtered the tasks instead."""
    if selection is not None:
        return {"selection": selection.record(), "quality_filter": "not applied: the data selection chose the tasks"}
    return {
        "selection": None,
        "quality_filter": (
            "the paper's filter on the feature table (response score >= 0.75, max-index score >= 0.3; "
            "analysis.features.quality)" if quality_filter else "off"
        ),
        "tasks": "every task not excluded by staff (no data selection)",
    }


def results_rows(results: dict) -> list[dict[str, Any]]:
    """One row per (setting, protocol, model): the mean and std over seeds of every metric."""
    from analysis.reward import summarize

    rows = []
    for setting, res in results.items():
        summary = summarize(res.scores).reset_index()
        for rec in summary.to_dict("records"):
            rows.append({"setting": setting, **{k: (None if pd.isna(v) else v) for k, v in rec.items()}})
    return rows


@transaction.atomic
def predictions_store(run: RewardModelRun, oof: pd.DataFrame, turns: pd.DataFrame) -> int:
    """Pairwise OOF predictions, averaged over seeds, one row per (turn, model, protocol)."""
    if oof.empty:
        return 0
    pair = oof[oof["setting"] == "Pairwise"]
    if "prob_1_cal" not in pair:
        pair = pair.assign(prob_1_cal=float("nan"))
    mean = pair.groupby(["query_id", "model", "protocol"], as_index=False).agg(
        prob_1=("prob_1", "mean"), prob_1_cal=("prob_1_cal", "mean"), y=("y", "first"), fold=("fold", "first")
    )
    turn_of = dict(zip(turns["query_id"], turns["turn_id"], strict=True))
    rows = []
    for r in mean.itertuples(index=False):
        predicted = 1 if r.prob_1 >= 0.5 else 2
        rows.append(
            RewardPrediction(
                run=run, turn_id=turn_of[r.query_id], model_name=r.model, protocol=r.protocol,
                prob_1=float(r.prob_1), predicted=predicted, p_winner=float(max(r.prob_1, 1 - r.prob_1)),
                label=(1 if r.y == 1 else 2) if pd.notna(r.y) else None, fold=int(r.fold),
                prob_1_cal=None if pd.isna(r.prob_1_cal) else float(r.prob_1_cal),
                p_winner_cal=None if pd.isna(r.prob_1_cal) else float(max(r.prob_1_cal, 1 - r.prob_1_cal)),
            )
        )
    RewardPrediction.objects.filter(run=run).delete()
    RewardPrediction.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def reward_model_run_execute(
    *,
    run: RewardModelRun,
    progress: Progress = no_progress,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] = no_log,
) -> RewardModelRun:
    """Compute Table 2 (all protocols) from the database and store it with the OOF predictions.

    ``progress`` is called after every cross-validation fold; a job's progress raises when the
    job was cancelled, which stops the run before anything is stored. Results and predictions
    are stored together in one transaction, so a run holds a whole table or none.

    With ``params["train_workers"]`` and ``params["test_workers"]`` (lists of pseudonyms) the run
    is a transfer evaluation instead: fitted on the first workers, scored on the second
    (:mod:`analysis.transfer`); its predictions are stored under protocol ``transfer``.

    Stored (stable keys, rendered by the run pages): ``run.timings`` = stage seconds
    (``load + match + features``, ``reward models``, ``of which <pipeline key>``, ``storing``),
    also copied to ``run.report["timings"]``; ``run.report["intervals"]`` = setting -> rows of
    :func:`analysis.reward.summary.predictions_summary`; ``run.report["transfer"]`` for transfer runs.
    """
    from analysis import pipeline
    from analysis.reward import text_specs

    params = {**DEFAULT_PARAMS, **run.params}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    log("loading turns, matching samples, extracting features")
    turns, table = feature_table(params=params, progress=progress, selection=run.selection)
    timings["load + match + features"] = time.perf_counter() - t
    log(f"features: {len(table.features)} turns in {timings['load + match + features']:.1f} s")
    features = table.features
    report: dict[str, Any] = {"matching": table.match_report, "turns_with_features": len(features),
                              "data": data_report(selection=run.selection, quality_filter=params["quality_filter"])}
    if run.selection is not None:
        log(f"data selection {run.selection}: the paper's quality filter is not applied on top of it")
    elif params["quality_filter"] and not features.empty:
        before = len(features)
        features = pipeline.apply_quality_filter(features, table.quality)
        report["quality_filter"] = {"kept": len(features), "of": before}
    config, specs, pointwise_specs = pipeline.reward_run_config(params)
    if params.get("train_workers") or params.get("test_workers"):
        return _transfer_run(run, params, features, turns, table, config, specs, report, timings, progress)
    embeddings = None
    if params["text"]:
        from analysis.text_embed import text_embedding_table

        progress(48, "text embeddings")
        t = time.perf_counter()
        # Only the tasks being evaluated (whole tasks, so "previous answer" stays right).
        keep = set(zip(features["worker"], features["task_id"], strict=True))
        used = turns[[k in keep for k in zip(turns["worker"], turns["task_id"], strict=True)]]
        embeddings = text_embedding_table(used, settings.VAR_DIR / "cache" / "embeddings")
        timings["text embeddings"] = time.perf_counter() - t
        specs += text_specs()
    progress(50, "reward models")
    t = time.perf_counter()

    def on_progress(fraction: float, message: str) -> None:
        log(f"{message} done ({time.perf_counter() - t:.0f} s)")
        progress(50 + 44 * fraction, f"reward models, {message}")

    log(f"reward models: {len(specs)} models, protocols {', '.join(config.protocols)}, "
        f"seeds {list(config.seeds)}, {config.n_splits} folds, {params['trees']} trees")
    rr = pipeline.run_reward_table(
        features, turns, config=config, specs=specs, pointwise_specs=pointwise_specs, text_embeddings=embeddings,
        should_stop=should_stop, on_progress=on_progress,
    )
    timings["reward models"] = time.perf_counter() - t
    timings.update({f"of which {k}": v for k, v in rr.timings.items()})
    run.results = results_rows(rr.results)
    run.table_text = rr.table
    if not rr.likert.empty:
        r2 = rr.likert.groupby("protocol")["r2"].agg(["mean", "std"])
        run.table_text += "\n\nPointwise Likert regression R^2:\n" + "\n".join(
            f"  {p}: {row['mean']:.4f} ± {row['std']:.4f}" for p, row in r2.iterrows()
        )
    report["intervals"] = {k: _records(v) for k, v in rr.intervals.items()}
    t = time.perf_counter()
    with transaction.atomic():
        # Inside the transaction: a job's progress() updates (and so locks) its RUNNING row, so a
        # cancel arriving now waits for the commit, and one that came first stops us here.
        progress(95, "storing the table and out-of-fold predictions")
        predictions_store(run, rr.oof, turns)
        timings["storing"] = time.perf_counter() - t
        _save_run(run, params, features, table, report, timings)
    log(f"stored {len(run.results)} result rows in {timings['reward models']:.0f} s of model fitting")
    return run


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def _save_run(run, params, features, table, report, timings) -> None:
    report["timings"] = {k: round(v, 3) for k, v in timings.items()}
    run.timings = timings
    run.report = report
    run.n_samples = int(len(features))
    run.data_version = table.data_version
    run.params = params
    run.save()


def _transfer_run(run, params, features, turns, table, config, specs, report, timings, progress):
    """Fit on ``train_workers``, score on ``test_workers`` (both from the database)."""
    from analysis.reward.summary import format_interval_table
    from analysis.transfer import transfer_settings

    train_w, test_w = set(params.get("train_workers") or []), set(params.get("test_workers") or [])
    if not train_w or not test_w:
        raise ValueError("params.train_workers and params.test_workers: both lists are needed")
    if train_w & test_w:
        raise ValueError(f"params.test_workers: {len(train_w & test_w)} workers are also training workers")
    missing = (train_w | test_w) - set(features["worker"])
    report["transfer_workers_without_features"] = sorted(missing)
    progress(50, "transfer: fitting on the training workers")
    t = time.perf_counter()
    result, summaries = transfer_settings(
        features[features["worker"].isin(train_w)], turns, features[features["worker"].isin(test_w)], turns,
        config=config, specs=specs,
    )
    timings["transfer"] = time.perf_counter() - t
    report["transfer"] = result
    report["intervals"] = {k: _records(v) for k, v in summaries.items()}
    run.table_text = "Transfer (fitted on the training workers, scored on the test workers)\n\n"
    run.table_text += format_interval_table(summaries)
    run.results = [{"setting": k, **r} for k, v in report["intervals"].items() for r in v]
    _save_run(run, params, features, table, report, timings)
    return run
