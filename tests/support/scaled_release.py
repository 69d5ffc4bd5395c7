"""Make a larger test release from ``mini`` by cloning its workers under new ids.

Cross-validation grouped by worker needs more than mini's 3 workers; cloned workers keep real
behaviour (their files are copied) and their real labels.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path


def scaled_release(src: Path, dst: Path, copies: int = 4) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name, id_cols in (
        ("record_info_table.csv", ()),
        ("task_table.csv", ()),
        ("query_logs_table.csv", ("query_ID",)),
    ):
        with open(src / name, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            fields = list(rows[0])
        out = []
        for c in range(copies):
            for r in rows:
                r = dict(r, user_id=f"{r['user_id']}c{c}")
                for col in id_cols:
                    r[col] = str(int(float(r[col])) + 100000 * c)
                out.append(r)
        with open(dst / name, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows(out)
    for worker in (src / "user_behavior").iterdir():
        for c in range(copies):
            shutil.copytree(worker, dst / "user_behavior" / f"{worker.name}c{c}")
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst
