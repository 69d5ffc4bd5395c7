"""Compare two release folders up to the documented normalisations (used by several tests).

Normalisations: row order of the tables; integers written as floats (``4.0`` == ``4``); the
second copy of every row in pairwise ``abs_gaze.csv``; two stray quotes next to numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path

KEYS = {
    "query_logs_table.csv": ("query_ID",),
    "task_table.csv": ("user_id", "task_id"),
    "record_info_table.csv": ("user_id", "inserted_at"),
}


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return float(a.strip('"')) == float(b.strip('"'))
    except ValueError:
        return False


def _table(path: Path, key: tuple[str, ...]) -> dict[tuple, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for r in rows:
        k = tuple(str(float(r[c])) if c.endswith("_id") and c != "user_id" or c == "query_ID" else r[c] for c in key)
        out[k] = r
    return out


def table_differences(expected: Path, actual: Path) -> list[str]:
    diffs = []
    for name, key in KEYS.items():
        a, b = _table(expected / name, key), _table(actual / name, key)
        if a.keys() != b.keys():
            diffs.append(f"{name}: keys differ: {sorted(set(a) ^ set(b))[:5]}")
            continue
        for k, row in a.items():
            for col, value in row.items():
                if not _same(value, b[k][col]):
                    diffs.append(f"{name} {k} {col}: {value!r} != {b[k][col]!r}")
    return diffs


def _split(line: str) -> list[str]:
    left = line.split(",", 2)
    if len(left) < 3:
        return left
    return left[:2] + left[2].rsplit(",", 4)


def trajectory_differences(expected: Path, actual: Path) -> list[str]:
    diffs = []
    base = expected / "user_behavior"
    for src in sorted(base.rglob("*.csv")):
        rel = src.relative_to(expected)
        dst = actual / rel
        if not dst.exists():
            diffs.append(f"{rel}: missing")
            continue
        lines = src.read_text(encoding="utf-8").splitlines()
        if src.name == "abs_gaze.csv" and (src.parent / "rel_gaze_one.csv").exists():
            lines = list(dict.fromkeys(lines))
        out = dst.read_text(encoding="utf-8").splitlines()
        if len(lines) != len(out):
            diffs.append(f"{rel}: {len(lines)} rows != {len(out)}")
            continue
        for i, (a, b) in enumerate(zip(lines, out, strict=False)):
            if a == b:
                continue
            fa, fb = _split(a), _split(b)
            if len(fa) != len(fb) or not all(_same(x, y) for x, y in zip(fa, fb, strict=False)):
                diffs.append(f"{rel}:{i + 1}: {a!r} != {b!r}")
                break
    return diffs
