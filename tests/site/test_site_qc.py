"""QC on the site's own data, end to end through the study APIs: a task whose gaze reads the
answers passes the paper's two filters; one whose gaze stays off the answers fails both.

Site samples carry the page's turn id (matching rule ``turn_id``); the scores must still see
which samples were on answer text (issue 10, item 8: before, every site task failed with
"response score: not measured" and "max-index 0 < 0.3").
"""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from collection.models import Mode, Task, Turn
from crowd import qc
from crowd.services import task_qc_compute

from .test_batches import make_columns, post

pytestmark = pytest.mark.django_db

BOX = {"left": 50.0, "top": 200.0, "width": 600.0, "height": 400.0}


def _answer(client, task: Task, turn_id: int) -> None:
    async def run() -> None:
        ac = AsyncClient()
        ac.cookies = client.cookies
        r = await ac.post(reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": turn_id}))
        assert r.status_code == 200
        b"".join([chunk async for chunk in r.streaming_content])

    async_to_sync(run)()


def _reading_columns(turn: Turn, t0: int, n: int, *, reads: bool) -> dict[str, list]:
    """``n`` instants at 10 Hz of gaze and mouse, as the page's sampler writes them: an ``abs`` row
    and a ``box1`` row per signal. Reading: the gaze moves through the answer's characters from
    its start to its end. Looking away: the gaze stays above the box, off every text."""
    cols = make_columns(0)
    text = turn.response_1
    for i in range(n):
        char = int(i * (len(text) - 1) / max(1, n - 1))
        for signal in ("gaze", "mouse"):
            inside = reads or signal == "mouse"
            x, y = (BOX["left"] + 100.0, BOX["top"] + 50.0) if inside else (BOX["left"] + 100.0, 40.0)
            common = {"signal": signal, "page_timer_ms": 1000.0 + 100 * i, "head_in_box": True,
                      "epoch_ms": t0 + 100 * i, "turn_id": turn.pk, "viewport_w": 1280, "viewport_h": 800,
                      "no_face": False}
            rows = [
                {**common, "frame": "abs", "x": x, "y": y, "snippet": None, "char_index": None,
                 "box_left": None, "box_top": None, "box_width": None, "box_height": None,
                 "scroll_left": 0.0, "scroll_top": 0.0},
                {**common, "frame": "box1", "x": 100.0 if inside else -1.0, "y": 50.0 if inside else -1.0,
                 "snippet": text[max(0, char - 15): char + 15] if inside else None,
                 "char_index": char if inside else None, "box_left": BOX["left"], "box_top": BOX["top"],
                 "box_width": BOX["width"], "box_height": BOX["height"], "scroll_left": 0.0, "scroll_top": 0.0},
            ]
            for row in rows:
                for k, v in row.items():
                    cols[k].append(v)
    return cols


def ask(client, task: Task, k: int) -> int:
    """Turn ``k``: ask and stream its answer; returns the turn's id."""
    r = client.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}),
                    {"query": f"Question number {k}?"}, content_type="application/json")
    assert r.status_code == 201, r.content
    turn_id = r.json()["id"]
    _answer(client, task, turn_id)
    return turn_id


def rate(client, task: Task, turn_id: int, k: int) -> None:
    """Rate turn ``k`` (4 stars; from the second turn on also "better than the previous")."""
    ratings = {"likert_1": 4} | ({"better_than_previous": True} if k else {})
    r = client.post(reverse("collection:api_turn_rate", kwargs={"task_id": task.pk, "turn_id": turn_id}),
                    json.dumps(ratings), content_type="application/json")
    assert r.status_code == 200, r.content


def _run_task(client, task: Task, *, reads: bool) -> Task:
    """Three turns: ask, stream the answer, send the gaze batch, rate; then finish the chat."""
    t0 = int(time.time() * 1000)
    for k in range(3):
        turn_id = ask(client, task, k)
        turn = Turn.objects.get(pk=turn_id)
        assert turn.response_1
        body = {"seq": k, "idempotency_key": f"qc:{task.pk}:{k}",
                "columns": _reading_columns(turn, t0 + 20_000 * k, 100, reads=reads)}
        r = post(client, task, body)
        assert r.status_code == 201, r.content
        rate(client, task, turn_id, k)
    r = client.post(reverse("collection:api_finish", kwargs={"task_id": task.pk}))
    assert r.status_code == 200, r.content
    task.refresh_from_db()
    return task


@pytest.mark.parametrize("reads", [True, False], ids=["reads-answers", "looks-away"])
def test_site_task_qc_passes_when_gaze_reads_answers(chatting, reads: bool) -> None:
    client, task = chatting
    Task.objects.filter(pk=task.pk).update(mode=Mode.POINTWISE, model_2="")
    task = _run_task(client, task, reads=reads)
    row = task_qc_compute(task=task, thresholds=dict(qc.PAPER_THRESHOLDS))
    codes = sorted(r["code"] for r in row.reasons)
    if reads:
        assert row.response_score == pytest.approx(1.0)
        assert row.max_index_score == pytest.approx(1.0, abs=0.01)
        assert codes == [] and not row.flagged
    else:
        # Gaze never on an answer: nothing on text to score, and nothing of any answer read.
        assert row.response_score is None and row.max_index_score == 0.0
        assert codes == ["max_index_score", "response_score"] and row.flagged
    assert row.metrics["matching"]["response"] == (1200 if reads else 600)  # abs + box rows on answer text


def test_site_gaze_in_box_but_off_answer_counts_against_the_response_score() -> None:
    """A gaze sample inside a box that shows no answer yet (the waiting message) is on-box but
    not on answer text: the ``instruction`` rule, which the response score counts against."""
    import numpy as np
    import pandas as pd

    from analysis.features.matching import site_rules

    inst = pd.DataFrame({"b1_x": [10.0, 10.0, -1.0, np.nan], "b1_char_index": [3.0, np.nan, np.nan, np.nan],
                         "b2_x": [np.nan] * 4, "b2_char_index": [np.nan] * 4})
    assert list(site_rules(inst, np.array([5.0, 5.0, 5.0, 5.0]))) == ["response", "instruction", "turn_id", "turn_id"]
    assert list(site_rules(inst, np.array([np.nan] * 4))) == ["turn_id"] * 4
