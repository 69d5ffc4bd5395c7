"""The cleaned, pseudonymised dataset export (release layout, Parquet, HF preferences)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.utils import timezone

from collection.models import Task, Worker

from .. import anonymise
from .base import _require


def dataset_export(
    *,
    path: str | Path,
    user: Any = None,
    formats: tuple[str, ...] = ("release", "parquet", "hf"),
    include_free_text: bool = False,
    include_demographics: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Export the cleaned dataset (excluded tasks left out) with keyed worker pseudonyms.

    ``release``: the IFllm release layout; ``parquet``: one table per entity; ``hf``: Hugging
    Face preference JSONL (``prompt``/``chosen``/``rejected``) with a dataset card. Platform ids,
    assignment/HIT ids, completion codes and raw duplicate rows are never written; free text typed
    by workers (summary, feedback, copied sentences, location) only with ``include_free_text``.
    """
    from collection.release import writer
    from collection.selectors import task_samples, turns_frame
    from collection.services.release_export import tasks_frame, workers_frame

    _require(user, "access.export_dataset")
    unknown = set(formats) - {"release", "parquet", "hf"}
    if unknown:
        raise ValueError(f"unknown export format(s): {sorted(unknown)}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    tasks = Task.objects.filter(excluded=False)
    workers = Worker.objects.filter(tasks__in=tasks).distinct()
    mapping = anonymise.pseudonym_map(settings.IFLLM_PSEUDONYM_KEY, workers.values_list("pseudonym", flat=True))
    blank_tasks = () if include_free_text else anonymise.TASK_FREE_TEXT
    blank_workers: tuple[str, ...] = () if include_free_text else anonymise.WORKER_FREE_TEXT
    if not include_demographics:
        blank_workers = tuple(set(blank_workers) | set(anonymise.DEMOGRAPHICS))
    wf = anonymise.anonymise_frame(workers_frame(workers), mapping, blank=blank_workers)
    tf = anonymise.anonymise_frame(tasks_frame(tasks), mapping, blank=blank_tasks)
    qf = anonymise.anonymise_frame(turns_frame(tasks=tasks), mapping)
    with_samples = list(tasks.filter(chunks__isnull=False).distinct().select_related("worker"))
    counts: dict[str, Any] = {"workers": len(wf), "tasks": len(tf), "turns": len(qf), "samples": 0}

    if "release" in formats:
        out = root / "release"
        writer.write_tables(out, workers=wf, tasks=tf, queries=qf.drop(columns=["turn_id", "task_pk"]))
    if "parquet" in formats:
        out = root / "parquet"
        out.mkdir(parents=True, exist_ok=True)
        wf.drop(columns=["raw_overrides"], errors="ignore").to_parquet(out / "workers.parquet", index=False)
        tf.drop(columns=["raw_overrides"], errors="ignore").to_parquet(out / "tasks.parquet", index=False)
        qf.drop(columns=["raw_overrides"]).to_parquet(out / "turns.parquet", index=False)
    sample_frames = []
    for done, task in enumerate(with_samples, start=1):
        samples = task_samples(task=task)
        counts["samples"] += len(samples)
        pseudonym = mapping[task.worker.pseudonym]
        if "release" in formats:
            files = task.extra.get("release_files", {})
            writer.write_task_trajectories(
                root / "release" / "user_behavior" / pseudonym / str(task.public_id),
                samples,
                mode=task.effective_mode,
                rel_columns=files.get("rel_columns"),
                unquoted=files.get("unquoted"),
            )
        if "parquet" in formats:
            samples.insert(0, "task_id", task.public_id)
            samples.insert(0, "worker", pseudonym)
            for col in ("signal", "frame"):
                samples[col] = samples[col].astype(str)
            sample_frames.append(samples)
        if progress:
            progress(done, len(with_samples))
    if "parquet" in formats and sample_frames:
        pd.concat(sample_frames, ignore_index=True).to_parquet(root / "parquet" / "samples.parquet", index=False)
    if "hf" in formats:
        counts["preference_records"] = _write_hf(root / "hf", qf, counts)
    manifest = {
        "created_at": timezone.now().isoformat(),
        "formats": list(formats),
        "include_free_text": include_free_text,
        "include_demographics": include_demographics,
        "excluded_tasks_left_out": Task.objects.filter(excluded=True).count(),
        "pseudonyms": "HMAC-SHA256 under IFLLM_PSEUDONYM_KEY (stable across exports with the same key)",
        "counts": counts,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return counts


def _write_hf(out: Path, turns: pd.DataFrame, counts: dict[str, Any]) -> int:
    from alignment.training.hub import write_preference_dataset
    from alignment.training.preference import records_from_explicit_labels

    pairwise = turns[turns["mode"] == "pairwise"]
    pairs = pd.DataFrame(
        {
            "pair_id": pairwise["query_id"].astype(str).to_numpy(),
            "prompt": pairwise["query"].to_numpy(),
            "response_1": pairwise["response_1"].to_numpy(),
            "response_2": pairwise["response_2"].to_numpy(),
            "preference": pairwise["preferred"].astype(object).to_numpy(),
        }
    )
    records = records_from_explicit_labels(pairs)
    write_preference_dataset(out, {"train": records}, title="IFllm pairwise preferences (cleaned)",
                             about=_card_about(n_records=len(records), counts=counts))
    return len(records)


def _card_about(*, n_records: int, counts: dict[str, Any]) -> str:
    return f"""Pairwise preferences of crowd workers between two LLM answers to the same query, collected with
the IFllm Lab site (gaze and mouse were tracked while they read; see the release layout export
for the trajectories).

{n_records} records, from {counts["tasks"]} tasks of {counts["workers"]} workers that passed quality
control (tasks excluded by staff are left out; turns with a provider error, a missing label or
identical answers are skipped). All of them are in the train split.

## Privacy

Worker ids are replaced by keyed pseudonyms (HMAC-SHA256 under a lab secret). No platform ids,
assignment ids, IP addresses or free text describing the worker are included unless the exporting
staff member opted in.
"""
