"""A bounded schemathesis run over every study API: malformed, oversized and hostile inputs get a
4xx, never a 5xx, and a refused request never changes stored data."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, settings

from collection.models import CalibrationAttempt, Task, TrajectoryChunk, Turn, Worker
from collection.services import study

schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler()).include(
    path_regex="^/(api/study/|task/)"
)


def snapshot() -> tuple:
    return (
        list(Task.objects.order_by("pk").values()),
        list(Turn.objects.order_by("pk").values()),
        list(TrajectoryChunk.objects.order_by("pk").values_list("pk", "seq", "digest")),
        CalibrationAttempt.objects.count(),
        list(Worker.objects.order_by("pk").values()),
    )


def call_keeping_connection(case, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Requests through the WSGI handler would close the test transaction's connection at the end
    of each request (Django's own test client switches this off the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        return case.call(**kwargs)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def study_state(chatting):  # noqa: ANN001, ANN201
    client, task = chatting
    turn = study.turn_create(task=task, query="A first question?")
    study.turn_response_store(turn=turn, side=1, text="An answer.")
    study.turn_response_store(turn=turn, side=2, text="Another answer.")
    client.get(reverse("collection:chat", args=[task.pk]))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": token}
    return {"task": task, "turn": turn, "cookies": cookies, "headers": {"X-CSRFToken": token}}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_study_apis_never_fail_or_change_data_on_bad_input(case, study_state):  # noqa: ANN001
    # Mostly aim at the worker's real task and turn, so that validation (not only the 404 of an
    # unknown id) is what gets exercised; sometimes keep the generated ids.
    if case.path_parameters and hash(repr(case.body)) % 4:
        if "task_id" in case.path_parameters:
            case.path_parameters["task_id"] = study_state["task"].pk
        if "turn_id" in case.path_parameters:
            case.path_parameters["turn_id"] = study_state["turn"].pk
    before = snapshot()
    case.cookies = {**(case.cookies or {}), **study_state["cookies"]}
    response = call_keeping_connection(case, headers=study_state["headers"])
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        assert snapshot() == before, f"{response.status_code} response changed stored data"
