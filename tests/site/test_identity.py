"""Who may work on which task, per entry path (invitation / typed lab id, MTurk, Prolific).

The two attacks of issue 11: (1) lab entry with another worker's id, (2) an MTurk entry with the
victim's workerId and the attacker's own assignment. Neither may hand over the victim's task,
rebind it, or end the victim's session; each attempt is recorded for staff.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import IdentityEvent, Invitation, Task, Worker

from .conftest import choose, complete_profile, enter_lab, invitation_url, pass_calibration

pytestmark = pytest.mark.django_db

SUBMIT = "https://workersandbox.mturk.com"


def mturk(worker: str, assignment: str, hit: str = "H1") -> dict[str, str]:
    return {"assignmentId": assignment, "hitId": hit, "workerId": worker, "turkSubmitTo": SUBMIT}


def prolific(pid: str, session: str) -> dict[str, str]:
    return {"PROLIFIC_PID": pid, "STUDY_ID": "S1", "SESSION_ID": session}


def victim_in_chat(client: Client, params: dict | None = None) -> Task:
    if params is None:
        enter_lab(client, "victim")
    else:
        assert client.get(reverse("collection:start"), params).status_code == 302
    complete_profile(client)
    (task,) = choose(client)
    pass_calibration(client, task)
    task.refresh_from_db()
    assert task.status == Task.Status.CHATTING and task.holder
    return task


def assert_victim_unharmed(victim: Client, task: Task, before: Task) -> None:
    task.refresh_from_db()
    assert (task.worker_id, task.assignment_id, task.hit_id, task.holder) == (
        before.worker_id, before.assignment_id, before.hit_id, before.holder)
    assert task.extra.get("entry") == before.extra.get("entry") and "previous_entries" not in task.extra
    assert victim.get(reverse("collection:chat", args=[task.pk])).status_code == 200
    api = reverse("collection:api_task", kwargs={"task_id": task.pk})
    assert victim.get(api).status_code == 200


def assert_no_access(attacker: Client, task: Task, status: int = 404) -> None:
    assert attacker.get(reverse("collection:chat", args=[task.pk])).status_code == status
    assert attacker.get(reverse("collection:api_task", kwargs={"task_id": task.pk})).status_code in (403, 404)
    r = attacker.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "mine now?"},
                      content_type="application/json")
    assert r.status_code in (403, 404)
    assert not task.turns.exists()


# --- lab -------------------------------------------------------------------------------------------


def test_lab_typed_id_of_another_worker_is_refused_by_default(client, topics, demo_models, settings_row):
    task = victim_in_chat(client)
    before = Task.objects.get(pk=task.pk)
    attacker = Client()
    r = attacker.post(reverse("collection:start"), {"worker_id": "victim"})
    assert r.status_code == 403 and r.context["form"] is None
    assert "invitation link" in r.content.decode()
    assert "ifllm.worker" not in attacker.session
    assert attacker.get(reverse("collection:resume")).url == reverse("collection:start")
    assert_no_access(attacker, task, status=302)  # no session: back to the start
    assert_victim_unharmed(client, task, before)


def test_invitation_is_one_time_and_reuse_is_recorded(client, topics, demo_models, settings_row):
    url = invitation_url("p-1")
    assert client.get(url).status_code == 200  # a link preview does not use it up
    assert not Invitation.objects.filter(used_at__isnull=False).exists()
    assert client.post(url).status_code == 302
    worker = Worker.objects.get(platform="lab", platform_worker_id="p-1")
    assert client.session["ifllm.worker"] == worker.pk
    other = Client()
    r = other.post(url)
    assert r.status_code == 403 and "already been used" in r.content.decode()
    assert "ifllm.worker" not in other.session
    event = IdentityEvent.objects.get(kind=IdentityEvent.Kind.INVITATION_REUSED)
    assert event.worker == worker
    assert other.post(reverse("collection:join", kwargs={"token": "x" * 32})).status_code == 403


def test_new_invitation_resumes_the_open_task_only_by_explicit_takeover(client, topics, demo_models,
                                                                       settings_row):
    task = victim_in_chat(client)
    again = Client()  # the participant lost the browser; staff send a new link
    assert again.post(invitation_url("victim")).status_code == 302
    r = again.get(reverse("collection:chat", args=[task.pk]))
    assert r.status_code == 409 and "open in another window" in r.content.decode()
    assert IdentityEvent.objects.filter(kind=IdentityEvent.Kind.SESSION_REFUSED, task=task).exists()
    assert again.post(reverse("collection:take_over", args=[task.pk])).status_code == 302
    assert again.get(reverse("collection:chat", args=[task.pk])).status_code == 200


def test_typed_ids_behind_the_setting_still_cannot_take_a_held_task(client, topics, demo_models, settings_row):
    settings_row.lab_typed_ids = True
    settings_row.save()
    task = victim_in_chat(client)
    before = Task.objects.get(pk=task.pk)
    attacker = Client()
    assert attacker.post(reverse("collection:start"), {"worker_id": "victim"}).status_code == 302
    assert IdentityEvent.objects.filter(kind=IdentityEvent.Kind.TYPED_ENTRY).exists()
    r = attacker.post(reverse("collection:instructions"), follow=True)
    assert r.status_code == 409 and "open in another window" in r.content.decode()
    assert_no_access(attacker, task, status=409)
    assert_victim_unharmed(client, task, before)


# --- MTurk and Prolific: the task belongs to its assignment ------------------------------------------


@pytest.mark.parametrize(
    ("victim_params", "attacker_params"),
    [
        (mturk("W-victim", "A1", "H1"), mturk("W-victim", "A2", "H2")),
        (prolific("P-victim", "SESSION-1"), prolific("P-victim", "SESSION-2")),
    ],
    ids=["mturk", "prolific"],
)
def test_other_assignment_never_takes_over_the_task(client, topics, demo_models, settings_row,
                                                    victim_params, attacker_params):
    task = victim_in_chat(client, victim_params)
    before = Task.objects.get(pk=task.pk)
    attacker = Client()
    for _ in range(2):
        r = attacker.get(reverse("collection:start"), attacker_params)
        # not the victim's task, and not their consent either (issue 22: an unverified entry inherits nothing)
        assert r.status_code == 302 and r.url == reverse("collection:consent")
    assert_no_access(attacker, task)
    assert_victim_unharmed(client, task, before)
    event = IdentityEvent.objects.get(kind=IdentityEvent.Kind.OTHER_ASSIGNMENT)
    assignment = attacker_params.get("assignmentId") or attacker_params["SESSION_ID"]
    assert (event.task, event.assignment_id, event.count) == (task, assignment, 2)
    # The attacker's own assignment gets its own task, on another topic, after its own profile.
    complete_profile(attacker)
    (own,) = choose(attacker)
    assert own.pk != task.pk and own.assignment_id == assignment and own.topic_id != task.topic_id
    # An admin sees the attempt.
    admin = Client()
    admin.force_login(_superuser())
    page = admin.get(reverse("admin:collection_identityevent_changelist")).content.decode()
    assert "Entry with another assignment" in page and assignment in page


def test_same_assignment_in_a_second_browser_is_refused_until_it_takes_over(client, topics, demo_models,
                                                                          settings_row):
    params = mturk("W1", "A1")
    task = victim_in_chat(client, params)
    second = Client()
    assert second.get(reverse("collection:start"), params).status_code == 302
    r = second.post(reverse("collection:instructions"), follow=True)
    assert r.status_code == 409 and "open in another window" in r.content.decode()
    api = reverse("collection:api_task", kwargs={"task_id": task.pk})
    r = second.get(api)
    assert r.status_code == 403 and r.json()["code"] == "moved"
    assert client.get(api).status_code == 200  # never both: the first one still works
    # Explicit takeover: the second continues, the first is told so and can no longer write.
    r = second.post(reverse("collection:take_over", args=[task.pk]))
    assert r.status_code == 302 and r.url == reverse("collection:chat", args=[task.pk])
    assert second.get(reverse("collection:chat", args=[task.pk])).status_code == 200
    r = client.get(reverse("collection:chat", args=[task.pk]))
    assert r.status_code == 409 and "continues in another window" in r.content.decode()
    r = client.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "still me?"},
                    content_type="application/json")
    assert r.status_code == 403 and r.json()["code"] == "moved"
    r = client.post(reverse("collection:api_batches", kwargs={"task_id": task.pk}), {},
                    content_type="application/json")
    assert r.status_code == 403
    r = second.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "mine?"},
                    content_type="application/json")
    assert r.status_code == 201
    turn_id = r.json()["id"]
    answer = reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": turn_id})
    assert client.post(answer).status_code == 404
    event = IdentityEvent.objects.get(kind=IdentityEvent.Kind.TAKEOVER)
    assert event.task == task and event.assignment_id == "A1"


def test_demographics_cannot_be_overwritten_by_a_later_entry(client, topics, demo_models, settings_row):
    client.get(reverse("collection:start"), mturk("W9", "A1"))
    complete_profile(client)
    attacker = Client()
    attacker.get(reverse("collection:start"), mturk("W9", "A2"))
    r = attacker.post(reverse("collection:demographics"), {
        "age": 99, "location": "Elsewhere", "education": "master", "race": "asian", "gender": "male"})
    assert r.status_code == 302
    assert Worker.objects.get(platform_worker_id="W9").age == 30


def _superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.org", "pw")


def test_staff_create_participant_and_link_in_the_admin(client, db):
    admin = Client()
    admin.force_login(_superuser())
    r = admin.post(reverse("admin:collection_invitation_add"), {"participant_id": "lab-42", "note": "Tue 10:00"})
    assert r.status_code == 302, r.content
    invitation = Invitation.objects.get()
    assert invitation.worker.platform == "lab" and invitation.worker.platform_worker_id == "lab-42"
    assert len(invitation.token) >= 32
    page = admin.get(reverse("admin:collection_invitation_changelist")).content.decode()
    assert reverse("collection:join", kwargs={"token": invitation.token}) in page
    worker = invitation.worker
    r = admin.post(reverse("admin:collection_worker_changelist"),
                   {"action": "invitations_create", "_selected_action": [worker.pk]})
    assert r.status_code == 302 and Invitation.objects.filter(worker=worker).count() == 2
    assert client.post(reverse("collection:join", kwargs={"token": invitation.token})).status_code == 302
    page = admin.get(reverse("admin:collection_invitation_changelist")).content.decode()
    assert reverse("collection:join", kwargs={"token": invitation.token}) not in page  # used: link gone
