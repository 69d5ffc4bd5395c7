"""Write the data of record back out: the release layout, or one Parquet table per entity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import QuerySet

from ..models import Task, Worker
from ..release import writer
from ..selectors import task_samples, turns_frame
from .release_import import UNKNOWN_TOPIC

FORMATS = ("release", "parquet")


def workers_frame(workers: QuerySet[Worker]) -> pd.DataFrame:
    rows = [
        {
            "worker": w.pseudonym,
            "consent": w.consent,
            "age": w.age,
            "location": w.location,
            "education": w.education,
            "race": w.race,
            "gender": w.gender,
            "inserted_at": w.created_at,
            "raw_overrides": w.raw_overrides,
            "duplicates": w.extra.get("duplicates", []),
        }
        for w in workers.order_by("pk")
        if w.extra.get("in_record_table", True)
    ]
    return pd.DataFrame(rows)


def tasks_frame(tasks: QuerySet[Task]) -> pd.DataFrame:
    rows = []
    for t in tasks.select_related("worker", "topic").order_by("pk"):
        if not t.extra.get("in_task_table", True):
            continue
        rows.append(
            {
                "worker": t.worker.pseudonym,
                "task_id": t.public_id,
                "topic": "" if t.topic.title == UNKNOWN_TOPIC else t.topic.title,
                "mode": t.mode,
                "model_1": t.model_1,
                "model_2": t.model_2,
                "status": t.status,
                "understand_before": t.understand_before,
                "understand_after": t.understand_after,
                "calibration_score": t.calibration_score,
                "finished_at": t.finished_at,
                "copy_sentence": t.copy_sentence,
                "summary": t.summary,
                "feedback": t.feedback,
                "query_copy": t.query_copy,
                "llm_response_copy": t.llm_response_copy,
                "excluded": t.excluded,
                "raw_overrides": t.raw_overrides,
                "duplicates": t.extra.get("duplicates", []),
            }
        )
    return pd.DataFrame(rows)


def release_export(
    *,
    path: str | Path,
    format: str = "release",
    tasks: QuerySet[Task] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Export ``tasks`` (default: all) and their workers and turns to ``path``."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    # Preview sessions (staff walking the study) are never data, whatever queryset was given.
    tasks = (Task.objects.all() if tasks is None else tasks).filter(worker__is_preview=False)
    workers = Worker.objects.filter(tasks__in=tasks).distinct()
    wf, tf, qf = workers_frame(workers), tasks_frame(tasks), turns_frame(tasks=tasks)
    with_samples = list(tasks.filter(chunks__isnull=False).distinct().select_related("worker"))
    counts = {"workers": len(wf), "tasks": len(tf), "turns": len(qf), "samples": 0}
    if format == "release":
        writer.write_tables(root, workers=wf, tasks=tf, queries=qf.drop(columns=["turn_id", "task_pk"]))
        for done, task in enumerate(with_samples, start=1):
            samples = task_samples(task=task)
            files = task.extra.get("release_files", {})
            writer.write_task_trajectories(
                root / "user_behavior" / task.worker.pseudonym / str(task.public_id),
                samples,
                mode=task.effective_mode,
                rel_columns=files.get("rel_columns"),
                unquoted=files.get("unquoted"),
            )
            counts["samples"] += len(samples)
            if progress:
                progress(done, len(with_samples))
        return counts
    # Parquet: one table per entity; samples columnar, written task by task (bounded memory).
    drop = ["raw_overrides", "duplicates"]
    wf.drop(columns=drop, errors="ignore").to_parquet(root / "workers.parquet", index=False)
    tf.drop(columns=drop, errors="ignore").to_parquet(root / "tasks.parquet", index=False)
    qf.drop(columns=["raw_overrides"]).to_parquet(root / "turns.parquet", index=False)
    parquet_writer = None
    try:
        for done, task in enumerate(with_samples, start=1):
            samples = task_samples(task=task)
            samples.insert(0, "task_id", task.public_id)
            samples.insert(0, "worker", task.worker.pseudonym)
            for col in ("signal", "frame"):
                samples[col] = samples[col].astype(str)
            table = pa.Table.from_pandas(samples, preserve_index=False)
            if parquet_writer is None:
                parquet_writer = pq.ParquetWriter(root / "samples.parquet", table.schema, compression="zstd")
            parquet_writer.write_table(table.cast(parquet_writer.schema))
            counts["samples"] += len(samples)
            if progress:
                progress(done, len(with_samples))
    finally:
        if parquet_writer is not None:
            parquet_writer.close()
    return counts
