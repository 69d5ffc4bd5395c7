"""Build preference records (prompt, chosen, rejected, confidence) from IFllm data.

Label conventions are the main trap here (each rule below fixes a bug of the paper's original
pipeline):

* Explicit pairwise labels: ``preference`` 1 = response 1 (left) preferred, 2 = response 2
  (right).  The release stores them as the strings ``"1.0"``/``"2.0"``; ``int("1.0")`` raises,
  which once turned every label into 0.  :func:`parse_preference_label` accepts all spellings.
* Reward-model predictions: ``prob_1`` = P(response 1 preferred).  The chosen answer is the
  predicted winner and ``confidence`` the probability *of that winner*, max(p, 1-p) -- not
  P(class 1), which gave every pair predicted "2" the maximum flip rate.
* Records are keyed by ``pair_id`` (the turn id), never by prompt text: the same query typed
  twice is two separate pairs with their own labels and confidences.

Output records are Hugging Face style dicts with the columns of :data:`RECORD_COLUMNS`.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "RECORD_COLUMNS",
    "parse_preference_label",
    "pairs_from_release",
    "records_from_explicit_labels",
    "records_from_reward_predictions",
    "sft_records_from_pairs",
    "split_by_prompt",
    "write_jsonl",
    "read_jsonl",
    "write_parquet",
]

RECORD_COLUMNS = ["pair_id", "prompt", "chosen", "rejected", "confidence", "source"]
#: Values of a record's ``source`` (and of ``PreferenceDataset.source`` once stored).
SOURCE_EXPLICIT = "explicit"
SOURCE_REWARD_RUN = "reward_run"
#: Written too when any record has them: the frozen reference's log-probs (TRL's column names).
REFERENCE_COLUMNS = ["reference_chosen_logps", "reference_rejected_logps"]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and value.strip() in ("", "nan", "NaN", "None", "NULL"):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def parse_preference_label(value: Any) -> int | None:
    """Parse a pairwise preference label into 1, 2 or None (missing).

    Accepts ``1``, ``2``, ``1.0``, ``"1"``, ``"2.0"``, ``" 2 "``; missing values (None, NaN,
    empty string) give None.  Anything else -- including 0 or 1.5 -- raises ValueError rather
    than being silently mapped to a class.
    """
    if _is_missing(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"unparseable preference label {value!r}") from exc
    if number == 1.0:
        return 1
    if number == 2.0:
        return 2
    raise ValueError(f"pairwise preference must be 1 or 2, got {value!r}")


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def pairs_from_release(query_logs: pd.DataFrame) -> pd.DataFrame:
    """Pairwise rows of the release's ``query_logs_table.csv`` in this module's column names.

    Returns columns ``pair_id`` (= ``query_ID``), ``prompt``, ``response_1``, ``response_2``,
    ``preference`` (raw, unparsed).  Pointwise rows (no second response) are dropped.
    """
    df = query_logs.rename(
        columns={
            "query_ID": "pair_id",
            "user_query": "prompt",
            "llm_response_1": "response_1",
            "llm_response_2": "response_2",
        }
    )
    both = df["response_1"].map(_text).str.strip().ne("") & df["response_2"].map(_text).str.strip().ne("")
    return df.loc[both, ["pair_id", "prompt", "response_1", "response_2", "preference"]].reset_index(drop=True)


def _check_unique_ids(df: pd.DataFrame, name: str) -> None:
    if "pair_id" not in df.columns:
        raise ValueError(f"{name} needs a 'pair_id' column")
    dup = df["pair_id"][df["pair_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{name}: duplicated pair_id values, e.g. {dup.iloc[0]!r}")


def _record(pair_id: Any, prompt: Any, chosen: Any, rejected: Any, confidence: float | None, source: str) -> dict:
    return {
        # A string so ids from any source (turn ids, "task-turn" keys) share one schema.
        "pair_id": str(pair_id),
        "prompt": _text(prompt),
        "chosen": _text(chosen),
        "rejected": _text(rejected),
        "confidence": confidence,
        "source": source,
    }


def _usable(r1: str, r2: str) -> bool:
    # An empty side or two identical answers carries no preference signal.
    return bool(r1.strip()) and bool(r2.strip()) and r1 != r2


def records_from_explicit_labels(pairs: pd.DataFrame, *, source: str = SOURCE_EXPLICIT) -> list[dict]:
    """Preference records from workers' pairwise labels (no confidence: use DPO, not rDPO).

    ``pairs`` has columns ``pair_id, prompt, response_1, response_2, preference`` with
    preference 1 = response 1 preferred, 2 = response 2 preferred (``"1.0"``/``"2.0"`` ok).
    Rows with a missing label, an empty response or two identical responses are skipped.
    """
    _check_unique_ids(pairs, "pairs")
    records = []
    for row in pairs.itertuples(index=False):
        label = parse_preference_label(row.preference)
        r1, r2 = _text(row.response_1), _text(row.response_2)
        if label is None or not _usable(r1, r2):
            continue
        chosen, rejected = (r1, r2) if label == 1 else (r2, r1)
        records.append(_record(row.pair_id, row.prompt, chosen, rejected, None, source))
    return records


def records_from_reward_predictions(
    pairs: pd.DataFrame, predictions: pd.DataFrame, *, source: str = SOURCE_REWARD_RUN
) -> list[dict]:
    """Preference records from a reward model's out-of-fold predictions.

    Parameters
    ----------
    pairs : DataFrame with ``pair_id, prompt, response_1, response_2``.
    predictions : DataFrame with ``pair_id, prob_1`` where ``prob_1`` = P(response 1 preferred).

    The chosen answer is the predicted winner (response 1 when ``prob_1 >= 0.5``) and
    ``confidence = max(prob_1, 1 - prob_1)``, the probability of that winner.  The join is on
    ``pair_id``; pairs without a prediction are skipped.
    """
    _check_unique_ids(pairs, "pairs")
    _check_unique_ids(predictions, "predictions")
    probs = pd.to_numeric(predictions["prob_1"], errors="raise").astype(float)
    if probs.isna().any() or ((probs < 0) | (probs > 1)).any():
        raise ValueError("prob_1 must be a probability in [0, 1]")
    prob_by_id = dict(zip(predictions["pair_id"].astype(str), probs, strict=True))
    records = []
    for row in pairs.itertuples(index=False):
        p1 = prob_by_id.get(str(row.pair_id))
        r1, r2 = _text(row.response_1), _text(row.response_2)
        if p1 is None or not _usable(r1, r2):
            continue
        if p1 >= 0.5:
            chosen, rejected, confidence = r1, r2, p1
        else:
            chosen, rejected, confidence = r2, r1, 1.0 - p1
        records.append(_record(row.pair_id, row.prompt, chosen, rejected, float(confidence), source))
    return records


def sft_records_from_pairs(pairs: pd.DataFrame) -> list[dict]:
    """SFT records ``{"prompt", "response"}`` from every non-empty response of every pair.

    The paper fine-tunes each base model on all LLMs' responses before (r)DPO.
    """
    out = []
    for row in pairs.itertuples(index=False):
        for col in ("response_1", "response_2"):
            text = _text(getattr(row, col))
            if text.strip():
                out.append({"prompt": _text(row.prompt), "response": text})
    return out


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def split_by_prompt(
    records: Sequence[Mapping[str, Any]], *, valid: float = 0.1, test: float = 0.1, seed: int = 0
) -> dict[str, list[dict]]:
    """Split records into train/valid/test so that one prompt text never crosses splits.

    Grouping is by normalised prompt (case and whitespace folded); groups are shuffled with
    ``seed`` and assigned to test, then valid, until each holds its share of the records.
    """
    if valid < 0 or test < 0 or valid + test >= 1:
        raise ValueError("valid and test must be >= 0 and sum to < 1")
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(_normalise(r["prompt"]), []).append(dict(r))
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n = len(records)
    targets = {"test": round(test * n), "valid": round(valid * n)}
    out: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for key in keys:
        group = groups[key]
        for split in ("test", "valid"):
            if len(out[split]) < targets[split]:
                out[split].extend(group)
                break
        else:
            out["train"].extend(group)
    return out


def _frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(records))
    columns = RECORD_COLUMNS + [c for c in REFERENCE_COLUMNS if c in df.columns]
    for col in columns:
        if col not in df.columns:
            df[col] = None
    df = df[columns].copy()
    df["pair_id"] = df["pair_id"].astype(str)
    for col in ["confidence"] + columns[len(RECORD_COLUMNS):]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def write_jsonl(records: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write records as JSON lines (missing confidence as ``null``); loadable by ``datasets``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = _frame(records)
    with path.open("w", encoding="utf-8") as fh:
        for row in df.to_dict(orient="records"):
            for col in ["confidence", *REFERENCE_COLUMNS]:
                if col in row:
                    value = row[col]
                    row[col] = None if value is None or math.isnan(value) else float(value)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    """Read records written by :func:`write_jsonl`."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_parquet(records: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write records as Parquet with the :data:`RECORD_COLUMNS` schema (confidence float64)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _frame(records).to_parquet(path, index=False)
    return path
