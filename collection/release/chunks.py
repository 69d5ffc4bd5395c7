"""Parse one release task folder into encoded trajectory blocks (runs in worker processes).

Kept apart from the Django importer so ``ProcessPoolExecutor`` children import nothing but
pandas/pyarrow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from . import reader, schema


def parse_task_folder(folder: str | Path) -> dict[str, Any]:
    """Read a task folder and encode one block per (signal, frame) stream.

    Returns plain data (picklable): ``blocks`` maps ``(signal, frame)`` to a dict with
    ``data`` (bytes), ``digest``, ``n_samples``, ``first_ms``, ``last_ms`` and ``streams``.
    """
    tt = reader.read_task_trajectories(folder)
    blocks = {}
    samples = tt.samples
    for (signal, frame), part in samples.groupby(["signal", "frame"], observed=True, sort=False):
        data = schema.encode_block(part)
        epoch = part["epoch_ms"].dropna()
        blocks[(str(signal), str(frame))] = {
            "data": data,
            "digest": hashlib.sha256(data).hexdigest(),
            "n_samples": len(part),
            "first_ms": int(epoch.min()) if len(epoch) else None,
            "last_ms": int(epoch.max()) if len(epoch) else None,
            "streams": schema.stream_summary(part),
        }
    return {
        "worker": tt.worker,
        "task_id": tt.task_id,
        "mode": tt.mode,
        "blocks": blocks,
        "n_samples": len(samples),
        "rel_columns": tt.rel_columns,
        "unquoted": tt.unquoted,
        "duplicates_dropped": tt.duplicates_dropped,
        "problems": tt.problems,
    }
