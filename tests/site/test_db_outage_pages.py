"""Issue 22, item 9: during a database outage HTML pages and the answer stream gave a bare 500.

The outage is real: the connection is pointed at a port where no PostgreSQL listens, so psycopg
fails to connect exactly as during a failover. Pages now answer a 503 page that says to retry
(with Retry-After); the APIs keep their JSON 503.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection
from django.urls import reverse

from tests.support.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_down():
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_pages_and_the_answer_stream_say_to_retry(chatting):
    client, task = chatting
    client.raise_request_exception = False
    urls = [reverse("collection:chat", args=[task.pk]), reverse("collection:topics"), reverse("collection:resume")]
    with database_down():
        for url in urls:
            r = client.get(url)
            assert r.status_code == 503, (url, r.status_code)
            assert r["Retry-After"] and "reload this page" in r.content.decode()
            assert r["Content-Type"].startswith("text/html")
        r = client.post(reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": 1}))
        assert r.status_code == 503 and r["Retry-After"]
        r = client.get(reverse("collection:api_task", kwargs={"task_id": task.pk}))
        assert r.status_code == 503 and r["Content-Type"].startswith("application/json")
    assert client.get(urls[0]).status_code == 200  # back when the database is


def test_other_server_errors_stay_500(rf):
    from django.db import OperationalError

    from ifllm_site.errors import server_error

    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        r = server_error(rf.get("/topics/"))
    assert r.status_code == 500 and not r.has_header("Retry-After")
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        r = server_error(rf.get("/api/study/tasks/1/"))
    assert r.status_code == 503 and r["Retry-After"] and r["Content-Type"] == "application/json"
