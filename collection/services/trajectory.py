"""Storing gaze/mouse batches sent by the browser: each batch exactly once.

A batch becomes one :class:`TrajectoryChunk` whose ``seq`` is the browser's batch number. The
unique (task, seq) constraint makes a re-sent batch harmless; its digest tells a genuine re-send
(same samples: acknowledged again) from a different batch that reused the number (refused with
409 so the browser renumbers it instead of silently losing it).
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass

import pyarrow as pa
from django.db import IntegrityError, connection, transaction

from ..models import Task, TrajectoryChunk
from ..release import schema


class BatchConflict(Exception):
    """A different batch with this number is already stored for the task."""


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


def trajectory_batch_ingest(*, task: Task, seq: int, columns: dict[str, pa.Array]) -> IngestResult:
    """Store one validated batch of samples for ``task`` under number ``seq``, at most once.

    Returns ``created=False`` for a re-send of the stored batch; raises :class:`BatchConflict`
    when a different batch holds ``seq``. ``turn_id`` values must belong to ``task`` (checked by
    the caller's serializer).
    """
    received_ms = int(time.time() * 1000)
    digest = batch_digest(columns)
    table = _table(columns, received_ms)
    epoch = table["epoch_ms"]
    chunk = TrajectoryChunk(
        task=task,
        seq=seq,
        source=TrajectoryChunk.Source.SITE,
        n_samples=table.num_rows,
        first_ms=pa.compute.min(epoch).as_py(),
        last_ms=pa.compute.max(epoch).as_py(),
        streams=_streams(table),
        data=_ipc(table, _IPC_OPTIONS),
        digest=digest,
    )
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
        if stored is None:  # the integrity error was something else
            raise
        if stored[1] != digest:
            raise BatchConflict(f"batch {seq} of task {task.pk} is already stored with other samples") from None
        return IngestResult(chunk_id=stored[0], seq=seq, n_samples=stored[2], created=False)
    return IngestResult(chunk_id=chunk.pk, seq=seq, n_samples=chunk.n_samples, created=True)
