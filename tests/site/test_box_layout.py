"""The chat page's answer-box layout, sent along with a rating and kept for the replay."""

from __future__ import annotations

import pytest
from django.urls import reverse

from collection.models import Turn

from .test_study_flow import answer_all

pytestmark = pytest.mark.django_db

LAYOUT = {"width": 640.5, "height": 396, "client_width": 623.5, "client_height": 394,
          "font_family": 'Georgia, "Liberation Serif", serif', "font_size_px": 24.3, "line_height_px": 42.525,
          "padding": [18, 21.6, 18, 21.6], "border": [1, 1, 1, 1]}


def _turn(client, task) -> tuple[Turn, str]:
    r = client.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "Why?"},
                    content_type="application/json")
    turn = Turn.objects.get(pk=r.json()["id"])
    answer_all(turn)
    return turn, reverse("collection:api_turn_rate", kwargs={"task_id": task.pk, "turn_id": turn.pk})


def test_layout_is_stored_with_a_rating(chatting) -> None:
    client, task = chatting
    turn, url = _turn(client, task)
    r = client.post(url, {"likert_1": 4, "box_1": LAYOUT}, content_type="application/json")
    assert r.status_code == 200, r.content
    turn.refresh_from_db()
    assert turn.likert_1 == 4 and turn.box_layout["1"]["width"] == 640.5
    assert turn.box_layout["1"]["font_family"].startswith("Georgia") and turn.box_layout["1"]["padding"][1] == 21.6


def test_layout_alone_is_not_a_rating_and_bad_layout_names_the_field(chatting) -> None:
    client, task = chatting
    turn, url = _turn(client, task)
    r = client.post(url, {"box_1": LAYOUT}, content_type="application/json")
    assert r.status_code == 400 and "rating" in str(r.json())
    r = client.post(url, {"likert_1": 4, "box_1": {**LAYOUT, "padding": [1, 2]}}, content_type="application/json")
    assert r.status_code == 400 and "padding" in r.json()["box_1"]
    r = client.post(url, {"likert_1": 4, "box_1": {**LAYOUT, "width": "wide"}}, content_type="application/json")
    assert r.status_code == 400 and "width" in r.json()["box_1"]
    turn.refresh_from_db()
    assert turn.likert_1 is None and turn.box_layout == {}  # nothing of a refused request is kept
