"""Nothing stores camera images (issue 24): the pages never encode a frame, and the upload
endpoints keep only their declared, typed fields, so an image smuggled into a request is never
stored.

Finding (grep of the study's own scripts and WebGazer's bundle): the camera stream is opened by
WebGazer (``getUserMedia``) and read frame by frame in the browser; our scripts read only the eye
patches' boxes (``headbox.mjs``) and never call ``toDataURL``/``toBlob``/``MediaRecorder``; WebGazer's
own ``fetch`` calls load its model files. WebGazer keeps its calibration clicks in the browser's
IndexedDB (``saveDataAcrossSessions``); ``keep_webgazer_data`` off (the default) clears it when the
worker leaves, and the withdrawal page always clears it.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from collection.models import CalibrationAttempt, TrajectoryChunk, Turn

from .conftest import centre_points
from .test_batches import make_columns, post

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
#: A tiny PNG as a data URL: what a page would send if it encoded a camera frame.
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
MARK = PNG[22:40]
ENCODERS = re.compile(r"toDataURL|toBlob\(|MediaRecorder|captureStream|getImageData")


def test_the_study_scripts_never_encode_a_camera_frame() -> None:
    scripts = sorted((ROOT / "static" / "collection" / "js").rglob("*.mjs"))
    assert len(scripts) >= 5
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in scripts for m in ENCODERS.finditer(p.read_text())]
    assert found == []


def test_the_check_would_find_an_encoder() -> None:
    assert ENCODERS.search("const url = canvas.toDataURL('image/png');")
    assert ENCODERS.search("new MediaRecorder(stream)")


def test_batch_with_an_image_column_stores_no_image(chatting) -> None:
    client, task = chatting
    turn = Turn.objects.create(task=task, index=0, query="q", response_1="an answer")
    columns = make_columns(4, turn_id=turn.pk)
    columns["image"] = [PNG] * 4  # not a column of the sample schema
    columns["frame_png"] = [PNG] * 4
    r = post(client, task, {"seq": 0, "columns": columns})
    assert r.status_code == 201, r.content
    chunk = TrajectoryChunk.objects.get(task=task)
    assert MARK.encode() not in bytes(chunk.data) and MARK not in json.dumps(chunk.streams)


def test_batch_with_an_image_in_a_text_column_is_refused(chatting) -> None:
    client, task = chatting
    columns = make_columns(4)
    columns["snippet"] = [PNG * 20] * 4  # over the snippet limit: a 400 naming the field
    r = post(client, task, {"seq": 0, "columns": columns})
    assert r.status_code == 400 and "snippet" in r.json()["columns"], r.content
    assert not TrajectoryChunk.objects.filter(task=task).exists()


def test_calibration_attempt_with_images_stores_no_image(client, topics, demo_models, settings_row) -> None:
    from .conftest import choose, complete_profile, enter_lab

    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    client.get(reverse("collection:calibrate", kwargs={"task_id": task.pk}))
    points = [{**p, "image": PNG} for p in centre_points()]
    clicks = [{"point": i // 5, "x": 10, "y": 10, "t": i, "frame": PNG} for i in range(45)]
    r = client.post(reverse("collection:api_calibration", kwargs={"task_id": task.pk}), {
        "kind": "calibration", "viewport_w": 1000, "viewport_h": 800, "points": points, "clicks": clicks,
        "image": PNG, "environment": {"screen_w": 1366, "screen_h": 768, "snapshot": PNG},
    }, content_type="application/json")
    assert r.status_code == 201, r.content
    attempt = CalibrationAttempt.objects.get(task=task)
    stored = json.dumps([attempt.raw, attempt.points, attempt.rule, attempt.environment])
    assert MARK not in stored
