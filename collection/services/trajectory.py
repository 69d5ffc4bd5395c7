"""Storing gaze/mouse batches sent by the browser: each batch exactly once.

A batch becomes one :class:`TrajectoryChunk` whose ``seq`` is the browser's batch number. The
unique (task, seq) constraint makes a re-sent batch harmless; its digest tells a genuine re-send
(same samples: acknowledged again) from a different batch that reused the number (refused with
409 so the browser renumbers it instead of silently losing it).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
from django.db import IntegrityError, connection, transaction

from ..models import Task, TrajectoryChunk, Turn, Worker
from ..release import schema


class BatchConflict(Exception):
    """A different batch with this number is already stored for the task."""


class TaskGone(Exception):
    """The task was deleted (a withdrawal) while its batch was on the way: nothing was stored."""


@dataclass(frozen=True)
class IngestResult:
    chunk_id: int
    seq: int
    n_samples: int
    created: bool  #: False when this was a re-send of a stored batch


#: LZ4, not the zstd of release blocks: Arrow compresses each buffer of a block on its own, and
#: for a 300-sample batch (~60 small buffers) zstd's per-buffer set-up made it 1.6 ms per batch
#: against 0.16 ms for LZ4 (7.6 kB vs 10 kB stored). Readers need no change: the codec is
#: recorded in the IPC stream. No threads: a batch is too small to gain from them, and under
#: load the hand-offs only add latency.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
#: Columns the browser sends; ``row`` and ``received_ms`` are added here.
CLIENT_COLUMNS = tuple(c for c in schema.COLUMNS if c not in ("row", "received_ms"))


def _ipc(table: pa.Table, options: pa.ipc.IpcWriteOptions) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _table(columns: dict[str, pa.Array], received_ms: int) -> pa.Table:
    """The block in ``schema.SCHEMA`` (what ``schema.decode_block`` reads), without pandas."""
    n = len(columns["signal"])
    arrays = []
    for field in schema.SCHEMA:
        if field.name == "row":
            arr = pa.array(range(n), type=pa.int32())
        elif field.name == "received_ms":
            arr = pa.array([received_ms] * n, type=pa.int64())
        elif pa.types.is_dictionary(field.type):
            arr = columns[field.name].dictionary_encode().cast(field.type)
        else:
            arr = columns[field.name].cast(field.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema.SCHEMA)


def batch_digest(columns: dict[str, pa.Array]) -> str:
    """SHA-256 of the samples as sent (each column's Arrow buffers, fixed order): equal for re-sends.

    The columns are freshly built from the request, so their buffers hold exactly the values
    (no slices with foreign bytes); hashing them avoids serialising the batch a second time.
    """
    h = hashlib.sha256()
    for name in CLIENT_COLUMNS:
        arr = columns[name]
        h.update(f"{name}:{arr.type}:{len(arr)}:{arr.null_count};".encode())
        for buf in arr.buffers():
            if buf is not None:
                h.update(buf)
    return h.hexdigest()


def _streams(table: pa.Table) -> dict[str, dict[str, int | None]]:
    """Same content as ``schema.stream_summary`` (count, first/last epoch ms per signal/frame)."""
    key = pa.compute.binary_join_element_wise(
        table["signal"].combine_chunks().cast(pa.string()), table["frame"].combine_chunks().cast(pa.string()), "/"
    ).dictionary_encode()
    codes = key.indices.to_numpy(zero_copy_only=False)
    epoch = table["epoch_ms"].combine_chunks().to_numpy(zero_copy_only=False)
    out = {}
    for i, name in enumerate(key.dictionary.to_pylist()):
        sel = epoch[codes == i]
        out[name] = {"count": int(sel.size), "first_ms": int(sel.min()), "last_ms": int(sel.max())}
    return dict(sorted(out.items()))


def _chunk_values(columns: dict[str, pa.Array]) -> dict:
    """The stored fields of a batch's chunk (everything but task and seq)."""
    received_ms = int(time.time() * 1000)
    table = _table(columns, received_ms)
    epoch = table["epoch_ms"]
    return {
        "source": TrajectoryChunk.Source.SITE,
        "n_samples": table.num_rows,
        "first_ms": pa.compute.min(epoch).as_py(),
        "last_ms": pa.compute.max(epoch).as_py(),
        "streams": _streams(table),
        "data": _ipc(table, _IPC_OPTIONS),
        "digest": batch_digest(columns),
    }


def _owned_insert_sql() -> str:
    """One statement: insert the chunk if the task is the caller's and may take it, else nothing.

    The conditions are those of ``StudyApi.own_task`` and of the turn check, so a row comes back
    exactly when the slow path would have stored the batch: the task is the session's worker's,
    of the session's assignment, the worker is not blocked, an open task is held by this session,
    every ``turn_id`` is a turn of the task, and no batch holds ``seq`` yet.
    """
    chunk, task, worker, turn = (m._meta.db_table for m in (TrajectoryChunk, Task, Worker, Turn))
    return f"""
        INSERT INTO {chunk} (task_id, seq, source, n_samples, first_ms, last_ms, streams, data, digest, received_at)
        SELECT t.id, %(seq)s, %(source)s, %(n_samples)s, %(first_ms)s, %(last_ms)s, %(streams)s::jsonb, %(data)s,
               %(digest)s, %(now)s
        FROM {task} t JOIN {worker} w ON w.id = t.worker_id
        WHERE t.id = %(task_id)s AND t.worker_id = %(worker_id)s AND NOT w.blocked
          AND t.assignment_id = %(assignment_id)s
          AND (t.status <> ALL(%(open)s) OR (t.holder <> '' AND t.holder = %(holder)s))
          AND (t.status = ANY(%(open)s) OR t.finished_at > %(closed_after)s)
          AND (SELECT count(*) FROM {turn} u WHERE u.task_id = t.id AND u.id = ANY(%(turn_ids)s))
              = %(n_turns)s
        ON CONFLICT (task_id, seq) DO NOTHING
        RETURNING id"""


def trajectory_batch_ingest_owned(
    *, task_id: int, worker_id: int, assignment_id: str, holder: str | None, seq: int,
    columns: dict[str, pa.Array], turn_ids: set[int],
) -> IngestResult | None:
    """The common case of a batch in one round trip: ownership, holder and turn checks and the
    INSERT in a single statement (PostgreSQL only).

    Returns the stored batch, or None when anything is off (not the caller's task, held by
    another session or not yet held, a foreign turn, a re-sent or conflicting ``seq``, not
    PostgreSQL): the caller then takes the full path (``own_task``, the turn check,
    :func:`trajectory_batch_ingest`), which gives the precise answer. A None stores nothing, so
    the full path keeps its exactly-once guarantee.
    """
    if connection.vendor != "postgresql" or not holder:
        return None
    from django.utils import timezone

    from .study import OPEN_STATUSES

    values = _chunk_values(columns)
    params = {
        **values, "streams": json.dumps(values["streams"]), "now": timezone.now(), "seq": seq,
        "task_id": task_id, "worker_id": worker_id, "assignment_id": assignment_id, "holder": holder,
        "open": [str(s) for s in OPEN_STATUSES], "turn_ids": sorted(turn_ids), "n_turns": len(turn_ids),
        "closed_after": timezone.now() - timedelta(seconds=BATCH_GRACE_S),
    }
    try:
        with connection.cursor() as cursor:
            cursor.execute(_owned_insert_sql(), params)
            row = cursor.fetchone()
    except IntegrityError:
        # The task was deleted by a withdrawal committed while this INSERT waited on its row: the
        # full path answers precisely (no such task). Inside a caller's transaction the error
        # has broken it, so it is theirs to handle.
        if connection.in_atomic_block:
            raise
        return None
    if row is None:
        return None
    return IngestResult(chunk_id=row[0], seq=seq, n_samples=values["n_samples"], created=True)


#: How long a finished (completed or abandoned) task still takes batches: the page's last
#: batches and its exit beacon arrive just after the last step. Later ones are refused (409).
BATCH_GRACE_S = 300


def trajectory_batch_window_open(task: Task) -> bool:
    """Whether ``task`` still takes batches: open, or finished less than ``BATCH_GRACE_S`` ago."""
    from django.utils import timezone

    from .study import OPEN_STATUSES

    if task.status in OPEN_STATUSES:
        return True
    return task.finished_at is not None and timezone.now() - task.finished_at <= timedelta(seconds=BATCH_GRACE_S)


def trajectory_batch_stored(*, task: Task, seq: int, columns: dict[str, pa.Array]) -> IngestResult | None:
    """The stored batch ``seq`` of ``task`` if it holds exactly these samples (a re-send), else None."""
    stored = TrajectoryChunk.objects.filter(task=task, seq=seq).values_list("pk", "digest", "n_samples").first()
    if stored is None or stored[1] != batch_digest(columns):
        return None
    return IngestResult(chunk_id=stored[0], seq=seq, n_samples=stored[2], created=False)


def trajectory_batch_ingest(*, task: Task, seq: int, columns: dict[str, pa.Array]) -> IngestResult:
    """Store one validated batch of samples for ``task`` under number ``seq``, at most once.

    Returns ``created=False`` for a re-send of the stored batch; raises :class:`BatchConflict`
    when a different batch holds ``seq``. ``turn_id`` values must belong to ``task`` (checked by
    the caller's serializer).
    """
    chunk = TrajectoryChunk(task=task, seq=seq, **_chunk_values(columns))
    digest = chunk.digest
    try:
        # The unique (task, seq) constraint decides between "stored now" and "re-send". In
        # autocommit (a request) a failed INSERT leaves nothing behind, so no savepoint round
        # trips are spent; inside a caller's transaction one is needed to survive the error.
        if connection.in_atomic_block:
            with transaction.atomic():
                chunk.save(force_insert=True)
        else:
            chunk.save(force_insert=True)
    except IntegrityError:
        stored = TrajectoryChunk.objects.filter(task=task, seq=seq).values_list("pk", "digest", "n_samples").first()
        if stored is None:
            if not Task.objects.filter(pk=task.pk).exists():  # withdrawn while the batch was on the way
                raise TaskGone(f"task {task.pk} no longer exists") from None
            raise  # the integrity error was something else
        if stored[1] != digest:
            raise BatchConflict(f"batch {seq} of task {task.pk} is already stored with other samples") from None
        return IngestResult(chunk_id=stored[0], seq=seq, n_samples=stored[2], created=False)
    return IngestResult(chunk_id=chunk.pk, seq=seq, n_samples=chunk.n_samples, created=True)


def task_rates_store(*, task: Task) -> Task:
    """Measure the task's achieved gaze and mouse rates from its stored samples and store them.

    Called when the chat ends (the page sends its queued samples first) and again at completion
    (the last seconds of the chat arrive after the chat's end), so the figures come from what
    the server holds, never from what a browser reports.
    """
    from ..sampling import achieved_rates
    from ..selectors import task_samples

    rates = achieved_rates(task_samples(task=task))
    task.gaze_rate_hz, task.mouse_rate_hz = rates["gaze_rate_hz"], rates["mouse_rate_hz"]
    task.save(update_fields=["gaze_rate_hz", "mouse_rate_hz"])
    return task
