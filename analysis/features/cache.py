"""Parquet cache of the feature matrix, keyed by a hash of everything it depends on.

The key covers the queries that matter (ids, texts, times), a fingerprint of every task's
samples (row count, time span, a checksum of positions and character indices), the matching
and feature configurations, and :data:`FEATURE_VERSION` (bump it when feature code changes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DEFAULT_FEATURE_CONFIG, FeatureConfig
from .matching import DEFAULT_MATCH_CONFIG, MatchConfig

#: Bump when the meaning of any feature changes, so stale caches are not reused.
FEATURE_VERSION = "1"


def samples_fingerprint(samples: pd.DataFrame) -> str:
    """Cheap content checksum of one task's samples (counts, times, coordinates, indices)."""
    h = hashlib.sha256(str(len(samples)).encode())
    for col in ("epoch_ms", "x", "y", "char_index"):
        if col in samples.columns:
            values = samples[col].to_numpy(dtype="float64", na_value=np.nan)
            h.update(np.nan_to_num(values, nan=-7.0).tobytes())
    return h.hexdigest()[:16]


def data_version(
    queries: pd.DataFrame,
    task_fingerprints: Iterable[tuple[object, str]],
    match_config: MatchConfig = DEFAULT_MATCH_CONFIG,
    feature_config: FeatureConfig = DEFAULT_FEATURE_CONFIG,
) -> str:
    """Hash of the inputs of :func:`~analysis.features.build_feature_table`."""
    h = hashlib.sha256(FEATURE_VERSION.encode())
    cols = [c for c in ("query_id", "worker", "task_id", "query", "response_1", "response_2", "asked_at")
            if c in queries.columns]
    h.update(pd.util.hash_pandas_object(queries[cols].astype(str), index=False).to_numpy().tobytes())
    for key, fp in sorted(task_fingerprints, key=lambda kv: str(kv[0])):
        h.update(f"{key}:{fp};".encode())
    h.update(json.dumps(asdict(match_config), sort_keys=True, default=str).encode())
    h.update(json.dumps(feature_config.as_dict(), sort_keys=True).encode())
    return h.hexdigest()[:20]


def cache_path(cache_dir: str | Path, version: str, name: str = "features") -> Path:
    return Path(cache_dir) / f"{name}-{version}.parquet"


def load_cached(cache_dir: str | Path, version: str, name: str = "features") -> pd.DataFrame | None:
    """The cached table for ``version``, or None."""
    path = cache_path(cache_dir, version, name)
    return pd.read_parquet(path) if path.exists() else None


def save_cached(table: pd.DataFrame, cache_dir: str | Path, version: str, name: str = "features") -> Path:
    path = cache_path(cache_dir, version, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


def _version_of(path: Path) -> str:
    """The data version in a cache file's name (``features-<v>.parquet``, ``report-<v>.json``)."""
    return path.stem.rsplit("-", 1)[-1]


def files_with_rows(
    cache_dir: str | Path, *, workers: Iterable[str], query_ids: Iterable[int] = ()
) -> list[Path]:
    """The cache files under ``cache_dir`` that hold rows of ``workers`` (their pseudonyms), with
    the other files of the same data version (features, quality and report go together).

    What a participant's withdrawal must delete (``crowd.services.withdrawal``): tables with a
    ``worker`` column are matched on it; tables without one (the text-embedding cache, indexed by
    ``query_id``) on ``query_ids``; JSON reports on the pseudonym appearing in their text. A query
    id of another worker that happens to be equal only costs a recomputation: these are caches.
    Deleting rather than rewriting: the next run's data version differs anyway (their turns are
    gone), so a rewritten file would never be read again.
    """
    root = Path(cache_dir)
    if not root.is_dir():
        return []
    names = {str(w) for w in workers}
    ids = {int(q) for q in query_ids}
    hits: set[Path] = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            if "worker" in frame.columns:
                found = frame["worker"].astype(str).isin(names).any()
            else:
                column = frame["query_id"] if "query_id" in frame.columns else frame.index.to_series()
                found = bool(ids) and pd.to_numeric(column, errors="coerce").isin(ids).any()
        elif path.suffix == ".json":
            text = path.read_text(encoding="utf-8", errors="replace")
            found = any(name in text for name in names)
        else:
            continue
        if found:
            hits.add(path)
    grouped = ("features", "quality", "report")
    versions = {(p.parent, _version_of(p)) for p in hits if p.name.split("-", 1)[0] in grouped}
    for folder, version in versions:
        hits.update(p for p in folder.glob(f"*-{version}.*") if p.is_file())
    return sorted(hits)
