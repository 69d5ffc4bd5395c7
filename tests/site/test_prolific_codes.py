"""The Prolific codes a participant gets come from the lab's study (crowd), found by the STUDY_ID
the entry carried: completed at the end, screened-out after a failed calibration on the first
topic, partial payment when it fails after a finished topic; without such a study, the study
settings (completion URL, partial-payment code) as before."""

from __future__ import annotations

import pytest
from django.urls import reverse

from collection.models import Task
from collection.services import study
from crowd.models import Study

from .conftest import choose, complete_profile
from .test_calibration_way_out import _attempt

pytestmark = pytest.mark.django_db
COMPLETE = "https://app.prolific.com/submissions/complete?cc="


@pytest.fixture
def crowd_study(db) -> Study:
    return Study.objects.create(name="p", platform=Study.Platform.PROLIFIC, prolific_study_id="S1",
                                code_completed="C0MPL3T", code_screened_out="SCR33N", code_partial="PART1AL")


def _enter(client, session: str = "X1") -> None:
    r = client.get(reverse("collection:start"), {"PROLIFIC_PID": "P1", "STUDY_ID": "S1", "SESSION_ID": session})
    assert r.status_code == 302
    complete_profile(client)


def test_done_page_sends_the_completed_code(client, topics, demo_models, settings_row, crowd_study):
    settings_row.prolific_completion_url = f"{COMPLETE}FALLBACK"
    settings_row.save()
    _enter(client)
    (task,) = choose(client)
    task.status, task.completion_code = Task.Status.COMPLETED, "site-code"
    task.save()
    page = client.get(reverse("collection:done", args=[task.pk])).content.decode()
    assert f"{COMPLETE}C0MPL3T" in page and 'id="prolific-code">C0MPL3T' in page and "FALLBACK" not in page


def test_without_a_crowd_study_the_settings_url_is_used(client, topics, demo_models, settings_row):
    settings_row.prolific_completion_url = f"{COMPLETE}FALLBACK"
    settings_row.save()
    _enter(client)
    (task,) = choose(client)
    task.status, task.completion_code = Task.Status.COMPLETED, "site-code"
    task.save()
    page = client.get(reverse("collection:done", args=[task.pk])).content.decode()
    assert f"{COMPLETE}FALLBACK" in page and "prolific-code" not in page


def _fail_calibration(client, task: Task) -> str:
    client.get(reverse("collection:calibrate", kwargs={"task_id": task.pk}))
    _attempt(client, task, 900.0, 0.0)
    _attempt(client, task, 900.0, 0.0)
    return client.get(reverse("collection:calibration_failed", kwargs={"task_id": task.pk})).content.decode()


@pytest.fixture
def way_out_code(settings_row):
    cfg = study.study_settings_get()
    cfg.max_calibration_attempts, cfg.calibration_way_out, cfg.partial_payment_code = 2, "code", "SETTINGS-CODE"
    cfg.save()


def test_failed_first_calibration_gets_the_screened_out_code(client, topics, demo_models, way_out_code, crowd_study):
    _enter(client)
    (task,) = choose(client)
    page = _fail_calibration(client, task)
    assert 'id="partial-code">SCR33N' in page and f"{COMPLETE}SCR33N" in page and "SETTINGS-CODE" not in page


def test_failure_after_a_finished_topic_gets_the_partial_code(client, topics, demo_models, way_out_code,
                                                              crowd_study):
    _enter(client)
    first, second = choose(client, n=2)
    first.status, first.completion_code = Task.Status.COMPLETED, "done-1"
    first.save()
    page = _fail_calibration(client, second)
    assert 'id="partial-code">PART1AL' in page and f"{COMPLETE}PART1AL" in page


def test_without_a_crowd_study_the_settings_code_is_shown(client, topics, demo_models, way_out_code):
    _enter(client)
    (task,) = choose(client)
    page = _fail_calibration(client, task)
    assert 'id="partial-code">SETTINGS-CODE' in page and "prolific-code-return" not in page
