"""Read an IFllm release folder into tidy pandas tables, handling the release's quirks.

Pure module (no Django): the importer, the analysis code and notebooks all use it.

Quirks handled here (see the release README):

* integers written as floats (``"4.0"``) and NULL as an empty field;
* ``preference`` of ``"1.0"``/``"2.0"`` parsed as numbers, never with ``int("1.0")``;
* HTML entities (``&quot;``) in the task table's free text, unescaped (the raw value is kept);
* a ``0000-00-00`` timestamp (becomes missing; raw value kept);
* a model name with a CRLF inside (whitespace removed; raw value kept);
* duplicate worker rows and duplicate (worker, task) rows (first kept, the rest reported and kept
  raw so an export can reproduce them);
* provider error messages stored as responses (moved to ``error_1``/``error_2``);
* relative trajectory files with 6 or 7 columns and unescaped quotes/commas inside the snippet;
* ``abs_gaze.csv`` of pairwise tasks holding every row twice (the copy is dropped).

Every row that cannot be read is reported as a :class:`Problem` naming the file and line; the
rest of the file is still read.
"""

from __future__ import annotations

import csv
import html
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema

QUERY_COLUMNS = [
    "query_ID", "user_id", "task_id", "user_query", "llm_response_1", "llm_response_2",
    "llm_name_1", "llm_name_2", "likert_1", "likert_2", "preference", "adjustment",
    "query_timestamp",
]
TASK_COLUMNS = [
    "user_id", "task_id", "copy_sentence", "summary", "feedback", "understand_before",
    "understand_after", "query_copy", "llm_response_copy", "accuracy", "finished", "domain",
]
RECORD_COLUMNS = [
    "user_id", "consent", "age", "location", "education", "race", "gender", "inserted_at",
]

#: Release file name -> (signal, frame).  ``box1`` is the single box (pointwise) or the left
#: box (response 1, pairwise); ``box2`` is the right box (response 2).
POINTWISE_FILES = {
    "abs_gaze.csv": ("gaze", "abs"),
    "abs_mouse.csv": ("mouse", "abs"),
    "rel_gaze.csv": ("gaze", "box1"),
    "rel_mouse.csv": ("mouse", "box1"),
}
PAIRWISE_FILES = {
    "abs_gaze.csv": ("gaze", "abs"),
    "abs_mouse.csv": ("mouse", "abs"),
    "rel_gaze_one.csv": ("gaze", "box1"),
    "rel_gaze_two.csv": ("gaze", "box2"),
    "rel_mouse_left.csv": ("mouse", "box1"),
    "rel_mouse_right.csv": ("mouse", "box2"),
}

#: Responses that are provider error messages, not answers (the original site stored them).
ERROR_PREFIXES = ("AI Error.",)

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_CLEAN_REL = re.compile(rf"^{_NUM},{_NUM},(?:\"[^\",]*\")?,")


@dataclass(frozen=True)
class Problem:
    """Something in the release that was skipped or changed, with where it was found."""

    path: str
    line: int | None
    message: str
    skipped: bool = True

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        action = "skipped" if self.skipped else "note"
        return f"{where}: {action}: {self.message}"


@dataclass
class ReleaseTables:
    """The three release tables, typed, one row per entity."""

    workers: pd.DataFrame
    tasks: pd.DataFrame
    queries: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)


# --------------------------------------------------------------------------- value parsing
def parse_int(value: str) -> int | None:
    """``""`` -> None; ``"4"``/``"4.0"`` -> 4; anything else raises ValueError."""
    value = value.strip()
    if value == "":
        return None
    number = float(value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def parse_float(value: str) -> float | None:
    value = value.strip()
    return None if value == "" else float(value)


def parse_timestamp(value: str) -> pd.Timestamp | None:
    """MySQL DATETIME text -> UTC timestamp; ``0000-00-00`` and empty -> None."""
    value = value.strip()
    if value == "" or value.startswith("0000-00-00"):
        return None
    return pd.Timestamp(value, tz="UTC")


def split_error(text: str) -> tuple[str, str]:
    """Split a stored response into ``(response, provider_error)``; one of them is empty."""
    if text.startswith(ERROR_PREFIXES):
        return "", text
    return text, ""


# --------------------------------------------------------------------------- tables
def _read_csv_rows(path: Path, columns: list[str], problems: list[Problem]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row_dict)`` for each record; malformed records become problems."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            problems.append(Problem(str(path), None, "empty file"))
            return
        missing = [c for c in columns if c not in header]
        if missing:
            problems.append(Problem(str(path), 1, f"missing columns {missing}"))
            return
        index = {c: header.index(c) for c in columns}
        start = reader.line_num + 1
        for record in reader:
            line = start
            start = reader.line_num + 1
            if not record:
                continue
            if len(record) != len(header):
                problems.append(
                    Problem(str(path), line, f"expected {len(header)} fields, got {len(record)}")
                )
                continue
            yield line, {c: record[i] for c, i in index.items()}


def read_workers(path: Path, problems: list[Problem]) -> pd.DataFrame:
    rows, seen = [], {}
    for line, r in _read_csv_rows(path, RECORD_COLUMNS, problems):
        wid = r["user_id"].strip()
        if not wid:
            problems.append(Problem(str(path), line, "empty user_id"))
            continue
        if wid in seen:
            problems.append(Problem(str(path), line, f"duplicate worker row (first kept): {wid}"))
            rows[seen[wid]]["duplicates"].append(r)
            continue
        try:
            age = parse_int(r["age"])
            consent = parse_int(r["consent"])
            inserted = parse_timestamp(r["inserted_at"])
        except ValueError as exc:
            problems.append(Problem(str(path), line, str(exc)))
            continue
        seen[wid] = len(rows)
        rows.append(
            {
                "worker": wid,
                "consent": None if consent is None else bool(consent),
                "age": age,
                "location": r["location"],
                "education": r["education"],
                "race": r["race"],
                "gender": r["gender"],
                "inserted_at": inserted,
                "line": line,
                "duplicates": [],
            }
        )
        _set_overrides(rows[-1], r, "worker")
    return pd.DataFrame(rows, columns=_cols(rows, "worker"))


def _cols(rows: list[dict], first: str) -> list[str] | None:
    return None if rows else [first]


TASK_TEXT_FIELDS = ("copy_sentence", "summary", "feedback", "query_copy", "llm_response_copy")


def read_tasks(path: Path, problems: list[Problem]) -> pd.DataFrame:
    rows, seen = [], {}
    for line, r in _read_csv_rows(path, TASK_COLUMNS, problems):
        try:
            key = (r["user_id"].strip(), parse_int(r["task_id"]))
            if key[1] is None or not key[0]:
                raise ValueError("empty user_id or task_id")
            row = {
                "worker": key[0],
                "task_id": key[1],
                "topic": r["domain"].strip(),
                "understand_before": parse_int(r["understand_before"]),
                "understand_after": parse_int(r["understand_after"]),
                "calibration_score": parse_float(r["accuracy"]),
                "finished_at": parse_timestamp(r["finished"]),
            }
        except ValueError as exc:
            problems.append(Problem(str(path), line, str(exc)))
            continue
        if key in seen:
            problems.append(
                Problem(str(path), line, f"duplicate task row (first kept): {key[0]}/{key[1]}")
            )
            rows[seen[key]]["duplicates"].append(r)
            continue
        for name in TASK_TEXT_FIELDS:
            row[name] = html.unescape(r[name])
        row.update(line=line, duplicates=[])
        _set_overrides(row, r, "task")
        seen[key] = len(rows)
        rows.append(row)
    return pd.DataFrame(rows, columns=_cols(rows, "worker"))


def read_queries(path: Path, problems: list[Problem]) -> pd.DataFrame:
    rows, seen = [], set()
    for line, r in _read_csv_rows(path, QUERY_COLUMNS, problems):
        try:
            qid = parse_int(r["query_ID"])
            task_id = parse_int(r["task_id"])
            if qid is None or task_id is None:
                raise ValueError("empty query_ID or task_id")
            preference = parse_int(r["preference"])
            if preference not in (None, 0, 1, 2):
                raise ValueError(f"preference {r['preference']!r} not in 0/1/2")
            likert = [parse_int(r["likert_1"]), parse_int(r["likert_2"])]
            for value in likert:
                if value is not None and not 1 <= value <= 5:
                    raise ValueError(f"likert {value} outside 1..5")
            adjustment = parse_int(r["adjustment"])
            asked_at = parse_timestamp(r["query_timestamp"])
        except ValueError as exc:
            problems.append(Problem(str(path), line, str(exc)))
            continue
        if qid in seen:
            problems.append(Problem(str(path), line, f"duplicate query_ID {qid}"))
            continue
        seen.add(qid)
        response_1, error_1 = split_error(r["llm_response_1"])
        response_2, error_2 = split_error(r["llm_response_2"])
        model_1 = re.sub(r"\s+", "", r["llm_name_1"])
        model_2 = re.sub(r"\s+", "", r["llm_name_2"])
        pairwise = schema.mode_of(model_2) == schema.PAIRWISE
        rows.append(
            {
                "query_id": qid,
                "worker": r["user_id"].strip(),
                "task_id": task_id,
                "mode": schema.PAIRWISE if pairwise else schema.POINTWISE,
                "query": r["user_query"],
                "response_1": response_1,
                "response_2": response_2,
                "error_1": error_1,
                "error_2": error_2,
                "model_1": model_1,
                "model_2": model_2,
                "likert_1": likert[0],
                "likert_2": likert[1],
                # Label semantics are made explicit here, once: pairwise 1 = response 1 (left)
                # preferred, 2 = response 2 (right); pointwise 1 = better than previous, 0 = worse.
                "preferred": preference if pairwise else None,
                "better_than_previous": (
                    None if pairwise or preference is None else bool(preference)
                ),
                "bullet_instruction": bool(adjustment),
                "asked_at": asked_at,
                "line": line,
            }
        )
        _set_overrides(rows[-1], r, "query")
    return pd.DataFrame(rows, columns=_cols(rows, "query_id"))


def _set_overrides(row: dict, raw: dict[str, str], kind: str) -> None:
    """Keep the raw values that the typed row cannot reproduce (see :mod:`.writer`)."""
    from . import writer  # local import: writer imports this module's constants

    to_csv = {
        "worker": writer.worker_row_to_csv,
        "task": writer.task_row_to_csv,
        "query": writer.query_row_to_csv,
    }[kind]
    row["raw_overrides"] = {}
    row["raw_overrides"] = writer.raw_overrides(raw, to_csv(row))


def read_release_tables(root: str | Path) -> ReleaseTables:
    """Read the three tables of a release folder."""
    root = Path(root)
    problems: list[Problem] = []
    tables = {}
    for name, reader in (
        ("record_info_table.csv", read_workers),
        ("task_table.csv", read_tasks),
        ("query_logs_table.csv", read_queries),
    ):
        path = root / name
        if not path.exists():
            problems.append(Problem(str(path), None, "file not found"))
            tables[name] = pd.DataFrame()
            continue
        tables[name] = reader(path, problems)
    return ReleaseTables(
        workers=tables["record_info_table.csv"],
        tasks=tables["task_table.csv"],
        queries=tables["query_logs_table.csv"],
        problems=problems,
    )


# --------------------------------------------------------------------------- trajectories
@dataclass
class TaskTrajectories:
    """All samples of one task folder, in the long format of :mod:`.schema`."""

    worker: str
    task_id: int
    mode: str  # "pointwise" | "pairwise"
    samples: pd.DataFrame
    problems: list[Problem]
    #: file name -> number of columns of a relative file (6 = without head_in_box, 7 = with)
    rel_columns: dict[str, int]
    duplicates_dropped: int = 0
    #: file name -> rows (0-based, as in ``row``) whose snippet was written without quotes
    unquoted: dict[str, list[int]] = field(default_factory=dict)


def iter_task_dirs(root: str | Path) -> Iterator[tuple[str, int, Path]]:
    """Yield ``(worker, task_id, folder)`` for every ``user_behavior/<worker>/<task>/``."""
    base = Path(root) / "user_behavior"
    if not base.is_dir():
        return
    for worker_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for task_dir in sorted(p for p in worker_dir.iterdir() if p.is_dir()):
            try:
                task_id = int(task_dir.name)
            except ValueError:
                continue
            yield worker_dir.name, task_id, task_dir


def task_mode(folder: Path) -> str:
    """Pairwise tasks have two relative files per signal."""
    return "pairwise" if (folder / "rel_gaze_one.csv").exists() else "pointwise"


def read_task_trajectories(folder: str | Path) -> TaskTrajectories:
    """Read every trajectory file of one ``user_behavior/<worker>/<task>`` folder."""
    folder = Path(folder)
    mode = task_mode(folder)
    files = PAIRWISE_FILES if mode == "pairwise" else POINTWISE_FILES
    problems: list[Problem] = []
    parts = []
    rel_columns: dict[str, int] = {}
    unquoted: dict[str, list[int]] = {}
    dropped = 0
    for name, (signal, frame) in files.items():
        path = folder / name
        if not path.exists():
            problems.append(Problem(str(path), None, "file not found", skipped=False))
            continue
        if frame == "abs":
            df = read_abs_file(path, problems)
            if name == "abs_gaze.csv" and mode == "pairwise":
                before = len(df)
                df = dedupe_pairwise_abs_gaze(df)
                dropped = before - len(df)
        else:
            unquoted_rows: list[int] = []
            df, ncols = read_rel_file(path, problems, unquoted_rows)
            rel_columns[name] = ncols
            if unquoted_rows:
                unquoted[name] = unquoted_rows
        df["signal"] = signal
        df["frame"] = frame
        parts.append(df)
    samples = schema.conform(pd.concat(parts, ignore_index=True)) if parts else schema.empty_frame()
    return TaskTrajectories(
        worker=folder.parent.name,
        task_id=int(folder.name),
        mode=mode,
        samples=samples,
        problems=problems,
        rel_columns=rel_columns,
        duplicates_dropped=dropped,
        unquoted=unquoted,
    )


def dedupe_pairwise_abs_gaze(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the second copy of every row (the original site logged each gaze row twice).

    Only exact duplicates are dropped; ``row`` is renumbered so it stays dense.
    """
    keep = ~df.duplicated(subset=["x", "y", "page_timer_ms", "epoch_ms"], keep="first")
    out = df.loc[keep].reset_index(drop=True)
    out["row"] = np.arange(len(out), dtype="int32")
    return out


def _lines(path: Path, problems: list[Problem]) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(str(path), None, f"invalid UTF-8 ({exc.reason}); bad bytes replaced", False)
        )
        text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_abs_file(path: Path, problems: list[Problem]) -> pd.DataFrame:
    """``x, y, page_timer_ms, epoch_ms`` without header."""
    lines = _lines(path, problems)
    cols: list[list[str]] = [[], [], [], []]
    rows: list[int] = []
    for i, line in enumerate(lines):
        parts = line.split(",")
        if len(parts) != 4:
            problems.append(Problem(str(path), i + 1, f"expected 4 fields, got {len(parts)}"))
            continue
        for c, v in zip(cols, parts, strict=False):
            c.append(v)
        rows.append(i)
    df = pd.DataFrame(
        {
            "x": cols[0],
            "y": cols[1],
            "page_timer_ms": cols[2],
            "epoch_ms": cols[3],
            "row": rows,
        }
    )
    return _numeric(df, path, problems)


def detect_rel_columns(lines: list[str]) -> int:
    """6 (older files, no ``head_in_box``) or 7 columns, from lines whose snippet is clean."""
    votes = {6: 0, 7: 0}
    for line in lines[:2000]:
        if _CLEAN_REL.match(line):
            n = line.count(",") + 1
            if n in votes:
                votes[n] += 1
    return 6 if votes[6] > votes[7] else 7


def read_rel_file(
    path: Path, problems: list[Problem], unquoted: list[int] | None = None
) -> tuple[pd.DataFrame, int]:
    """``x_rel, y_rel, "snippet", char_index, page_timer_ms[, head_in_box], epoch_ms``.

    The snippet is quoted when it holds a space or comma, but inner quotes are not escaped, so the
    line is split from both ends: two numbers on the left, 3 or 4 on the right, the snippet is
    what stays between (an empty field is "no snippet", ``""`` an empty one).
    """
    lines = _lines(path, problems)
    ncols = detect_rel_columns(lines)
    if unquoted is None:
        unquoted = []
    tail = ncols - 3
    xs, ys, snippets, idx, timers, heads, epochs, rows = ([] for _ in range(8))
    for i, line in enumerate(lines):
        left = line.split(",", 2)
        if len(left) < 3:
            problems.append(Problem(str(path), i + 1, f"expected {ncols} fields"))
            continue
        right = left[2].rsplit(",", tail)
        if len(right) != tail + 1:
            problems.append(Problem(str(path), i + 1, f"expected {ncols} fields"))
            continue
        snippet = right[0]
        if snippet == "":
            snippet = None
        elif len(snippet) >= 2 and snippet[0] == '"' and snippet[-1] == '"':
            snippet = snippet[1:-1]
        else:
            # A few snippets were written without quotes (``9``): taken as they are, and
            # remembered so an export writes them the same way.
            unquoted.append(i)
        xs.append(left[0])
        ys.append(left[1])
        snippets.append(snippet)
        idx.append(right[1])
        timers.append(right[2])
        heads.append(right[3] if tail == 4 else "")
        epochs.append(right[-1])
        rows.append(i)
    df = pd.DataFrame(
        {
            "x": xs,
            "y": ys,
            "snippet": pd.Series(snippets, dtype=object),
            "char_index": idx,
            "page_timer_ms": timers,
            "head_in_box": heads,
            "epoch_ms": epochs,
            "row": rows,
        }
    )
    df = _numeric(df, path, problems, nullable=("char_index", "head_in_box"))
    return df, ncols


def _numeric(df: pd.DataFrame, path: Path, problems: list[Problem], *, nullable: tuple[str, ...] = ()) -> pd.DataFrame:
    """Convert the text columns that are numbers in the sample schema, in bulk, to the schema's
    pandas dtypes; rows with unparsable values become problems."""
    ints = tuple(c for c in df.columns if c in schema.INTEGER_COLUMNS and c != "row")
    floats = tuple(c for c in df.columns if c in schema.FLOAT_COLUMNS)
    bad = np.zeros(len(df), dtype=bool)
    converted = {}
    for col in (*floats, *ints):
        text = df[col]
        if text.str.contains('"', regex=False).any():
            # A few lines carry a stray quote next to a number (an escaping slip of the
            # original logger); the number itself is intact.
            stripped = text.str.replace('"', "", regex=False)
            for line_no in df.loc[stripped != text, "row"] + 1:
                problems.append(
                    Problem(str(path), int(line_no), f"stray quote removed from {col}", False)
                )
            text = stripped
        values = pd.to_numeric(text.where(text != "", None), errors="coerce")
        missing = values.isna().to_numpy()
        empty = (text == "").to_numpy()
        invalid = (missing & ~empty) if col in nullable else missing.copy()
        if col in ints:
            frac = values.notna().to_numpy() & (values.fillna(0) % 1 != 0).to_numpy()
            invalid |= frac
        bad |= invalid
        converted[col] = values
    if bad.any():
        for line_no, (_, row) in zip(df.loc[bad, "row"] + 1, df.loc[bad].iterrows(), strict=False):
            fields = {c: row[c] for c in (*floats, *ints)}
            problems.append(Problem(str(path), int(line_no), f"non-numeric value in {fields}"))
    keep = ~bad
    out = df.loc[keep].copy()
    for col in floats:
        out[col] = converted[col][keep].astype("float64")
    for col in ints:
        out[col] = converted[col][keep].round().astype(schema.PANDAS_DTYPES[col])
    out["row"] = out["row"].astype("int32")
    return out.reset_index(drop=True)
