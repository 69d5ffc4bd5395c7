"""Load an IFllm release folder into the data of record, idempotently.

Parsing (the slow part) runs in worker processes through the pure reader; this module only
maps typed rows onto models and writes.  Every entity is keyed by its release identifier, so a
second run updates rows in place and replaces each task's trajectory chunks in one transaction:
the database ends up the same however often the import runs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from django.db import transaction
from django.utils import timezone

from ..models import ImportRun, Platform, Task, Topic, TrajectoryChunk, Turn, Worker
from ..release import reader

UNKNOWN_TOPIC = "(unknown topic)"

#: Fixed chunk numbers of the release files of a task (one chunk per file).
RELEASE_SEQ = {
    ("gaze", "abs"): 0,
    ("gaze", "box1"): 1,
    ("gaze", "box2"): 2,
    ("mouse", "abs"): 3,
    ("mouse", "box1"): 4,
    ("mouse", "box2"): 5,
}


@dataclass
class ImportSummary:
    """What an import loaded, and what it skipped or changed with the reason."""

    counts: Counter = field(default_factory=Counter)
    problems: list[reader.Problem] = field(default_factory=list)
    run_id: int | None = None

    def skipped_by_reason(self) -> Counter:
        reasons: Counter = Counter()
        for p in self.problems:
            if p.skipped:
                reasons[_reason_key(p.message)] += 1
        return reasons

    def notes_by_reason(self) -> Counter:
        return Counter(_reason_key(p.message) for p in self.problems if not p.skipped)

    def as_dict(self) -> dict[str, Any]:
        return {
            "loaded": dict(self.counts),
            "skipped": dict(self.skipped_by_reason()),
            "notes": dict(self.notes_by_reason()),
        }


def _reason_key(message: str) -> str:
    """Group messages by their kind (drop the values that differ per row)."""
    for sep in (" in {", " for ", ": ", " (", " 0", " 1"):
        if sep in message:
            message = message.split(sep)[0]
    return message


def _nn(value: Any) -> Any:
    """pandas missing values -> None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _dt(value: Any):
    value = _nn(value)
    return None if value is None else pd.Timestamp(value).to_pydatetime()


def _stage(row, values: dict[str, Any], new: list, changed: list, model: type, **keys: Any) -> None:
    """Queue a row for ``bulk_create`` (not stored yet: ``model(**keys, **values)``) or for
    ``bulk_update`` (``row`` updated in place)."""
    if row is None:
        new.append(model(**keys, **values))
        return
    for k, v in values.items():
        setattr(row, k, v)
    changed.append(row)


# --------------------------------------------------------------------------- tables
def _import_workers(tables: reader.ReleaseTables, ids: set[str]) -> dict[str, Worker]:
    existing = {w.pseudonym: w for w in Worker.objects.filter(pseudonym__in=ids)}
    rows = {r["worker"]: r for r in tables.workers.to_dict("records")} if len(tables.workers) else {}
    new, changed = [], []
    for wid in sorted(ids):
        r = rows.get(wid, {})
        values = {
            "platform": Platform.RELEASE,
            "consent": _nn(r.get("consent")),
            "age": _nn(r.get("age")),
            "location": r.get("location") or "",
            "education": r.get("education") or "",
            "race": r.get("race") or "",
            "gender": r.get("gender") or "",
            "created_at": _dt(r.get("inserted_at")),
            "raw_overrides": r.get("raw_overrides") or {},
            "extra": {"duplicates": r.get("duplicates") or [], "in_record_table": bool(r)},
        }
        _stage(existing.get(wid), values, new, changed, Worker, pseudonym=wid)
    Worker.objects.bulk_create(new, batch_size=500)
    if changed:
        Worker.objects.bulk_update(changed, list(values), batch_size=500)
    return {w.pseudonym: w for w in Worker.objects.filter(pseudonym__in=ids)}


def _import_topics(titles: Iterable[str]) -> dict[str, Topic]:
    titles = {t or UNKNOWN_TOPIC for t in titles}
    existing = set(Topic.objects.filter(title__in=titles).values_list("title", flat=True))
    Topic.objects.bulk_create([Topic(title=t) for t in sorted(titles - existing)])
    return {t.title: t for t in Topic.objects.filter(title__in=titles)}


TASK_FIELDS = (
    "topic", "mode", "model_1", "model_2", "status", "calibration_score", "finished_at",
    "summary", "understand_before", "understand_after", "copy_sentence", "feedback",
    "query_copy", "llm_response_copy", "raw_overrides", "extra",
)


def _import_tasks(
    tables: reader.ReleaseTables,
    workers: dict[str, Worker],
    folder_modes: dict[tuple[str, int], str],
) -> dict[tuple[str, int], Task]:
    task_rows = {}
    if len(tables.tasks):
        task_rows = {(r["worker"], r["task_id"]): r for r in tables.tasks.to_dict("records")}
    queries = tables.queries
    keys = set(task_rows) | set(folder_modes)
    q_models: dict[tuple[str, int], tuple[str, str, str]] = {}
    if len(queries):
        keys |= set(zip(queries["worker"], queries["task_id"], strict=False))
        for r in queries.sort_values("query_id").to_dict("records"):
            key = (r["worker"], r["task_id"])
            q_models.setdefault(key, (r["mode"], r["model_1"], r["model_2"]))
    topics = _import_topics(r.get("topic", "") for r in task_rows.values())
    topics |= _import_topics([UNKNOWN_TOPIC])
    existing = _release_tasks(workers)
    new, changed = [], []
    for key in sorted(keys):
        r = task_rows.get(key, {})
        mode, model_1, model_2 = q_models.get(key, ("", "", ""))
        mode = folder_modes.get(key, mode)
        overrides = dict(r.get("raw_overrides") or {})
        if not r.get("topic"):
            overrides.setdefault("domain", "")
        finished = _dt(r.get("finished_at"))
        values = {
            "topic": topics[r.get("topic") or UNKNOWN_TOPIC],
            "mode": mode or "",
            "model_1": model_1,
            "model_2": model_2,
            "status": Task.Status.COMPLETED if finished else Task.Status.CHOSEN,
            "calibration_score": _nn(r.get("calibration_score")),
            "finished_at": finished,
            "summary": r.get("summary") or "",
            "understand_before": _nn(r.get("understand_before")),
            "understand_after": _nn(r.get("understand_after")),
            "copy_sentence": r.get("copy_sentence") or "",
            "feedback": r.get("feedback") or "",
            "query_copy": r.get("query_copy") or "",
            "llm_response_copy": r.get("llm_response_copy") or "",
            "raw_overrides": overrides,
            "extra": {"duplicates": r.get("duplicates") or [], "in_task_table": bool(r)},
        }
        _stage(existing.get(key), values, new, changed, Task, worker=workers[key[0]], release_task_id=key[1])
    Task.objects.bulk_create(new, batch_size=500)
    if changed:
        Task.objects.bulk_update(changed, list(TASK_FIELDS), batch_size=500)
    return _release_tasks(workers)


def _release_tasks(workers: dict[str, Worker]) -> dict[tuple[str, int], Task]:
    qs = Task.objects.filter(worker__in=workers.values(), release_task_id__isnull=False)
    return {(t.worker.pseudonym, t.release_task_id): t for t in qs.select_related("worker")}


TURN_FIELDS = (
    "task", "index", "query", "bullet_instruction", "model_1", "model_2", "response_1",
    "response_2", "error_1", "error_2", "likert_1", "likert_2", "preferred",
    "better_than_previous", "asked_at", "raw_overrides",
)


def _import_turns(queries: pd.DataFrame, tasks: dict[tuple[str, int], Task]) -> int:
    if not len(queries):
        return 0
    records = queries.sort_values("query_id").to_dict("records")
    index_of: Counter = Counter()
    existing = {
        t.release_query_id: t
        for t in Turn.objects.filter(release_query_id__in=[r["query_id"] for r in records])
    }
    old_index = {t.pk: t.index for t in existing.values()}
    new, changed = [], []
    for r in records:
        task = tasks[(r["worker"], r["task_id"])]
        idx = index_of[task.pk]
        index_of[task.pk] += 1
        values = {
            "task": task,
            "index": idx,
            "query": r["query"],
            "bullet_instruction": bool(r["bullet_instruction"]),
            "model_1": r["model_1"],
            "model_2": r["model_2"],
            "response_1": r["response_1"],
            "response_2": r["response_2"],
            "error_1": r["error_1"],
            "error_2": r["error_2"],
            "likert_1": _nn(r["likert_1"]),
            "likert_2": _nn(r["likert_2"]),
            "preferred": _nn(r["preferred"]),
            "better_than_previous": _nn(r["better_than_previous"]),
            "asked_at": _dt(r["asked_at"]),
            "raw_overrides": r.get("raw_overrides") or {},
        }
        _stage(existing.get(r["query_id"]), values, new, changed, Turn, release_query_id=r["query_id"])
    # A turn whose position changed (the release gained a query) is first parked on an unused
    # index, so the unique (task, index) constraint never sees two turns on one index mid-update.
    moved = [t for t in changed if t.index != old_index[t.pk]]
    if moved:
        targets = {t.pk: t.index for t in moved}
        for k, t in enumerate(moved):
            t.index = 16000 + k
        Turn.objects.bulk_update(moved, ["index"], batch_size=500)
        for t in moved:
            t.index = targets[t.pk]
    if changed:
        Turn.objects.bulk_update(changed, list(TURN_FIELDS), batch_size=500)
    Turn.objects.bulk_create(new, batch_size=500)
    return len(records)


# --------------------------------------------------------------------------- trajectories
def _store_task_chunks(task: Task, parsed: dict[str, Any]) -> None:
    """Replace the task's chunks with the parsed blocks, atomically."""
    chunks = [
        TrajectoryChunk(
            task=task,
            seq=RELEASE_SEQ[key],
            source=TrajectoryChunk.Source.RELEASE,
            n_samples=b["n_samples"],
            first_ms=b["first_ms"],
            last_ms=b["last_ms"],
            streams=b["streams"],
            data=b["data"],
            digest=b["digest"],
        )
        for key, b in sorted(parsed["blocks"].items(), key=lambda kv: RELEASE_SEQ[kv[0]])
    ]
    files = {
        "rel_columns": parsed["rel_columns"],
        "unquoted": parsed["unquoted"],
        "duplicates_dropped": parsed["duplicates_dropped"],
    }
    with transaction.atomic():
        TrajectoryChunk.objects.filter(task=task).delete()
        TrajectoryChunk.objects.bulk_create(chunks)
        task.extra = {**task.extra, "release_files": files}
        if not task.mode:
            task.mode = parsed["mode"]
        task.save(update_fields=["extra", "mode"])


def _parse_all(folders: list[Path], n_jobs: int) -> Iterable[dict[str, Any]]:
    from ..release.chunks import parse_task_folder

    if n_jobs <= 1 or len(folders) < 4:
        yield from map(parse_task_folder, folders)
        return
    import multiprocessing

    # "spawn": children must not inherit the parent's open database connection.
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(parse_task_folder, folders, chunksize=2)


# --------------------------------------------------------------------------- entry point
def release_import(
    *,
    path: str | Path,
    n_jobs: int = 2,
    progress: Callable[[int, int], None] | None = None,
    user=None,
    label: str = "",
) -> ImportSummary:
    """Import (or re-import) a release folder; returns counts and every problem found.

    ``progress(done, total)`` is called after each task folder (for a progress bar or a Job).
    ``label`` is what the import run shows as its source (the archive or upload the folder was
    unpacked from); the folder itself when empty.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    run = ImportRun.objects.create(path=(label or str(root))[:500], created_by=user)
    summary = ImportSummary(run_id=run.pk)
    tables = reader.read_release_tables(root)
    summary.problems.extend(tables.problems)
    task_dirs = list(reader.iter_task_dirs(root))
    folder_modes = {(w, t): reader.task_mode(d) for w, t, d in task_dirs}

    ids = {w for w, _ in folder_modes}
    for df in (tables.workers, tables.tasks, tables.queries):
        if len(df) and "worker" in df:
            ids |= set(df["worker"])
    with transaction.atomic():
        workers = _import_workers(tables, ids)
        tasks = _import_tasks(tables, workers, folder_modes)
        n_turns = _import_turns(tables.queries, tasks)
    summary.counts.update(
        workers=len(workers),
        tasks=len(tasks),
        turns=n_turns,
        provider_errors_set_apart=int(
            (tables.queries["error_1"] != "").sum() + (tables.queries["error_2"] != "").sum()
        )
        if len(tables.queries)
        else 0,
    )
    total = len(task_dirs)
    folders = [d for _, _, d in task_dirs]
    for done, parsed in enumerate(_parse_all(folders, n_jobs), start=1):
        task = tasks[(parsed["worker"], parsed["task_id"])]
        _store_task_chunks(task, parsed)
        summary.problems.extend(parsed["problems"])
        summary.counts["task_folders"] += 1
        summary.counts["samples"] += parsed["n_samples"]
        summary.counts["duplicate_abs_gaze_rows_dropped"] += parsed["duplicates_dropped"]
        if progress:
            progress(done, total)
    run.finished_at = timezone.now()
    run.summary = summary.as_dict()
    run.problems = "\n".join(str(p) for p in summary.problems[:5000])
    run.save()
    return summary
