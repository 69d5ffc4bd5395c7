"""Issue 22, item 8: a 2 MB calibration request cost 1.5-1.8 s of server time. The attempt is
bounded to what a calibration needs (collection/api.py ``MAX_CALIBRATION_*``): a body over 1 MiB is
refused before it is parsed (413), more points or samples than the page can send are a 400 that
names the field, and the largest valid attempt is stored. (Timing: benchmarks/calibration_cost.py.)"""

from __future__ import annotations

import json
import random

import pytest
from django.urls import reverse

from collection.api import MAX_CALIBRATION_BODY, MAX_CALIBRATION_POINTS, MAX_POINT_SAMPLES
from collection.models import CalibrationAttempt, Task

pytestmark = pytest.mark.django_db


def attempt(n_points: int, n_samples: int) -> dict:
    rnd = random.Random(1)
    points = [{"x": 640.0, "y": 400.0, "centre": i == 0,
               "samples": [{"x": 640 + rnd.uniform(-40, 40), "y": 400 + rnd.uniform(-40, 40), "t": 1000.0 + 16.7 * k}
                           for k in range(n_samples)]} for i in range(n_points)]
    return {"kind": "calibration", "viewport_w": 1280, "viewport_h": 800, "clicks": [], "points": points}


@pytest.fixture
def calibrating(client, topics, demo_models, settings_row):
    from .conftest import choose, complete_profile, enter_lab

    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    client.get(reverse("collection:calibrate", args=[task.pk]))
    return client, Task.objects.get(pk=task.pk)


def _post(client, task, body: str):
    return client.post(reverse("collection:api_calibration", kwargs={"task_id": task.pk}), body,
                       content_type="application/json")


def test_largest_valid_attempt_is_stored(calibrating):
    client, task = calibrating
    body = json.dumps(attempt(MAX_CALIBRATION_POINTS, MAX_POINT_SAMPLES))
    assert len(body) < MAX_CALIBRATION_BODY
    r = _post(client, task, body)
    assert r.status_code in (200, 201), r.content[:300]
    assert CalibrationAttempt.objects.filter(task=task).count() == 1


def test_two_megabytes_is_refused_before_parsing(calibrating):
    client, task = calibrating
    body = json.dumps(attempt(5, 6500))
    assert len(body) > 2_000_000
    r = _post(client, task, body)
    assert r.status_code == 413 and r.json()["max_bytes"] == MAX_CALIBRATION_BODY
    assert not CalibrationAttempt.objects.exists()


@pytest.mark.parametrize(("points", "samples", "field"), [
    (MAX_CALIBRATION_POINTS + 1, 10, "points"),
    (5, MAX_POINT_SAMPLES + 1, "samples"),
])
def test_more_than_a_calibration_needs_is_400(calibrating, points, samples, field):
    client, task = calibrating
    r = _post(client, task, json.dumps(attempt(points, samples)))
    assert r.status_code == 400 and field in json.dumps(r.json())


@pytest.mark.parametrize("sample", [{"x": "1", "y": 2, "t": 3}, {"x": True, "y": 2, "t": 3}, {"x": 1, "y": 2},
                                    {"x": 1, "y": 2, "t": -1}, [1, 2, 3], {"x": 1e300, "y": 2, "t": 3}])
def test_bad_samples_name_the_item_and_key(calibrating, sample):
    client, task = calibrating
    body = attempt(5, 3)
    body["points"][2]["samples"][1] = sample
    r = _post(client, task, json.dumps(body))
    assert r.status_code == 400 and "samples" in json.dumps(r.json()) and '"1"' in json.dumps(r.json())
