"""A gaze batch that arrives while a withdrawal deletes its task is refused as "no such task"
(404, which the page's logger treats as a gone session), never a 500, and stores nothing.

Transactional: in autocommit PostgreSQL checks the foreign key at the INSERT, as in a request.
"""

from __future__ import annotations

import pytest

from collection.models import Task, TrajectoryChunk, Turn
from collection.services.trajectory import TaskGone, trajectory_batch_ingest, trajectory_batch_ingest_owned
from tests.support.site_tasks import sample_columns, site_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_for_a_task_deleted_meanwhile_is_task_gone_not_an_integrity_error() -> None:
    task = site_task(name="leaving", chunk_sizes=(10,))
    turn = Turn.objects.filter(task=task).first()
    columns = sample_columns(turn=turn, n=5)
    stale = Task.objects.get(pk=task.pk)  # what the view loaded before the withdrawal committed
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(TaskGone):
        trajectory_batch_ingest(task=stale, seq=7, columns=columns)
    assert not TrajectoryChunk.objects.filter(task_id=task.pk).exists()


def test_a_batch_for_a_live_task_is_stored_and_a_fast_path_for_a_deleted_one_stores_nothing() -> None:
    task = site_task(name="staying", chunk_sizes=(10,))
    turn = Turn.objects.filter(task=task).first()
    result = trajectory_batch_ingest(task=task, seq=7, columns=sample_columns(turn=turn, n=5))
    assert result.created and TrajectoryChunk.objects.filter(task=task, seq=7).exists()
    worker_id, pk = task.worker_id, task.pk
    Task.objects.filter(pk=pk).delete()
    assert trajectory_batch_ingest_owned(task_id=pk, worker_id=worker_id, assignment_id="", holder="h", seq=8,
                                         columns=sample_columns(turn=turn, n=5), turn_ids=set()) is None
