"""The feature table of the database's tasks: matched, extracted, cached (stage 6 of the map)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.conf import settings

from collection.models import Task

from .base import Progress, no_progress
from .selectors import database_inputs, samples_iter, task_fingerprints


def feature_table(*, params: dict[str, Any], progress: Progress = no_progress, selection=None):
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

    turns, keys = database_inputs(tasks=Task.objects.counted() if selection is not None else None)
    version = data_version(turns, task_fingerprints(keys))
    cache_dir = settings.VAR_DIR / "cache" / "features"
    features = load_cached(cache_dir, version) if params.get("use_cache", True) else None
    if features is not None:
        progress(45, "features from cache")
        quality = load_cached(cache_dir, version, "quality")
        report = json.loads((cache_dir / f"report-{version}.json").read_text())
        table = FeatureTable(features=features, quality=quality, match_report=report)
    else:
        table = build_feature_table(turns, samples_iter(keys, progress, 5, 45))
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
