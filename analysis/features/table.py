"""Feature table of a whole release: one pass over each task's samples.

Pure module. ``build_feature_table`` is what a Django task or a notebook calls: give it the
queries table and an iterable of ``(task_key, mode, samples)``; each task's samples are matched
and turned into features in one go, then dropped, so memory stays at one task.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from . import quality as q
from .config import DEFAULT_FEATURE_CONFIG, FeatureConfig
from .extract import task_features
from .matching import DEFAULT_MATCH_CONFIG, MatchConfig, match_task, merge_reports, order_turns

META_COLUMNS = ("query_id", "worker", "task_id", "mode", "turn_index", "previous_query_id")
FEATURE_GROUPS = ("text", "gaze", "mouse", "both")


@dataclass
class FeatureTable:
    """Output of :func:`build_feature_table`.

    Attributes
    ----------
    features : DataFrame
        One row per turn: :data:`META_COLUMNS` then features named ``group.feature.side``.
    quality : DataFrame
        One row per task: ``worker``, ``task_id``, ``mode``, ``gaze_in_response``,
        ``max_index_score``, ``n_turns``.
    match_report : dict
        Samples per matching rule over all tasks (:func:`analysis.matching.merge_reports`).
    """

    features: pd.DataFrame
    quality: pd.DataFrame
    match_report: dict = field(default_factory=dict)


def feature_columns(table: pd.DataFrame, groups: Iterable[str] = FEATURE_GROUPS) -> list[str]:
    """Feature column names of ``table`` in the given groups (``text``, ``gaze``, ...)."""
    groups = tuple(groups)
    return [c for c in table.columns if c.split(".", 1)[0] in groups and "." in c]


def task_turns(queries: pd.DataFrame, worker: str, task_id: int) -> pd.DataFrame:
    """The queries of one task, in asked order."""
    sel = (queries["worker"] == worker) & (queries["task_id"] == task_id)
    return order_turns(queries.loc[sel])


def build_feature_table(
    turns: pd.DataFrame,
    samples_by_task: Iterable[tuple[Hashable, str, pd.DataFrame]],
    *,
    match_config: MatchConfig = DEFAULT_MATCH_CONFIG,
    feature_config: FeatureConfig = DEFAULT_FEATURE_CONFIG,
) -> FeatureTable:
    """Match and extract features for every task.

    Parameters
    ----------
    turns : DataFrame
        The release ``queries`` table (or the same columns from the database): ``query_id``,
        ``worker``, ``task_id``, ``query``, ``response_1``, ``response_2``, ``error_1``,
        ``error_2``, ``asked_at``.
    samples_by_task : iterable of (task_key, mode, samples)
        ``task_key`` is ``(worker, task_id)``; ``mode`` is "pointwise" or "pairwise";
        ``samples`` the task's samples (long format of :mod:`collection.release.schema`).
        Tasks without turns are skipped.

    Returns
    -------
    FeatureTable
    """
    groups = {key: df for key, df in turns.groupby(["worker", "task_id"], sort=False)}
    feature_parts, quality_rows, reports = [], [], []
    for key, mode, samples in samples_by_task:
        key = (str(key[0]), int(key[1]))
        task = groups.get(key)
        if task is None or task.empty:
            continue
        task = order_turns(task)
        match = match_task(samples, task, mode, match_config, with_samples=False)
        reports.append(match.report)
        feats, side_table = task_features(match.instants, task, mode, feature_config)
        feats.insert(1, "worker", key[0])
        feats.insert(2, "task_id", key[1])
        feats.insert(3, "mode", mode)
        feature_parts.append(feats)
        quality_rows.append(
            {
                "worker": key[0],
                "task_id": key[1],
                "mode": mode,
                "gaze_in_response": q.gaze_in_response_share(match.instants),
                "max_index_score": q.max_index_score(side_table),
                "n_turns": len(task),
            }
        )
    features = pd.concat(feature_parts, ignore_index=True) if feature_parts else pd.DataFrame()
    if not features.empty:
        meta = [c for c in META_COLUMNS if c in features.columns]
        features = features[meta + [c for c in features.columns if c not in meta]]
        features["previous_query_id"] = features["previous_query_id"].astype("Int64")
    return FeatureTable(features, pd.DataFrame(quality_rows), merge_reports(reports))
