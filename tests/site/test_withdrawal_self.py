"""A participant's own withdrawal (issue 24): a link on every study page, a confirmation page that
says what is deleted and kept, POST + CSRF, only the session's own worker, then the session ends
and a re-entry with the same id is refused."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import Task, TrajectoryChunk, Withdrawal, Worker
from collection.services import identity, study
from tests.support.site_tasks import site_task

from .conftest import choose, complete_profile, enter_lab, pass_calibration

pytestmark = pytest.mark.django_db


@pytest.fixture
def chatting_worker(topics, demo_models, settings_row) -> tuple[Client, Task]:
    client = Client()
    enter_lab(client, "lab-withdraw")
    complete_profile(client)
    (task,) = choose(client)
    pass_calibration(client, task)
    task.refresh_from_db()
    return client, task


def test_worker_pages_offer_withdrawal(chatting_worker) -> None:
    client, task = chatting_worker
    page = client.get(reverse("collection:chat", args=[task.pk])).content.decode()
    assert "Withdraw from the study" in page and reverse("withdraw") in page
    assert "Withdraw from the study" not in Client().get(reverse("collection:start")).content.decode()


def test_worker_withdraws_themselves(chatting_worker) -> None:
    client, task = chatting_worker
    worker = task.worker
    other = site_task(name="other")
    page = client.get(reverse("withdraw")).content.decode()
    assert "Withdraw and delete my data" in page and "payment record" in page
    r = client.post(reverse("withdraw"), {"participant": worker.pseudonym})
    assert r.status_code == 200 and "You have withdrawn" in r.content.decode()
    assert not Worker.objects.filter(pk=worker.pk).exists() and not Task.objects.filter(pk=task.pk).exists()
    assert Withdrawal.objects.get().channel == "worker" and Withdrawal.objects.get().acted_by is None
    assert TrajectoryChunk.objects.filter(task=other).exists()
    # the session is over: the study pages send to the start, a repeat deletes nothing more
    assert client.get(reverse("collection:topics"))["Location"] == reverse("collection:start")
    assert client.post(reverse("withdraw"), {"participant": worker.pseudonym}).status_code == 302
    assert Withdrawal.objects.count() == 1
    # re-entry with the same id is refused (staff cannot make a new invitation for it either)
    with pytest.raises(study.StudyError) as refused:
        identity.lab_participant_create(participant_id="lab-withdraw")
    assert refused.value.code == "withdrawn"
    assert not Worker.objects.filter(platform_worker_id="lab-withdraw").exists()


def test_worker_cannot_withdraw_another(chatting_worker) -> None:
    client, task = chatting_worker
    other = site_task(name="other")
    r = client.post(reverse("withdraw"), {"participant": other.worker.pseudonym})
    assert r.status_code == 403
    assert Worker.objects.filter(pk=other.worker_id).exists() and Worker.objects.filter(pk=task.worker_id).exists()
    assert client.post(reverse("withdraw"), {}).status_code == 400
    assert not Withdrawal.objects.exists()
    # without a session: sent to the start, nothing withdrawn
    r = Client().post(reverse("withdraw"), {"participant": other.worker.pseudonym})
    assert r.status_code == 302 and Worker.objects.filter(pk=other.worker_id).exists()


def test_withdraw_page_needs_csrf(chatting_worker) -> None:
    client, task = chatting_worker
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    r = strict.post(reverse("withdraw"), {"participant": task.worker.pseudonym})
    assert r.status_code == 403 and Worker.objects.filter(pk=task.worker_id).exists()
