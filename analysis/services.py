"""Database side of the analysis: feed the pure pipeline from the data of record, store results.

The pure code (``analysis.pipeline`` and the packages below it) takes the release's dataframes;
here the same frames are built from the database (``collection.selectors``), so imported release
data and the site's own sessions go through identical computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction

from analysis.pipeline import DEFAULT_REWARD_PARAMS
from collection.models import Task, TrajectoryChunk
from collection.selectors import task_samples, turns_frame

from .models import AnalysisFigure, RewardModelRun, RewardPrediction

Progress = Callable[[float, str], None]

#: Defaults of a reward-model run (kept in the pure pipeline so benchmarks use the same).
DEFAULT_PARAMS: dict[str, Any] = dict(DEFAULT_REWARD_PARAMS)


def _noop(pct: float, message: str = "") -> None:
    return None


def database_inputs(*, tasks=None) -> tuple[pd.DataFrame, list[tuple[tuple[str, int], str, Any]]]:
    """Turns (release ``queries`` columns) and the task keys with their sample loaders."""
    tasks = Task.objects.filter(excluded=False) if tasks is None else tasks
    turns = turns_frame(tasks=tasks)
    with_samples = tasks.filter(chunks__isnull=False).distinct().select_related("worker")
    keys = []
    for task in with_samples.order_by("pk"):
        keys.append(((task.worker.pseudonym, task.public_id), task.effective_mode, task.pk))
    return turns, keys


def _samples_iter(
    keys: list, progress: Progress, lo: float, hi: float
) -> Iterator[tuple[tuple[str, int], str, pd.DataFrame]]:
    """Decode each task's samples only when the pipeline reaches it (bounded memory)."""
    for i, (key, mode, pk) in enumerate(keys):
        if i % 20 == 0:
            progress(lo + (hi - lo) * i / max(len(keys), 1), f"task {i} of {len(keys)}")
        yield key, mode, task_samples(task=pk)


def _task_fingerprints(keys: list) -> list[tuple[tuple[str, int], str]]:
    """Per task, a hash of its chunks' digests: changes whenever any sample changes."""
    import hashlib

    by_task: dict[int, hashlib._Hash] = {}
    rows = TrajectoryChunk.objects.filter(task_id__in=[pk for _, _, pk in keys]).order_by("task_id", "seq")
    for task_id, seq, n, digest, first, last in rows.values_list(
        "task_id", "seq", "n_samples", "digest", "first_ms", "last_ms"
    ):
        by_task.setdefault(task_id, hashlib.sha256()).update(f"{seq}:{n}:{digest}:{first}:{last};".encode())
    return [(key, by_task[pk].hexdigest()[:16] if pk in by_task else "") for key, _, pk in keys]


def feature_table(*, params: dict[str, Any], progress: Progress = _noop, selection=None):
    """Match every task and extract the paper's features (plus the worker-relative copies).

    The matched feature table is cached as Parquet under ``var/cache/features`` keyed by the data
    version (turn texts and times, every chunk's digest, the matching and feature configs), so a
    second run on unchanged data skips decoding and matching.

    With a data ``selection`` the features of every task are computed (and cached) once and
    then cut to the selection's tasks, so a new selection reuses the cache; the worker-relative
    copies are computed after the cut, over the selected tasks only.
    """
    import json

    from analysis.features import FeatureTable, build_feature_table
    from analysis.features.cache import data_version, load_cached, save_cached
    from analysis.features.normalise import add_worker_normalised

    turns, keys = database_inputs(tasks=Task.objects.all() if selection is not None else None)
    version = data_version(turns, _task_fingerprints(keys))
    cache_dir = settings.VAR_DIR / "cache" / "features"
    features = load_cached(cache_dir, version) if params.get("use_cache", True) else None
    if features is not None:
        progress(45, "features from cache")
        quality = load_cached(cache_dir, version, "quality")
        report = json.loads((cache_dir / f"report-{version}.json").read_text())
        table = FeatureTable(features=features, quality=quality, match_report=report)
    else:
        table = build_feature_table(turns, _samples_iter(keys, progress, 5, 45))
        save_cached(table.features, cache_dir, version)
        save_cached(table.quality, cache_dir, version, "quality")
        (cache_dir / f"report-{version}.json").write_text(json.dumps(table.match_report, default=str))
    table.data_version = version
    if selection is not None:
        turns, table = _cut_to_selection(turns, table, selection)
    if params.get("worker_normalise") and not table.features.empty:
        table.features = add_worker_normalised(table.features)
    return turns, table


def _cut_to_selection(turns: pd.DataFrame, table, selection):
    """Turns, features and quality rows of the selection's tasks only."""
    ids = set(selection.task_ids)
    turns = turns[turns["task_pk"].isin(ids)]
    keys = set(zip(turns["worker"], turns["task_id"], strict=True))

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        if frame is None or frame.empty:
            return frame
        mask = [k in keys for k in zip(frame["worker"], frame["task_id"], strict=True)]
        return frame.loc[mask]

    table.features, table.quality = keep(table.features), keep(table.quality)
    return turns, table


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


def _results_rows(results: dict) -> list[dict[str, Any]]:
    from analysis.reward import summarize

    rows = []
    for setting, res in results.items():
        summary = summarize(res.scores).reset_index()
        for rec in summary.to_dict("records"):
            rows.append({"setting": setting, **{k: (None if pd.isna(v) else v) for k, v in rec.items()}})
    return rows


@transaction.atomic
def _store_predictions(run: RewardModelRun, oof: pd.DataFrame, turns: pd.DataFrame) -> int:
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


def _log_nothing(line: str) -> None:
    return None


def workers_file(path: str) -> list[str]:
    """Worker pseudonyms, one per line (blank lines and ``#`` comments ignored)."""
    lines = [line.split("#", 1)[0].strip() for line in open(path, encoding="utf-8")]
    return [line for line in lines if line]


def reward_model_run_execute(
    *,
    run: RewardModelRun,
    progress: Progress = _noop,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] = _log_nothing,
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
    run.results = _results_rows(rr.results)
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
        _store_predictions(run, rr.oof, turns)
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


# --------------------------------------------------------------------------- figures
def figures_render(*, job=None, progress: Progress = _noop) -> list[AnalysisFigure]:
    """Render every behaviour figure of paper section 4 / appendix A.3 from the database.

    The computation is ``analysis.figures`` (pure); this feeds it the database's turns and samples
    and stores one ``AnalysisFigure`` per figure.
    """
    from analysis import figures as pure_figures
    from analysis import pipeline

    turns, keys = database_inputs()
    matches, _ = pipeline.match_all(turns, _samples_iter(keys, progress, 5, 40))
    figures = pure_figures.behaviour_figures(matches, turns)
    progress(60, "feature importances")
    _, table = feature_table(params={"worker_normalise": False}, progress=lambda *_: None)
    figures += pure_figures.importance_figures(table.features, turns)
    reliability = reliability_figure()
    if reliability is not None:
        figures.append(("reliability", "Reliability of reward-model confidences (latest run, grouped)", reliability))
    from .plan_services import learning_curve_figure

    curve = learning_curve_figure()
    if curve is not None:
        figures.append(curve)
    out = []
    for i, (name, title, fig) in enumerate(figures):
        progress(70 + 25 * i / max(len(figures), 1), f"rendering {name}")
        png, svg = pure_figures.png_svg(fig)
        out.append(AnalysisFigure.objects.create(name=name, title=title, job=job, png=png, svg=svg))
    return out


def reliability_figure(run: RewardModelRun | None = None, models: tuple[str, ...] = ("RF + Text lengths", "RF + IF")):
    """Reliability diagram of a run's worker-grouped out-of-fold predictions (latest run by
    default): raw and, where stored, calibrated confidence of each of ``models``; None when the
    run has no grouped predictions."""
    from analysis.plots.calibration import reliability_diagram

    if run is None:
        run = RewardModelRun.objects.filter(predictions__protocol="grouped").order_by("-pk").first()
    if run is None:
        return None
    rows = pd.DataFrame(
        run.predictions.filter(protocol="grouped", model_name__in=models, label__isnull=False)
        .values("model_name", "prob_1", "prob_1_cal", "label")
    )
    if rows.empty:
        return None
    curves = {}
    for model, part in rows.groupby("model_name", sort=False):
        y = (part["label"] == 1).astype(int).to_numpy()
        curves[f"{model}, raw"] = (y, part["prob_1"].to_numpy(dtype=float))
        if part["prob_1_cal"].notna().all():
            curves[f"{model}, calibrated"] = (y, part["prob_1_cal"].to_numpy(dtype=float))
    return reliability_diagram(curves, title=f"Reliability, run {run.pk} (worker-grouped out-of-fold)")


# --------------------------------------------------------------------------- text reward model
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
    *, run: RewardModelRun, progress: Progress = _noop, log: Callable[[str], None] = _log_nothing
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
    name = "Text FT + IF" if params["with_features"] else "Text FT"

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
    run.results = _results_rows({"Pairwise": result})
    run.table_text = format_table({"Pairwise": result})
    run.n_samples = len(rows)
    run.data_version = table.data_version
    with transaction.atomic():
        progress(95, "storing the table and out-of-fold predictions")
        run.save()
        _store_predictions(run, oof.assign(setting="Pairwise"), turns)
    return run
