"""The chat's end and the achieved sampling rates, through the study APIs on the real database:
finishing the chat stores when it ended and the rates measured from the samples the server
holds (whatever the browser claims), completion measures them again with the late samples, and
QC's gap window ends at the chat's end, not after the post-task questions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse

from collection.models import Mode, Task, Turn
from collection.sampling import achieved_rates
from collection.selectors import task_samples
from collection.sentences import split_sentences
from crowd import qc
from crowd.services import task_qc_compute

from .test_batches import make_columns, post
from .test_site_qc import ask, rate

pytestmark = pytest.mark.django_db


def _columns(turn_id: int, t0: int, seconds: float, *, gaze_hz: float, mouse_hz: float) -> dict[str, list]:
    """Abs rows of gaze at ``gaze_hz`` and mouse at ``mouse_hz`` for ``seconds`` from ``t0``."""
    cols = make_columns(0)
    for signal, hz in (("gaze", gaze_hz), ("mouse", mouse_hz)):
        step = 1000.0 / hz
        for i in range(int(seconds * hz) + 1):
            row = {"signal": signal, "frame": "abs", "x": 10.0, "y": 10.0, "snippet": None, "char_index": None,
                   "page_timer_ms": step * i, "head_in_box": signal == "gaze" or None,
                   "epoch_ms": t0 + int(step * i), "turn_id": turn_id, "viewport_w": 1280, "viewport_h": 800,
                   "box_left": None, "box_top": None, "box_width": None, "box_height": None,
                   "scroll_left": 0.0, "scroll_top": 0.0, "no_face": False}
            for k, v in row.items():
                cols[k].append(v)
    return cols


def _chat(client, task: Task, t0: int) -> None:
    """Three rated turns and 30 s of samples at 4 Hz gaze / 10 Hz mouse."""
    for k in range(3):
        turn_id = ask(client, task, k)
        body = {"seq": k, "idempotency_key": f"rates:{task.pk}:{k}",
                "columns": _columns(turn_id, t0 + 10_000 * k, 9.9, gaze_hz=4.0, mouse_hz=10.0)}
        assert post(client, task, body).status_code == 201
        rate(client, task, turn_id, k)


def test_chat_end_and_achieved_rates_stored_and_gap_window(chatting) -> None:
    client, task = chatting
    Task.objects.filter(pk=task.pk).update(mode=Mode.POINTWISE, model_2="")
    t0 = int(time.time() * 1000) - 40_000
    _chat(client, task, t0)
    r = client.post(reverse("collection:api_finish", kwargs={"task_id": task.pk}))
    assert r.status_code == 200, r.content
    task.refresh_from_db()
    assert task.status == Task.Status.POST_TASK and task.chat_ended_at is not None
    # Measured on the server from the stored samples: 4 Hz of gaze and 10 Hz of mouse.
    assert task.gaze_rate_hz == pytest.approx(4.0, abs=0.1) and task.mouse_rate_hz == pytest.approx(10.0, abs=0.1)
    assert task.gaze_rate_hz == pytest.approx(achieved_rates(task_samples(task=task))["gaze_rate_hz"])

    # The page's last samples arrive after the chat ended: completion measures again.
    turn = Turn.objects.filter(task=task).order_by("-pk").first()
    late = {"seq": 3, "idempotency_key": f"rates:{task.pk}:3",
            "columns": _columns(turn.pk, t0 + 30_000, 4.9, gaze_hz=10.0, mouse_hz=10.0)}
    assert post(client, task, late).status_code == 201
    page = reverse("collection:post_task", args=[task.pk])
    assert client.post(page, {"summary": "I learned how it started and what critics say."}).status_code == 302
    assert client.post(page, {"understand_before": 2, "understand_after": 4}).status_code == 302
    # one sentence of the answer (a bullet answer: one line), as the copy rule asks
    sentence = split_sentences(Turn.objects.filter(task=task).first().response_1)[0].lstrip("- ")
    r = client.post(page, {"copy_sentence": sentence, "feedback": "fine"})
    assert r.status_code == 302, r.content.decode()[:500]
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.gaze_rate_hz == pytest.approx((120 + 50 - 1) / 34.9, abs=0.05)  # 4 Hz for 30 s, then 10 Hz

    # The worker spent 4 minutes on the post-task questions: not a gap in the logs. The chat ended
    # a second after the last sample (server clock = the test's clock here).
    last_ms = t0 + 30_000 + 4_900
    chat_end = task.chat_ended_at
    Task.objects.filter(pk=task.pk).update(
        chat_ended_at=chat_end.fromtimestamp((last_ms + 1000) / 1000, tz=chat_end.tzinfo),
        finished_at=chat_end.fromtimestamp((last_ms + 1000) / 1000, tz=chat_end.tzinfo) + timedelta(minutes=4),
    )
    task.refresh_from_db()
    row = task_qc_compute(task=task, thresholds=dict(qc.DEFAULT_THRESHOLDS))
    assert row.max_log_gap_s == pytest.approx(1.0, abs=0.05)
    assert "max_log_gap_s" not in {r["code"] for r in row.reasons}
    assert row.metrics["gaze_rate_hz"] == pytest.approx(task.gaze_rate_hz)
    assert row.metrics["mouse_rate_hz"] == pytest.approx(task.mouse_rate_hz)

    # The same task whose chat went on 40 s after its last sample (data lost): that gap flags.
    Task.objects.filter(pk=task.pk).update(chat_ended_at=task.chat_ended_at + timedelta(seconds=40))
    task.refresh_from_db()
    row = task_qc_compute(task=task, thresholds=dict(qc.DEFAULT_THRESHOLDS))
    assert "max_log_gap_s" in {r["code"] for r in row.reasons}
