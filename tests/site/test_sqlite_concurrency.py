"""`make run`'s SQLite under one worker's real traffic: gaze batches uploading from several
connections while questions are asked, answered and rated, with uvicorn as `make run` serves it.
No request may fail with a 500 ("database is locked" before WAL, IMMEDIATE transactions and the
busy timeout); a 503 (busy, nothing stored) is allowed because the page retries it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _columns(n: int, t0: int, turn_id: int | None) -> dict[str, list]:
    keys = ("signal", "frame", "x", "y", "snippet", "char_index", "page_timer_ms", "head_in_box", "epoch_ms",
            "turn_id", "viewport_w", "viewport_h", "box_left", "box_top", "box_width", "box_height",
            "scroll_left", "scroll_top", "no_face")
    cols: dict[str, list] = {k: [] for k in keys}
    for i in range(n):
        row = {"signal": "gaze" if i % 2 else "mouse", "frame": "abs", "x": 10.0 + i, "y": 20.0, "snippet": None,
               "char_index": None, "page_timer_ms": 100.0 * i, "head_in_box": True, "epoch_ms": t0 + 100 * i,
               "turn_id": turn_id, "viewport_w": 1280, "viewport_h": 720, "box_left": None, "box_top": None,
               "box_width": None, "box_height": None, "scroll_left": 0.0, "scroll_top": 0.0, "no_face": False}
        for k, v in row.items():
            cols[k].append(v)
    return cols


@pytest.fixture
def sqlite_site(tmp_path) -> str:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DEBUG": "true"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from collection.services import study; c = study.study_settings_get(); "
                    "c.min_seconds = 0; c.pass_threshold = 0; c.lab_typed_ids = True; c.save()"],
                   cwd=ROOT, env=env, check=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "ifllm_site.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/unsupported/", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def _enter(base: str) -> tuple[httpx.Client, int, str]:
    c = httpx.Client(base_url=base, follow_redirects=True, timeout=60)

    def form_post(path: str, data: dict) -> httpx.Response:
        page = c.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return c.post(path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": base + path})

    form_post("/", {"worker_id": "sqlite-worker"})
    form_post("/consent/", {"consent": "on"})
    form_post("/about-you/", {"age": 30, "location": "Testland", "education": "bachelor", "race": "prefer_not",
                              "gender": "female"})
    page = c.get("/topics/")
    topic = re.search(r'name="topics" value="(\d+)"', page.text).group(1)
    form_post("/topics/", {"topics": [topic]})
    r = form_post("/instructions/", {})
    task_id = int(re.search(r"/task/(\d+)/calibrate/", str(r.url)).group(1))
    token = c.cookies["csrftoken"]
    pts = [{"x": 640, "y": 360, "centre": True, "frames": 60,
            "samples": [{"x": 641, "y": 360, "t": 33.0 * i} for i in range(60)]}]
    r = c.post(f"/api/study/tasks/{task_id}/calibration/", json={"kind": "calibration", "viewport_w": 1280,
               "viewport_h": 720, "points": pts}, headers={"X-CSRFToken": token, "Referer": base})
    assert r.status_code == 201 and r.json()["passed"], r.text
    return c, task_id, token


def test_batches_and_questions_on_sqlite_never_500(sqlite_site: str) -> None:
    base = sqlite_site
    c, task_id, token = _enter(base)
    headers = {"X-CSRFToken": token, "Referer": base}
    statuses: list[int] = []
    stop = threading.Event()
    current_turn: list[int | None] = [None]

    def upload(k: int) -> None:
        # Its own connection, like the page's periodic sends overlapping the question requests.
        bc = httpx.Client(base_url=base, cookies=c.cookies, timeout=60)
        seq = k * 100_000
        while not stop.is_set():
            r = bc.post(f"/api/study/tasks/{task_id}/batches/", headers=headers, json={
                "seq": seq, "columns": _columns(400, int(time.time() * 1000), current_turn[0])})
            statuses.append(r.status_code)
            seq += 1

    threads = [threading.Thread(target=upload, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for q in range(6):
            r = c.post(f"/api/study/tasks/{task_id}/turns/", headers=headers, json={"query": f"Question {q}?"})
            statuses.append(r.status_code)
            assert r.status_code == 201, r.text
            current_turn[0] = turn = r.json()["id"]
            r = c.post(f"/task/{task_id}/turns/{turn}/answer/", headers=headers)
            statuses.append(r.status_code)
            assert r.status_code == 200 and '"event": "done"' in r.text.replace('"event":"done"', '"event": "done"')
            task = c.get(f"/api/study/tasks/{task_id}/", headers=headers).json()
            ratings = {"likert_1": 4}
            if task["mode"] == "pairwise":
                ratings |= {"likert_2": 3, "preferred": 1}
            elif q:
                ratings["better_than_previous"] = True
            r = c.post(f"/api/study/tasks/{task_id}/turns/{turn}/rating/", headers=headers, json=ratings)
            statuses.append(r.status_code)
            assert r.status_code == 200, r.text
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert 500 not in statuses
    assert statuses.count(201) > 20, statuses  # the batches really overlapped the questions
