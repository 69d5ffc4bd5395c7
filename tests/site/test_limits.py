"""Bad input is a 4xx naming what was wrong, never a 500: NUL characters (PostgreSQL refuses
them), deeply nested JSON, and bodies over the limits; the advertised batch size fits the body
limit. (The page's side, splitting a refused batch, is tests/js/logger_split.test.mjs.)"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from collection.checks import batch_limit_fits_body_limit
from collection.models import Task, TrajectoryChunk, Worker
from collection.serializers import MAX_BATCH_SAMPLES, batch_body_bytes_bound, worst_sample_row
from collection.services import study

from .conftest import choose
from .test_batches import make_columns

pytestmark = pytest.mark.django_db

MTURK = {"assignmentId": "A1", "hitId": "H1", "workerId": "W1", "turkSubmitTo": "https://workersandbox.mturk.com"}
PROLIFIC = {"PROLIFIC_PID": "P1", "STUDY_ID": "S1", "SESSION_ID": "X1"}


@pytest.mark.parametrize(("params", "field"), [
    ({**MTURK, "workerId": "W\x001"}, "workerId"),
    ({**MTURK, "assignmentId": "A\x00"}, "assignmentId"),
    ({**MTURK, "hitId": "\x00"}, "hitId"),
    ({**PROLIFIC, "PROLIFIC_PID": "P\x00"}, "PROLIFIC_PID"),
    ({**PROLIFIC, "SESSION_ID": "X\x00"}, "SESSION_ID"),
])
def test_nul_in_entry_parameters_is_400_naming_the_field(client, params, field):
    r = client.get(reverse("collection:start"), params)
    assert r.status_code == 400 and field in r.content.decode()
    assert not Worker.objects.exists() and "ifllm.worker" not in client.session


def test_nul_elsewhere_is_400_never_500(client, topics, demo_models, settings_row):
    assert client.get(reverse("collection:start"), MTURK).status_code == 302
    r = client.post(reverse("collection:consent"), {"consent": "on\x00"})
    assert r.status_code == 400 and "consent" in r.content.decode()
    client.post(reverse("collection:consent"), {"consent": "on"})
    r = client.post(reverse("collection:demographics"), {
        "age": 30, "location": "Test\x00land", "education": "bachelor", "race": "asian", "gender": "male"})
    assert r.status_code == 400 and "location" in r.content.decode()
    assert Worker.objects.get().location == ""
    client.post(reverse("collection:demographics"), {
        "age": 30, "location": "Testland", "education": "bachelor", "race": "asian", "gender": "male"})
    r = client.post(reverse("collection:topics"), {"topics": ["1\x00"]})
    assert r.status_code == 400 and "topics" in r.content.decode()
    (task,) = choose(client)
    r = client.get(reverse("collection:start"), {"q\x00": "x"})
    assert r.status_code == 400
    # JSON APIs: DRF's CharField refuses NUL and names the field.
    Task.objects.filter(pk=task.pk).update(status=Task.Status.CHATTING)
    r = client.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "why\x00?"},
                    content_type="application/json")
    assert r.status_code == 400 and "query" in r.json()
    # A session cookie with NUL is no session (not a database error).
    other = Client()
    other.cookies["sessionid"] = "abc\x00def"
    assert other.get(reverse("collection:resume")).status_code == 302


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary="])
def test_malformed_multipart_body_is_400_never_500(client, content_type):
    """Found by schemathesis: a multipart body without a usable boundary broke the NUL check."""
    r = client.post(reverse("collection:start"), data=b"worker_id=x", content_type=content_type)
    assert r.status_code == 400 and "not valid form data" in r.content.decode()


def test_nul_in_admin_search_is_400(admin_client):
    r = admin_client.get(reverse("admin:collection_worker_changelist"), {"q": "x\x00"})
    assert r.status_code == 400 and "q" in r.content.decode()


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_400(chatting, depth):
    client, task = chatting
    turn = study.turn_create(task=task, query="q")
    study.turn_response_store(turn=turn, side=1, text="a")
    study.turn_response_store(turn=turn, side=2, text="b")
    body = "[" * depth + "]" * depth
    urls = [
        reverse("collection:api_batches", kwargs={"task_id": task.pk}),
        reverse("collection:api_turns", kwargs={"task_id": task.pk}),
        reverse("collection:api_turn_rate", kwargs={"task_id": task.pk, "turn_id": turn.pk}),
        reverse("collection:api_calibration", kwargs={"task_id": task.pk}),
    ]
    wrapped = json.dumps({"seq": 0, "columns": {"x": "PLACEHOLDER"}}).replace('"PLACEHOLDER"', body)
    for url in urls:
        for payload in (body, wrapped):
            r = client.post(url, payload, content_type="application/json")
            assert r.status_code == 400, (url, r.status_code)
            assert "nested deeper" in r.json()["detail"]
    r = client.post(urls[0] + "?csrf_token=x", body, content_type="text/plain")  # the beacon's parser too
    assert r.status_code in (400, 403)


def test_advertised_batch_size_fits_the_body_limit(chatting):
    client, task = chatting
    assert batch_limit_fits_body_limit() == []
    t0 = 1_800_000_000_000
    row = worst_sample_row()
    columns = {k: [v] * MAX_BATCH_SAMPLES for k, v in row.items()}
    columns["turn_id"] = [None] * MAX_BATCH_SAMPLES
    columns["epoch_ms"] = [t0 + i for i in range(MAX_BATCH_SAMPLES)]
    body = json.dumps({"seq": 0, "columns": columns}, ensure_ascii=False).encode()
    assert len(body) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert batch_body_bytes_bound() <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    url = reverse("collection:api_batches", kwargs={"task_id": task.pk})
    r = client.post(url, body, content_type="application/json")
    assert r.status_code == 201, r.content[:300]
    assert r.json()["n_samples"] == MAX_BATCH_SAMPLES


def test_too_large_batches_are_413_with_the_limits(chatting, settings):
    client, task = chatting
    url = reverse("collection:api_batches", kwargs={"task_id": task.pk})
    cols = make_columns(MAX_BATCH_SAMPLES + 1)
    r = client.post(url, json.dumps({"seq": 0, "columns": cols}), content_type="application/json")
    assert r.status_code == 413
    assert r.json()["code"] == "too_large" and r.json()["max_samples"] == MAX_BATCH_SAMPLES
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50_000
    body = json.dumps({"seq": 0, "columns": make_columns(1_000)})
    assert len(body) > 50_000
    r = client.post(url, body, content_type="application/json")
    assert r.status_code == 413 and r.json()["max_bytes"] == 50_000
    assert not TrajectoryChunk.objects.exists()
    assert batch_limit_fits_body_limit()[0].id == "collection.E001"


def test_page_splits_a_refused_batch_node():
    node = shutil.which("node")
    assert node, "node is needed for the page's logger tests (it is installed with npm)"
    out = subprocess.run([node, "--test", "tests/js/"], cwd=settings.BASE_DIR, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout
