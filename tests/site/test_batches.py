"""Gaze/mouse batches: validated field by field, stored exactly once, only for one's own tasks."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import Task, TrajectoryChunk, Turn
from collection.selectors import task_samples
from collection.services import study

from .conftest import complete_profile, enter_lab

pytestmark = pytest.mark.django_db


def make_columns(n: int = 6, *, turn_id: int | None = None, t0: int | None = None) -> dict[str, list]:
    t0 = t0 or int(time.time() * 1000)
    cols: dict[str, list] = {k: [] for k in (
        "signal", "frame", "x", "y", "snippet", "char_index", "page_timer_ms", "head_in_box", "epoch_ms",
        "turn_id", "viewport_w", "viewport_h", "box_left", "box_top", "box_width", "box_height",
        "scroll_left", "scroll_top", "no_face")}
    for i in range(n):
        no_face = i % 3 == 2
        row = {
            "signal": "gaze" if i % 2 == 0 else "mouse", "frame": "box1" if i % 2 else "abs",
            "x": None if no_face else 10.5 + i, "y": None if no_face else 20.0,
            "snippet": "abc" if i % 2 else None, "char_index": 7 if i % 2 else None,
            "page_timer_ms": 1000.0 + 100 * i, "head_in_box": None if no_face else True,
            "epoch_ms": t0 + 100 * i, "turn_id": turn_id, "viewport_w": 1280, "viewport_h": 800,
            "box_left": 50.0 if i % 2 else None, "box_top": 100.0 if i % 2 else None,
            "box_width": 600.0 if i % 2 else None, "box_height": 400.0 if i % 2 else None,
            "scroll_left": 0.0, "scroll_top": 12.0, "no_face": no_face,
        }
        for k, v in row.items():
            cols[k].append(v)
    return cols


def post(client: Client, task, body, **kw):
    return client.post(reverse("collection:api_batches", kwargs={"task_id": task.pk}), json.dumps(body),
                       content_type=kw.pop("content_type", "application/json"), **kw)


def test_batch_stored_once_and_resend_acknowledged(chatting):
    client, task = chatting
    turn = study.turn_create(task=task, query="q")
    body = {"seq": 0, "idempotency_key": "k:0", "columns": make_columns(turn_id=turn.pk)}
    r1 = post(client, task, body)
    r2 = post(client, task, body)
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json() == {"seq": 0, "n_samples": 6, "created": True}
    assert r2.json()["created"] is False
    assert TrajectoryChunk.objects.filter(task=task).count() == 1
    df = task_samples(task=task)
    assert len(df) == 6
    assert list(df["no_face"]) == [False, False, True, False, False, True]
    assert df["x"].isna().sum() == 2 and df["turn_id"].eq(turn.pk).all()
    assert df.loc[1, "snippet"] == "abc" and df.loc[1, "char_index"] == 7
    assert df["received_ms"].notna().all() and list(df["row"]) == list(range(6))
    chunk = TrajectoryChunk.objects.get(task=task)
    assert chunk.streams["gaze/abs"]["count"] == 3 and chunk.source == "site"


def test_conflicting_resend_is_409_and_nothing_changes(chatting):
    client, task = chatting
    post(client, task, {"seq": 5, "columns": make_columns()})
    before = TrajectoryChunk.objects.get(task=task, seq=5).digest
    other = make_columns()
    other["x"][0] = 999.0
    r = post(client, task, {"seq": 5, "columns": other})
    assert r.status_code == 409 and r.json()["code"] == "seq_conflict"
    assert TrajectoryChunk.objects.get(task=task, seq=5).digest == before


@pytest.mark.parametrize(
    ("column", "index", "value", "message"),
    [
        ("x", 3, "left", "a number is required"),
        ("x", 0, True, "a number is required"),
        ("epoch_ms", 2, 12.5, "an integer is required"),
        ("epoch_ms", 1, 5, "must be at least"),
        ("signal", 4, "eyes", "must be one of"),
        ("no_face", 1, None, "may not be null"),
        ("char_index", 1, -3, "must be at least 0"),
        ("snippet", 1, "z" * 600, "at most 500 characters"),
        ("viewport_w", 0, [1], "an integer is required"),
    ],
)
def test_field_errors_name_the_column_and_item(chatting, column, index, value, message):
    client, task = chatting
    cols = make_columns()
    cols[column][index] = value
    r = post(client, task, {"seq": 1, "columns": cols})
    assert r.status_code == 400
    errors = r.json()["columns"][column]
    assert errors[0].startswith(f"item {index}:") and message in errors[0]
    assert not TrajectoryChunk.objects.exists()


def test_missing_column_uneven_lengths_and_bad_envelope(chatting):
    client, task = chatting
    cols = make_columns()
    del cols["y"]
    assert "y" in post(client, task, {"seq": 1, "columns": cols}).json()["columns"]
    cols = make_columns()
    cols["y"].append(1.0)
    assert "y" in post(client, task, {"seq": 1, "columns": cols}).json()["columns"]
    assert "seq" in post(client, task, {"seq": -1, "columns": make_columns()}).json()
    r = client.post(reverse("collection:api_batches", kwargs={"task_id": task.pk}), "{not json",
                    content_type="application/json")
    assert r.status_code == 400
    assert not TrajectoryChunk.objects.exists()


def test_turn_of_another_task_is_refused(chatting, topics):
    client, task = chatting
    other = Client()
    enter_lab(other, "someone-else")
    complete_profile(other)
    w = study.worker_get_or_create(platform="lab", platform_worker_id="someone-else")
    (their_task,) = study.tasks_create_for_topics(worker=w, topic_ids=[topics[-1].pk], offered=[topics[-1].pk],
                                                  entry=study.Entry(platform="lab"))
    their_turn = Turn.objects.create(task=their_task, index=0, query="x")
    r = post(client, task, {"seq": 0, "columns": make_columns(turn_id=their_turn.pk)})
    assert r.status_code == 400 and "turn_id" in r.json()["columns"]
    assert post(other, task, {"seq": 0, "columns": make_columns()}).status_code == 404
    assert post(Client(), task, {"seq": 0, "columns": make_columns()}).status_code == 403
    assert not TrajectoryChunk.objects.exists()


def test_beacon_with_csrf_param_and_text_plain(chatting):
    client, task = chatting
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    client.get(reverse("collection:chat", args=[task.pk]))  # sets the CSRF cookie
    strict.cookies = client.cookies
    token = client.cookies["csrftoken"].value
    url = reverse("collection:api_batches", kwargs={"task_id": task.pk})
    body = json.dumps({"seq": 3, "columns": make_columns()})
    assert strict.post(url, body, content_type="text/plain").status_code == 403
    r = strict.post(f"{url}?csrf_token={token}", body, content_type="text/plain")
    assert r.status_code == 201, r.content
    assert TrajectoryChunk.objects.filter(task=task, seq=3).exists()


def test_valid_batch_is_one_statement_after_the_session(chatting):
    """The common case: ownership, holder and turn checks and the INSERT in one statement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client, task = chatting
    turn = study.turn_create(task=task, query="q")
    with CaptureQueriesContext(connection) as queries:
        r = post(client, task, {"seq": 3, "columns": make_columns(turn_id=turn.pk)})
    assert r.status_code == 201 and r.json() == {"seq": 3, "n_samples": 6, "created": True}
    sql = [q["sql"].split()[0] for q in queries.captured_queries]
    assert sql == ["SELECT", "INSERT"], queries.captured_queries  # the session, then the batch
    chunk = TrajectoryChunk.objects.get(task=task, seq=3)
    assert chunk.streams["gaze/abs"]["count"] == 3 and chunk.n_samples == 6 and len(chunk.digest) == 64
    df = task_samples(task=task)
    assert df["turn_id"].eq(turn.pk).all() and list(df["row"]) == list(range(6))
    # A re-send takes the full path and is acknowledged, not stored twice.
    again = {"seq": 3, "columns": make_columns(turn_id=turn.pk, t0=chunk.first_ms)}
    assert post(client, task, again).status_code == 200
    assert TrajectoryChunk.objects.filter(task=task).count() == 1


def test_valid_batches_the_one_statement_must_not_store(chatting, topics):
    """What the one statement refuses falls back to the full path's precise answers."""
    from collection.models import Worker

    client, task = chatting
    turn = study.turn_create(task=task, query="q")
    other = Client()
    enter_lab(other, "someone-else")
    complete_profile(other)
    w = Worker.objects.get(platform_worker_id="someone-else")
    (their_task,) = study.tasks_create_for_topics(worker=w, topic_ids=[topics[-1].pk], offered=[topics[-1].pk],
                                                  entry=study.Entry(platform="lab"))
    their_turn = Turn.objects.create(task=their_task, index=0, query="x")
    # one own turn and one foreign turn in the same batch
    cols = make_columns(turn_id=turn.pk)
    cols["turn_id"][-1] = their_turn.pk
    r = post(client, task, {"seq": 0, "columns": cols})
    assert r.status_code == 400 and "turn_id" in r.json()["columns"]
    assert post(other, task, {"seq": 0, "columns": make_columns()}).status_code == 404
    # another browser session of the same worker: the task is held by the first one
    from django.contrib.sessions.backends.db import SessionStore

    copy = SessionStore()
    copy.update({**client.session, "ifllm.holder": "f" * 32})
    copy.create()
    second = Client()
    second.cookies["sessionid"] = copy.session_key
    r = post(second, task, {"seq": 0, "columns": make_columns()})
    assert r.status_code == 403 and r.json()["code"] == "moved"
    # a blocked worker stores nothing either
    type(task.worker).objects.filter(pk=task.worker_id).update(blocked=True)
    assert post(client, task, {"seq": 0, "columns": make_columns()}).status_code == 404
    assert not TrajectoryChunk.objects.exists()


@pytest.mark.parametrize("status", [Task.Status.COMPLETED, Task.Status.ABANDONED])
def test_finished_task_takes_batches_only_for_a_grace_period(chatting, status):
    """Issue 22, item 10: completed and abandoned tasks kept accepting gaze batches indefinitely.
    Now the page's last batches within BATCH_GRACE_S of the end are stored; later ones are
    refused (403, the logger then stops), except a re-send of a batch already stored."""
    from datetime import timedelta

    from django.utils import timezone

    from collection.services.trajectory import BATCH_GRACE_S

    client, task = chatting
    now_ms = int(time.time() * 1000)
    post(client, task, {"seq": 0, "columns": make_columns()})
    Task.objects.filter(pk=task.pk).update(status=status, finished_at=timezone.now())
    assert post(client, task, {"seq": 1, "columns": make_columns(t0=now_ms + 10_000)}).status_code == 201  # just after
    Task.objects.filter(pk=task.pk).update(finished_at=timezone.now() - timedelta(seconds=BATCH_GRACE_S + 1))
    r = post(client, task, {"seq": 2, "columns": make_columns(t0=now_ms + 20_000)})
    assert r.status_code == 403 and r.json()["code"] == "task_closed"
    assert post(client, task, {"seq": 1, "columns": make_columns(t0=now_ms + 10_000)}).status_code == 200  # re-send
    assert TrajectoryChunk.objects.filter(task=task).count() == 2
