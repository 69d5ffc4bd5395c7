"""Site tasks built through the site's own services (turns, trajectory batches), for staff-page tests.

The batches go through ``trajectory_batch_ingest``, the service the sample upload API calls, so
chunks carry the same metadata (counts, spans per stream) as chunks of a real session.
"""

from __future__ import annotations

import pyarrow as pa

from collection.models import Task, Topic, Turn, Worker
from collection.services.trajectory import trajectory_batch_ingest


def sample_columns(*, turn: Turn, n: int, t0_ms: int = 1_700_000_000_000) -> dict[str, pa.Array]:
    """``n`` gaze samples on response 1 of ``turn``, 50 ms apart, in the upload API's columns."""
    text = turn.response_1 or "x"
    return {
        "signal": pa.array(["gaze"] * n),
        "frame": pa.array(["box1"] * n),
        "x": pa.array([float(10 + i % 50) for i in range(n)]),
        "y": pa.array([float(20 + i % 30) for i in range(n)]),
        "snippet": pa.array([text[:10]] * n),
        "char_index": pa.array([i % len(text) for i in range(n)], type=pa.int32()),
        "page_timer_ms": pa.array([50.0 * i for i in range(n)]),
        "head_in_box": pa.array([1] * n, type=pa.int8()),
        "epoch_ms": pa.array([t0_ms + 50 * i for i in range(n)], type=pa.int64()),
        "turn_id": pa.array([turn.pk] * n, type=pa.int64()),
        "viewport_w": pa.array([1366] * n, type=pa.int32()),
        "viewport_h": pa.array([768] * n, type=pa.int32()),
        "box_left": pa.array([100.0] * n, type=pa.float32()),
        "box_top": pa.array([200.0] * n, type=pa.float32()),
        "box_width": pa.array([600.0] * n, type=pa.float32()),
        "box_height": pa.array([300.0] * n, type=pa.float32()),
        "scroll_left": pa.array([0.0] * n, type=pa.float32()),
        "scroll_top": pa.array([0.0] * n, type=pa.float32()),
        "no_face": pa.array([False] * n),
    }


def site_task(
    *, name: str, n_turns: int = 1, chunk_sizes: tuple[int, ...] = (40,), mode: str = "pointwise"
) -> Task:
    """A completed site task of a new worker with ``n_turns`` rated turns and one batch per
    entry of ``chunk_sizes`` (all on the first turn)."""
    worker = Worker.objects.create(pseudonym=f"site-{name}", platform="lab", consent=True)
    topic, _ = Topic.objects.get_or_create(title=f"Topic of {name}")
    pairwise = mode == "pairwise"
    task = Task.objects.create(
        worker=worker, topic=topic, mode=mode, model_1="demo-a", model_2="demo-b" if pairwise else "",
        status=Task.Status.COMPLETED, calibration_score=80.0, summary="The answers explained it well.",
    )
    turns = [
        Turn.objects.create(
            task=task, index=i, query=f"Question {i} about {name}?", model_1="demo-a",
            response_1=f"Answer {i}: " + "words on the screen " * 20, likert_1=4,
            model_2="demo-b" if pairwise else "", response_2=("Other answer " * 20) if pairwise else "",
            likert_2=3 if pairwise else None, preferred=1 if pairwise else None,
        )
        for i in range(n_turns)
    ]
    t0 = 1_700_000_000_000
    for seq, size in enumerate(chunk_sizes):
        trajectory_batch_ingest(task=task, seq=seq, columns=sample_columns(turn=turns[0], n=size, t0_ms=t0))
        t0 += 50 * size
    return task
