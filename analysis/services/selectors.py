"""Reads of the analysis: the database's turns and samples in the release's frames, and the stored
reward-run predictions the figures use (HackSoft style: selectors read, services write)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from collection.models import Task, TrajectoryChunk
from collection.selectors import task_samples, turns_frame

from ..models import RewardModelRun
from .base import Progress


def database_inputs(*, tasks=None) -> tuple[pd.DataFrame, list[tuple[tuple[str, int], str, Any]]]:
    """Turns (release ``queries`` columns) and the task keys with their sample loaders."""
    tasks = (Task.objects.filter(excluded=False) if tasks is None else tasks).filter(worker__is_preview=False)
    turns = turns_frame(tasks=tasks)
    with_samples = tasks.filter(chunks__isnull=False).distinct().select_related("worker")
    keys = []
    for task in with_samples.order_by("pk"):
        keys.append(((task.worker.pseudonym, task.public_id), task.effective_mode, task.pk))
    return turns, keys


def samples_iter(
    keys: list, progress: Progress, lo: float, hi: float
) -> Iterator[tuple[tuple[str, int], str, pd.DataFrame]]:
    """Decode each task's samples only when the pipeline reaches it (bounded memory)."""
    for i, (key, mode, pk) in enumerate(keys):
        if i % 20 == 0:
            progress(lo + (hi - lo) * i / max(len(keys), 1), f"task {i} of {len(keys)}")
        yield key, mode, task_samples(task=pk)


def task_fingerprints(keys: list) -> list[tuple[tuple[str, int], str]]:
    """Per task, a hash of its chunks' digests: changes whenever any sample changes."""
    import hashlib

    by_task: dict[int, hashlib._Hash] = {}
    rows = TrajectoryChunk.objects.filter(task_id__in=[pk for _, _, pk in keys]).order_by("task_id", "seq")
    for task_id, seq, n, digest, first, last in rows.values_list(
        "task_id", "seq", "n_samples", "digest", "first_ms", "last_ms"
    ):
        by_task.setdefault(task_id, hashlib.sha256()).update(f"{seq}:{n}:{digest}:{first}:{last};".encode())
    return [(key, by_task[pk].hexdigest()[:16] if pk in by_task else "") for key, _, pk in keys]


def reward_run_latest_grouped() -> RewardModelRun | None:
    """The latest run with worker-grouped predictions (the reliability figure's default)."""
    return RewardModelRun.objects.filter(predictions__protocol="grouped").order_by("-pk").first()


def grouped_predictions_frame(*, run: RewardModelRun, models: tuple[str, ...]) -> pd.DataFrame:
    """A run's labelled worker-grouped predictions of ``models``: ``model_name, prob_1, prob_1_cal, label``."""
    return pd.DataFrame(
        run.predictions.filter(protocol="grouped", model_name__in=models, label__isnull=False)
        .values("model_name", "prob_1", "prob_1_cal", "label")
    )
