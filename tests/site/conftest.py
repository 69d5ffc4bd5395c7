"""Fixtures of the study-site tests: topics, demo models, and a worker bound to a test client."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import LLMModel, StudySettings, Task, Topic, Worker
from collection.services import identity, study


@pytest.fixture
def topics(db) -> list[Topic]:
    return [Topic.objects.create(title=f"Topic {i}") for i in range(6)]


@pytest.fixture
def demo_models(db) -> list[LLMModel]:
    return [
        LLMModel.objects.create(name=f"demo-{c}", provider="demo", model_id=f"demo-{c}", quota=100,
                                enabled=True)
        for c in "abc"
    ]


@pytest.fixture
def settings_row(db) -> StudySettings:
    cfg = study.study_settings_get()
    cfg.min_seconds = 0
    cfg.save()
    return cfg


def invitation_url(worker_id: str = "lab-1") -> str:
    """A one-time link for the lab participant ``worker_id`` (created as staff would)."""
    worker = identity.lab_participant_create(participant_id=worker_id)
    return reverse("collection:join", kwargs={"token": identity.invitation_create(worker=worker).token})


def enter_lab(client: Client, worker_id: str = "lab-1") -> Worker:
    """Enter as a lab participant through a fresh invitation link (the default lab entry)."""
    r = client.post(invitation_url(worker_id))
    assert r.status_code == 302, r.content
    return Worker.objects.get(platform="lab", platform_worker_id=worker_id)


def complete_profile(client: Client) -> None:
    client.post(reverse("collection:consent"), {"consent": "on"})
    r = client.post(reverse("collection:demographics"), {
        "age": 30, "location": "Testland", "education": "bachelor", "race": "prefer_not", "gender": "female",
    })
    assert r.status_code == 302, r.content


def choose(client: Client, n: int = 1) -> list[Task]:
    r = client.get(reverse("collection:topics"))
    pool = [c[0] for c in r.context["form"].fields["topics"].choices]
    r = client.post(reverse("collection:topics"), {"topics": pool[:n]})
    assert r.status_code == 302, r.content
    client.post(reverse("collection:instructions"))
    return list(Task.objects.filter(pk__in=Task.objects.order_by("-pk").values("pk")[:n]).order_by("pk"))


def centre_points(vw: int = 1000, vh: int = 800, err: float = 10.0) -> list[dict]:
    """Validation points whose predictions sit ``err`` px from each target."""
    pts = [(vw / 2, vh / 2, True), (250, 200, False), (750, 200, False), (250, 600, False), (750, 600, False)]
    return [
        {"x": x, "y": y, "centre": c, "frames": 60,
         "samples": [{"x": x + err, "y": y, "t": 1000.0 + 33 * i} for i in range(60)]}
        for x, y, c in pts
    ]


def pass_calibration(client: Client, task: Task) -> None:
    client.get(reverse("collection:calibrate", kwargs={"task_id": task.pk}))
    r = client.post(reverse("collection:api_calibration", kwargs={"task_id": task.pk}), {
        "kind": "calibration", "viewport_w": 1000, "viewport_h": 800, "points": centre_points(),
        "clicks": [{"point": i // 5, "x": 10, "y": 10, "t": i} for i in range(45)],
    }, content_type="application/json")
    assert r.status_code == 201 and r.json()["passed"], r.content


@pytest.fixture
def chatting(client, topics, demo_models, settings_row):
    """A client whose worker is in the chat step of one task; returns (client, task)."""
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    pass_calibration(client, task)
    task.refresh_from_db()
    assert task.status == Task.Status.CHATTING
    return client, task
