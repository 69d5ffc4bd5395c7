"""Write tables and trajectories back in the IFllm release layout.

Pure module (no Django).  Values are written in a normalised form: integers without ``.0``,
floats in their shortest exact form, timestamps as ``YYYY-MM-DD HH:MM:SS``.  Where the reader
had to change a value that cannot be recovered from the typed one (``0000-00-00``, a model name
with a CRLF, HTML-escaped text), the raw value travels in ``raw_overrides`` and is written back, so
an import followed by an export reproduces the release up to row order and float-encoded
integers.  Pairwise ``abs_gaze.csv`` is written once per row (the release's duplicate copy is a
logging bug and is not reproduced).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .reader import (
    PAIRWISE_FILES,
    POINTWISE_FILES,
    QUERY_COLUMNS,
    RECORD_COLUMNS,
    TASK_COLUMNS,
    TASK_TEXT_FIELDS,
)


def fmt_number(value: Any) -> str:
    """Missing -> ``""``; integral -> ``"4"``; other floats -> shortest exact ``repr``."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if value == int(value) and abs(value) < 2**53:
            return str(int(value))
        return repr(float(value))
    return str(int(value))


def fmt_timestamp(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def fmt_bool(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "1" if value else "0"


def equivalent(raw: str, written: str) -> bool:
    """True when ``written`` is ``raw`` up to the documented normalisations."""
    if raw == written:
        return True
    try:
        return float(raw) == float(written)
    except ValueError:
        return False


def query_row_to_csv(row: dict) -> dict[str, str]:
    pairwise = row.get("mode") == "pairwise"
    if pairwise:
        preference = fmt_number(row.get("preferred"))
    else:
        preference = fmt_bool(row.get("better_than_previous"))
    out = {
        "query_ID": fmt_number(row["query_id"]),
        "user_id": row["worker"],
        "task_id": fmt_number(row["task_id"]),
        "user_query": row["query"],
        "llm_response_1": row.get("response_1") or row.get("error_1") or "",
        "llm_response_2": row.get("response_2") or row.get("error_2") or "",
        "llm_name_1": row.get("model_1") or "",
        "llm_name_2": row.get("model_2") or "",
        "likert_1": fmt_number(row.get("likert_1")),
        "likert_2": fmt_number(row.get("likert_2")),
        "preference": preference,
        "adjustment": fmt_bool(row.get("bullet_instruction")),
        "query_timestamp": fmt_timestamp(row.get("asked_at")),
    }
    return _apply_overrides(out, row)


def task_row_to_csv(row: dict) -> dict[str, str]:
    out = {
        "user_id": row["worker"],
        "task_id": fmt_number(row["task_id"]),
        "understand_before": fmt_number(row.get("understand_before")),
        "understand_after": fmt_number(row.get("understand_after")),
        "accuracy": fmt_number(row.get("calibration_score")),
        "finished": fmt_timestamp(row.get("finished_at")),
        "domain": row.get("topic") or "",
    }
    for name in TASK_TEXT_FIELDS:
        out[name] = row.get(name) or ""
    return _apply_overrides(out, row)


def worker_row_to_csv(row: dict) -> dict[str, str]:
    out = {
        "user_id": row["worker"],
        "consent": fmt_bool(row.get("consent")),
        "age": fmt_number(row.get("age")),
        "location": row.get("location") or "",
        "education": row.get("education") or "",
        "race": row.get("race") or "",
        "gender": row.get("gender") or "",
        "inserted_at": fmt_timestamp(row.get("inserted_at")),
    }
    return _apply_overrides(out, row)


def _apply_overrides(out: dict[str, str], row: dict) -> dict[str, str]:
    overrides = row.get("raw_overrides") or {}
    for key, value in overrides.items():
        if key in out:
            out[key] = value
    return out


def raw_overrides(raw: dict[str, str], written: dict[str, str]) -> dict[str, str]:
    """The raw values that the normalised row would not reproduce."""
    return {k: v for k, v in raw.items() if k in written and not equivalent(v, written[k])}


def _write_table(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _records(df: pd.DataFrame) -> list[dict]:
    if df is None or df.empty:
        return []
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    return records


def write_tables(root: str | Path, *, workers: pd.DataFrame, tasks: pd.DataFrame, queries: pd.DataFrame) -> None:
    """Write the three release tables (duplicate rows kept raw by the reader are written too)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    worker_rows, task_rows = [], []
    for r in _records(workers):
        worker_rows.append(worker_row_to_csv(r))
        worker_rows.extend(r.get("duplicates") or [])
    for r in _records(tasks):
        task_rows.append(task_row_to_csv(r))
        task_rows.extend(r.get("duplicates") or [])
    query_rows = [query_row_to_csv(r) for r in _records(queries)]
    _write_table(root / "record_info_table.csv", RECORD_COLUMNS, worker_rows)
    _write_table(root / "task_table.csv", TASK_COLUMNS, task_rows)
    _write_table(root / "query_logs_table.csv", QUERY_COLUMNS, query_rows)


def _fmt_column(values: pd.Series) -> list[str]:
    return [fmt_number(v) for v in values.astype(object).where(values.notna(), None)]


def _quote_snippet(value: Any) -> str:
    """As the release wrote it: in quotes, inner quotes not escaped."""
    return "" if value is None else f'"{value}"'


def write_task_trajectories(
    folder: str | Path,
    samples: pd.DataFrame,
    *,
    mode: str,
    rel_columns: dict[str, int] | None = None,
    unquoted: dict[str, list[int]] | None = None,
) -> list[str]:
    """Write one task's samples as the release's CSV files; returns the file names written.

    ``rel_columns`` says which relative files had 6 columns (no ``head_in_box``); by default a
    file gets 7 columns unless ``head_in_box`` is missing in all of its rows.  ``unquoted``
    lists, per file, the rows whose snippet the release wrote without quotes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = PAIRWISE_FILES if mode == "pairwise" else POINTWISE_FILES
    written = []
    for name, (signal, frame) in files.items():
        part = samples[(samples["signal"] == signal) & (samples["frame"] == frame)]
        if part.empty and not (folder / name).exists():
            continue
        part = part.sort_values("row", kind="stable")
        x, y = _fmt_column(part["x"]), _fmt_column(part["y"])
        timer, epoch = _fmt_column(part["page_timer_ms"]), _fmt_column(part["epoch_ms"])
        if frame == "abs":
            lines = [",".join(t) for t in zip(x, y, timer, epoch, strict=False)]
        else:
            ncols = (rel_columns or {}).get(name)
            if ncols is None:
                ncols = 6 if part["head_in_box"].isna().all() and len(part) else 7
            plain = set((unquoted or {}).get(name, ()))
            snippet = [
                (v if r in plain else _quote_snippet(v))
                for v, r in zip(part["snippet"].astype(object), part["row"].astype(int), strict=False)
            ]
            index = _fmt_column(part["char_index"])
            if ncols == 7:
                head = _fmt_column(part["head_in_box"])
                lines = [",".join(t) for t in zip(x, y, snippet, index, timer, head, epoch, strict=False)]
            else:
                lines = [",".join(t) for t in zip(x, y, snippet, index, timer, epoch, strict=False)]
        with open(folder / name, "w", encoding="utf-8", newline="") as fh:
            fh.write("".join(line + "\n" for line in lines))
        written.append(name)
    return written
