"""Keyed pseudonyms and the scrubbing of identifying fields before a dataset leaves the lab.

Pure module (no Django): frames in, frames out.

A pseudonym is an HMAC-SHA256 of the worker's id in the lab under a secret key
(``settings.IFLLM_PSEUDONYM_KEY``): the same worker gets the same pseudonym in every export made
with the same key, and nobody without the key can link a pseudonym back to a platform id or to
the lab's own ids. Domain separation (``ifllm-export:``) keeps it distinct from any other HMAC
made with the same key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

import pandas as pd

#: Free text typed by workers that could identify them (names, places, contact details).
TASK_FREE_TEXT = ("summary", "feedback", "copy_sentence", "query_copy", "llm_response_copy")
WORKER_FREE_TEXT = ("location",)
DEMOGRAPHICS = ("age", "location", "education", "race", "gender")
#: Columns never exported: platform identities and raw copies of release rows.
NEVER_EXPORTED = ("platform_worker_id", "assignment_id", "hit_id", "completion_code", "ip", "duplicates")


def keyed_pseudonym(key: str, worker_id: str) -> str:
    """``w_`` + 16 hex characters of HMAC-SHA256(key, "ifllm-export:" + worker_id)."""
    digest = hmac.new(key.encode(), f"ifllm-export:{worker_id}".encode(), hashlib.sha256).hexdigest()
    return f"w_{digest[:16]}"


def pseudonym_map(key: str, worker_ids: Iterable[str]) -> dict[str, str]:
    """Worker id -> keyed pseudonym; raises if two workers would collide (64-bit prefix)."""
    out = {w: keyed_pseudonym(key, w) for w in set(worker_ids)}
    if len(set(out.values())) != len(out):
        raise ValueError("pseudonym collision: use a longer prefix")
    return out


def _scrub_overrides(value: object, drop: set[str]) -> object:
    if not isinstance(value, Mapping):
        return value
    return {k: v for k, v in value.items() if k not in drop}


def anonymise_frame(
    df: pd.DataFrame,
    mapping: Mapping[str, str],
    *,
    blank: Iterable[str] = (),
    worker_column: str = "worker",
) -> pd.DataFrame:
    """Replace worker ids by their pseudonyms, blank ``blank`` columns, drop never-exported ones.

    ``raw_overrides`` (raw release values written back by the release writer) loses the keys of
    blanked columns and ``user_id``, so a raw copy cannot bring back what was removed.
    """
    out = df.drop(columns=[c for c in NEVER_EXPORTED if c in df.columns]).copy()
    if worker_column in out.columns:
        unknown = set(out[worker_column]) - set(mapping)
        if unknown:
            raise KeyError(f"no pseudonym for {len(unknown)} worker id(s)")
        out[worker_column] = out[worker_column].map(mapping)
    blank = [c for c in blank if c in out.columns]
    for col in blank:
        out[col] = None if pd.api.types.is_numeric_dtype(out[col]) else ""
    if "raw_overrides" in out.columns:
        drop = set(blank) | {"user_id"}
        # release column names of the blanked fields
        drop |= {"location"} & set(blank)
        out["raw_overrides"] = [_scrub_overrides(v, drop) for v in out["raw_overrides"]]
    return out
