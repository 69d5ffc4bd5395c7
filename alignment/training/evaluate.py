"""Aggregate judged SFT-vs-DPO comparisons into a Table-3-style summary.

Input: one row per (base model, test query) with the two answers and the judge's result, as
produced by :func:`judge_comparisons`.  Fixes relative to the paper's
original evaluation:

* Win / tie / loss are reported as three shares of all comparisons, plus a DPO win rate that
  EXCLUDES ties from its denominator (ties were counted as non-wins before).
* Length groups (short / medium / long) are terciles of the SFT (reference) answer length or
  of the query length -- never of the treated model's own output, which would make the
  grouping depend on the treatment being evaluated.
* The DPO - SFT score difference comes with its standard error (paired, over queries).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from .judge import judge_pair

__all__ = ["judge_comparisons", "add_length_groups", "summarise", "table3", "write_table_csv"]

LENGTH_LABELS = ["short", "medium", "long"]


def judge_comparisons(
    client_fn: Callable[[str], str], comparisons: pd.DataFrame, *, on_row: Callable[[int, int], None] | None = None
) -> pd.DataFrame:
    """Judge every row of ``comparisons`` (columns ``query``, ``dpo_answer``, ``sft_answer``).

    Returns a copy with ``score_dpo``, ``score_sft`` (means over both orders), ``winner``
    (``"dpo"``/``"sft"``/``"tie"``) and ``judge_consistent``. ``on_row(done, total)`` is called
    before each row (progress; a job stops there when cancelled).
    """
    out = comparisons.copy()
    rows = []
    for i, r in enumerate(comparisons.itertuples(index=False)):
        if on_row is not None:
            on_row(i, len(comparisons))
        j = judge_pair(client_fn, r.query, r.dpo_answer, r.sft_answer)
        rows.append((j.score_a, j.score_b, {"A": "dpo", "B": "sft", "tie": "tie"}[j.winner], j.consistent))
    out["score_dpo"] = [x[0] for x in rows]
    out["score_sft"] = [x[1] for x in rows]
    out["winner"] = [x[2] for x in rows]
    out["judge_consistent"] = [x[3] for x in rows]
    return out


def _length(text: object) -> int:
    # Words, not characters or model tokens: comparable across base models' tokenizers.
    return len(str(text).split()) if isinstance(text, str) else 0


def add_length_groups(
    df: pd.DataFrame, *, basis: Literal["sft", "query"] = "sft", per_model: bool = True
) -> pd.DataFrame:
    """Add ``length`` and ``length_group`` (short/medium/long terciles).

    ``basis="sft"`` uses the SFT answer's word count, ``"query"`` the query's.  With
    ``per_model`` the terciles are cut within each ``base_model`` (GPT-2 and Qwen answer at very
    different lengths; pooled cuts would put whole models into one group).
    """
    column = {"sft": "sft_answer", "query": "query"}[basis]
    out = df.copy()
    out["length"] = out[column].map(_length)

    def cut(s: pd.Series) -> pd.Series:
        # Ranks break ties so qcut always finds three non-empty bins when n >= 3.
        return pd.qcut(s.rank(method="first"), 3, labels=LENGTH_LABELS)

    if per_model and "base_model" in out.columns:
        out["length_group"] = out.groupby("base_model", group_keys=False)["length"].apply(cut)
    else:
        out["length_group"] = cut(out["length"])
    out["length_group"] = out["length_group"].astype(pd.CategoricalDtype(LENGTH_LABELS, ordered=True))
    return out


def _summary_row(g: pd.DataFrame) -> dict[str, float]:
    n = len(g)
    diff = g["score_dpo"].astype(float) - g["score_sft"].astype(float)
    wins = int((g["winner"] == "dpo").sum())
    losses = int((g["winner"] == "sft").sum())
    ties = n - wins - losses
    return {
        "n": n,
        "score_dpo": float(g["score_dpo"].mean()),
        "score_sft": float(g["score_sft"].mean()),
        "diff": float(diff.mean()),
        "diff_se": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
        "dpo_win_share": wins / n,
        "tie_share": ties / n,
        "sft_win_share": losses / n,
        "dpo_win_rate_excl_ties": wins / (wins + losses) if wins + losses else math.nan,
        "length_sft_words": float(g["sft_answer"].map(_length).mean()) if "sft_answer" in g else math.nan,
        "length_dpo_words": float(g["dpo_answer"].map(_length).mean()) if "dpo_answer" in g else math.nan,
    }


def summarise(df: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """One summary row per group of ``by`` (or one overall row when ``by`` is empty)."""
    if not by:
        return pd.DataFrame([_summary_row(df)])
    rows = []
    for key, g in df.groupby(list(by), observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)), **_summary_row(g)})
    return pd.DataFrame(rows)


def table3(
    df: pd.DataFrame, *, basis: Literal["sft", "query"] = "sft", group_cols: Sequence[str] = ("reward_source",)
) -> pd.DataFrame:
    """Summary by base model, by length group and overall, stacked with a ``breakdown`` column.

    ``group_cols`` present in ``df`` (e.g. ``reward_source``) are kept as outer keys, as the
    paper's rows are reward sources.
    """
    outer = [c for c in group_cols if c in df.columns]
    data = add_length_groups(df, basis=basis)
    parts = []
    for breakdown, extra in (("overall", []), ("base_model", ["base_model"]), ("length_group", ["length_group"])):
        if extra and extra[0] not in data.columns:
            continue
        part = summarise(data, by=[*outer, *extra])
        part.insert(0, "breakdown", breakdown)
        if extra:
            part = part.rename(columns={extra[0]: "group"})
        else:
            part.insert(len(outer) + 1, "group", "all")
        part["group"] = part["group"].astype(str)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def write_table_csv(table: pd.DataFrame, path: str | Path, *, decimals: int = 4) -> Path:
    """Write the table as CSV with rounded floats (for papers and spreadsheets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.round(decimals).to_csv(path, index=False)
    return path
