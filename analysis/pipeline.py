"""Orchestration, pure (no Django): release -> matched samples -> feature table -> results table.

Every stage takes and returns plain objects (DataFrames, dataclasses), so the Django task calls
the same functions with data it read from the database, and a notebook with a release folder:

>>> release = load_release("/tmp/dev")                                      # doctest: +SKIP
>>> table = build_features(release, worker_normalise=True)                  # doctest: +SKIP
>>> rows = apply_quality_filter(table.features, table.quality)              # doctest: +SKIP
>>> run = run_reward_table(rows, release.tables.queries)                    # doctest: +SKIP
>>> print(run.table)                                                        # doctest: +SKIP

With the default ``config`` and ``specs`` that is the admin's default run (``DEFAULT_REWARD_PARAMS``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.features import FeatureConfig, FeatureTable, build_feature_table, feature_columns
from analysis.features.config import DEFAULT_FEATURE_CONFIG
from analysis.features.normalise import add_worker_normalised
from analysis.features.quality import DEFAULT_THRESHOLDS, QualityThresholds, quality_filter
from analysis.features.table import task_turns
from analysis.matching import DEFAULT_MATCH_CONFIG, MatchConfig, TaskMatch, match_task, merge_reports
from analysis.reward import (
    EvalConfig,
    EvalResult,
    ForestParams,
    ModelSpec,
    default_specs,
    evaluate_regression,
    evaluate_table,
    format_table,
    pairwise_labels,
    pointwise_labels,
)
from analysis.reward.evaluate import DEFAULT_EVAL_CONFIG
from analysis.reward.models import rf_specs
from analysis.reward.summary import format_interval_table, interval_summary
from collection.release import reader

TaskKey = tuple[str, int]


@dataclass
class Release:
    """A release in memory: its tables and every task's samples (read once)."""

    tables: reader.ReleaseTables
    tasks: list[tuple[TaskKey, str, pd.DataFrame]]
    timings: dict = field(default_factory=dict)

    def samples_by_task(self) -> Iterable[tuple[TaskKey, str, pd.DataFrame]]:
        return iter(self.tasks)


def _read_task(item: tuple[str, int, str]) -> tuple[TaskKey, str, pd.DataFrame]:
    worker, task_id, folder = item
    tr = reader.read_task_trajectories(folder)
    return (worker, task_id), tr.mode, tr.samples


def load_release(root: str | Path, n_jobs: int = 2) -> Release:
    """Read the tables and all task folders of a release.

    Parameters
    ----------
    root : path
        Release folder (``query_logs_table.csv``, ``user_behavior/``...).
    n_jobs : int
        Processes reading task folders (CSV parsing is CPU-bound; 1 = in this process).
    """
    started = time.perf_counter()
    tables = reader.read_release_tables(root)
    items = [(w, t, str(f)) for w, t, f in reader.iter_task_dirs(root)]
    if n_jobs > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            tasks = list(pool.map(_read_task, items, chunksize=4))
    else:
        tasks = [_read_task(item) for item in items]
    return Release(tables, tasks, {"load_s": time.perf_counter() - started})


def match_all(
    queries: pd.DataFrame,
    samples_by_task: Iterable[tuple[TaskKey, str, pd.DataFrame]],
    config: MatchConfig = DEFAULT_MATCH_CONFIG,
    *,
    with_samples: bool = False,
) -> tuple[dict[TaskKey, TaskMatch], dict]:
    """Match every task; returns ``{task_key: TaskMatch}`` and the merged rule report."""
    out: dict[TaskKey, TaskMatch] = {}
    for key, mode, samples in samples_by_task:
        turns = task_turns(queries, key[0], key[1])
        if turns.empty:
            continue
        out[key] = match_task(samples, turns, mode, config, with_samples=with_samples)
    return out, merge_reports([m.report for m in out.values()])


def build_features(
    release: Release,
    *,
    match_config: MatchConfig = DEFAULT_MATCH_CONFIG,
    feature_config: FeatureConfig = DEFAULT_FEATURE_CONFIG,
    worker_normalise: bool = False,
) -> FeatureTable:
    """Feature table of a loaded release (see :func:`analysis.features.build_feature_table`).

    ``worker_normalise`` appends the worker-relative copies of the absolute time/count features
    (:func:`analysis.features.normalise.add_worker_normalised`).
    """
    table = build_feature_table(
        release.tables.queries,
        release.samples_by_task(),
        match_config=match_config,
        feature_config=feature_config,
    )
    if worker_normalise and not table.features.empty:
        table.features = add_worker_normalised(table.features)
    return table


def apply_quality_filter(
    features: pd.DataFrame, quality: pd.DataFrame, thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Rows of ``features`` whose task passes :func:`~analysis.features.quality.quality_filter`."""
    passing = quality.loc[quality_filter(quality, thresholds), ["worker", "task_id"]]
    keys = set(zip(passing["worker"], passing["task_id"], strict=False))
    mask = [(w, t) in keys for w, t in zip(features["worker"], features["task_id"], strict=False)]
    return features.loc[mask]


@dataclass
class LabelledSet:
    """Rows of one setting ready for :func:`~analysis.reward.evaluate_table`."""

    X: pd.DataFrame
    y: pd.Series
    groups: pd.Series
    query_ids: np.ndarray


def labelled_set(
    features: pd.DataFrame, queries: pd.DataFrame, mode: str, extra: pd.DataFrame | None = None
) -> LabelledSet:
    """Join features to labels for ``mode`` (pairwise: 1 = response 1/left preferred;
    pointwise: 1 = current better). ``extra`` columns (e.g. text embeddings) are joined by query id.
    """
    labels = pairwise_labels(queries) if mode == "pairwise" else pointwise_labels(queries)
    rows = features[features["mode"] == mode].set_index("query_id")
    ids = [i for i in rows.index if i in labels.index]
    X = rows.loc[ids, feature_columns(rows)]
    if extra is not None:
        X = X.join(extra, how="left")
    return LabelledSet(X, labels.loc[ids], rows.loc[ids, "worker"], np.asarray(ids))


#: Parameters of a reward-model run (admin, ``manage.py reward_models``, benchmarks), read from
#: the one set of defaults: ``EvalConfig()`` and ``ForestParams()`` (``trees``: every forest of the
#: models; ``selector_trees``: the ranking forest behind IF; the reasons for each number are in
#: their docstrings). ``calibration_fit`` is only used when calibration is on.
DEFAULT_REWARD_PARAMS: dict = {
    "seeds": list(DEFAULT_EVAL_CONFIG.seeds),
    "trees": ForestParams().n_estimators,
    "selector_trees": DEFAULT_EVAL_CONFIG.selector_n_estimators,
    "k": DEFAULT_EVAL_CONFIG.k,
    "n_splits": DEFAULT_EVAL_CONFIG.n_splits,
    "quality_filter": True,
    "worker_normalise": True,
    "text": False,
    "calibration": DEFAULT_EVAL_CONFIG.calibration,
    "calibration_fit": DEFAULT_EVAL_CONFIG.calibration_fit,
    "n_jobs": DEFAULT_EVAL_CONFIG.n_jobs,
}


def reward_run_config(params: dict) -> tuple[EvalConfig, list[ModelSpec], list[ModelSpec]]:
    """EvalConfig, pairwise specs and pointwise specs of a run from its ``params`` (defaults filled):
    ``reward_run_config({})`` is ``EvalConfig()``, ``default_specs()`` and their RF rows."""
    p = {**DEFAULT_REWARD_PARAMS, **params}
    trees = int(p["trees"])
    forest = ForestParams(n_estimators=trees)
    config = EvalConfig(
        seeds=tuple(int(s) for s in p["seeds"]), k=int(p["k"]), n_splits=int(p["n_splits"]),
        selector_n_estimators=int(p["selector_trees"] or trees), regression_n_estimators=max(50, trees // 2),
        calibration=str(p["calibration"]), calibration_fit=str(p["calibration_fit"]), n_jobs=int(p["n_jobs"]),
    )
    specs = default_specs(forest)
    return config, specs, rf_specs(specs)


@dataclass
class RewardRun:
    """Output of :func:`run_reward_table`."""

    results: dict[str, EvalResult]
    likert: pd.DataFrame
    table: str
    oof: pd.DataFrame
    timings: dict
    intervals: dict = field(default_factory=dict)  #: setting -> :func:`interval_summary` frame


def run_reward_table(
    features: pd.DataFrame,
    queries: pd.DataFrame,
    *,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
    specs: Sequence[ModelSpec] | None = None,
    pointwise_specs: Sequence[ModelSpec] | None = None,
    text_embeddings: pd.DataFrame | None = None,
    likert: bool = True,
    should_stop=None,
    on_progress=None,
) -> RewardRun:
    """Evaluate the reward models on pairwise and pointwise rows; build Table 2.

    Pointwise rows are balanced by subsampling the majority class per seed, as in the paper.
    ``text_embeddings`` (indexed by query id, group ``emb``) enables the text models.
    ``should_stop`` cancels between folds (:class:`~analysis.reward.evaluate.EvaluationCancelled`);
    ``on_progress(fraction, message)`` reports folds done. ``timings`` keys (seconds, stable):
    ``pairwise_s``, ``pointwise_s``, ``likert_s``, ``intervals_s`` and, per setting,
    ``<setting>.selector_s`` / ``.models_s`` / ``.calibration_s`` (summed over parallel folds).
    """
    results: dict[str, EvalResult] = {}
    timings: dict[str, float] = {}
    specs = list(default_specs() if specs is None else specs)
    for mode, mode_specs, cfg in (
        ("pairwise", specs, config),
        ("pointwise", rf_specs(specs) if pointwise_specs is None else pointwise_specs,
         EvalConfig(**{**config.__dict__, "balance": True})),
    ):
        data = labelled_set(features, queries, mode, text_embeddings)
        if len(data.y) < 2 * cfg.n_splits or data.y.nunique() < 2 or data.y.value_counts().min() < cfg.n_splits:
            continue  # too few labelled rows (of each class) for the folds
        started = time.perf_counter()
        share = 0.0 if mode == "pairwise" else 0.75

        def fold_done(done: int, total: int, share: float = share, mode: str = mode) -> None:
            if on_progress is not None:
                width = 0.75 if mode == "pairwise" else 0.2
                on_progress(share + width * done / total, f"{mode}: fold {done} of {total}")

        results[mode.capitalize()] = evaluate_table(
            data.X, data.y, groups=data.groups, query_ids=data.query_ids, specs=mode_specs, config=cfg,
            should_stop=should_stop, on_progress=fold_done,
        )
        timings[f"{mode}_s"] = time.perf_counter() - started
        for key in ("selector_s", "models_s", "calibration_s"):
            timings[f"{mode}.{key}"] = results[mode.capitalize()].timings.get(key, 0.0)
    likert_scores = pd.DataFrame()
    if likert:
        started = time.perf_counter()
        rows = features[features["mode"] == "pointwise"].set_index("query_id")
        target = queries.set_index("query_id")["likert_1"].reindex(rows.index)
        keep = target.notna().to_numpy()
        if keep.sum() >= 2 * config.n_splits:
            X = rows.loc[keep, [c for c in feature_columns(rows) if not c.endswith(".2") and ".cmp" not in c]]
            likert_scores = evaluate_regression(
                X, target[keep], groups=rows.loc[keep, "worker"],
                config=EvalConfig(**{**config.__dict__, "protocols": ("grouped", "ungrouped")}),
            )
        timings["likert_s"] = time.perf_counter() - started
    oof = pd.concat(
        [r.oof.assign(setting=name) for name, r in results.items()], ignore_index=True
    ) if results else pd.DataFrame()
    started = time.perf_counter()
    table = format_table(results)
    intervals = {name: interval_summary(r) for name, r in results.items()}
    if intervals:
        table += "\n\n" + format_interval_table(intervals)
    timings["intervals_s"] = time.perf_counter() - started
    return RewardRun(results, likert_scores, table, oof, timings, intervals)
