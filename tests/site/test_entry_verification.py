"""Issue 22, item 1: a platform URL with a victim's worker id and a new assignment id.

Replayed: 8 such MTurk entries used the victim's consent and demographics and 24 of their
topics. Now a known worker id with a new, unverified assignment inherits nothing (it owes its own
consent and demographics, kept off the worker), consumes none of the worker's topics, takes at
most one entry's worth, is limited per worker id and hour, and every step is recorded. Prolific
entries are checked through the API (a real local fake server) when a token is configured.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import IdentityEvent, Task, Worker
from collection.services import identity, study
from tests.support.fake_prolific_server import FakeProlificServer

from .conftest import choose, complete_profile

pytestmark = pytest.mark.django_db
SUBMIT = "https://workersandbox.mturk.com"
VICTIM_ASSIGNMENT = "3VICTIMASSIGNMENT0000000000000"


def mturk(worker: str, assignment: str) -> dict[str, str]:
    return {"assignmentId": assignment, "hitId": "3HIT", "workerId": worker, "turkSubmitTo": SUBMIT}


def _victim(client: Client, params: dict) -> Worker:
    assert client.get(reverse("collection:start"), params).status_code == 302
    complete_profile(client)
    return Worker.objects.get(platform_worker_id=params.get("workerId") or params["PROLIFIC_PID"])


@pytest.fixture
def many_topics(db):
    from collection.models import Topic

    return [Topic.objects.create(title=f"T{i}") for i in range(30)]


def test_eight_entries_with_a_victims_id_take_nothing_of_theirs(client, many_topics, demo_models, settings_row,
                                                                settings):
    victim = _victim(client, mturk("A2SVICTIM0000001", VICTIM_ASSIGNMENT))
    available = len(study.topics_available(worker=victim, assignment_id=VICTIM_ASSIGNMENT))
    statuses = []
    for i in range(8):
        attacker = Client()
        r = attacker.get(reverse("collection:start"), mturk("A2SVICTIM0000001", f"3ATTACK{i:023d}"))
        statuses.append(r.status_code)
        if r.status_code != 302:
            assert "Too many new assignments" in r.content.decode()
            continue
        assert r.url == reverse("collection:consent")  # the victim's consent is not reused
        assert attacker.get(reverse("collection:topics")).url == reverse("collection:consent")
        complete_profile(attacker)  # its own answers, kept off the victim's row
        choose(attacker, n=3)
    assert statuses == [302] * 3 + [429] * 5  # IFLLM_NEW_ASSIGNMENTS_PER_HOUR = 3
    victim.refresh_from_db()
    assert (victim.age, victim.location) == (30, "Testland")
    # The victim still has every topic they had: the unverified tasks took none of them.
    assert len(study.topics_available(worker=victim, assignment_id=VICTIM_ASSIGNMENT)) == available
    unverified = Task.objects.filter(worker=victim, extra__has_key="unverified")
    assert unverified.count() == 9 and all(t.extra["entry_profile"]["age"] == 30 for t in unverified)
    kinds = dict(IdentityEvent.objects.values_list("kind", "count").order_by())
    assert IdentityEvent.objects.filter(kind="new_assignment").count() == 3
    assert IdentityEvent.objects.filter(kind="assignment_refused").count() == 5 and "assignment_refused" in kinds


def test_one_unverified_assignment_is_bounded(client, many_topics, demo_models, settings_row):
    _victim(client, mturk("W-bound", VICTIM_ASSIGNMENT))
    attacker = Client()
    attacker.get(reverse("collection:start"), mturk("W-bound", "3OTHER"))
    complete_profile(attacker)
    cfg = study.study_settings_get()
    choose(attacker, n=cfg.max_topics_per_entry)
    Task.objects.filter(assignment_id="3OTHER").update(status=Task.Status.COMPLETED)
    r = attacker.get(reverse("collection:topics"))
    pool = [c[0] for c in r.context["form"].fields["topics"].choices]
    r = attacker.post(reverse("collection:topics"), {"topics": pool[:1]})
    assert r.status_code == 200 and "cannot take more topics" in r.content.decode()
    assert Task.objects.filter(assignment_id="3OTHER").count() == cfg.max_topics_per_entry


def test_sync_that_finds_the_submission_verifies_the_assignment(client, many_topics, demo_models, settings_row):
    victim = _victim(client, mturk("W-sync", VICTIM_ASSIGNMENT))
    own = Client()
    own.get(reverse("collection:start"), mturk("W-sync", "3SECOND"))  # the worker's own second HIT
    complete_profile(own)
    (task,) = choose(own)
    assert "unverified" in task.extra
    before = len(study.topics_available(worker=victim, assignment_id=VICTIM_ASSIGNMENT))
    assert identity.assignment_verify(worker=victim, assignment_id="3SECOND", by="MTurk sync") == 1
    task.refresh_from_db()
    assert "unverified" not in task.extra
    assert len(study.topics_available(worker=victim, assignment_id=VICTIM_ASSIGNMENT)) == before - 1
    assert IdentityEvent.objects.filter(kind="assignment_verified", assignment_id="3SECOND").exists()
    # A re-entry with the verified assignment inherits the profile now.
    again = Client()
    assert again.get(reverse("collection:start"), mturk("W-sync", "3SECOND")).url != reverse("collection:consent")


@pytest.mark.parametrize("assignment", ["", " ", "A 1", "a" * 65, "<x>", "A1;drop"])
def test_empty_or_malformed_assignment_is_refused(client, assignment):
    r = client.get(reverse("collection:start"), mturk("W1", assignment))
    assert r.status_code == 400 and "assignment" in r.content.decode().lower()
    assert not Worker.objects.exists() and "ifllm.worker" not in client.session


def test_first_assignment_of_a_new_worker_is_theirs(client, topics, demo_models, settings_row):
    client.get(reverse("collection:start"), mturk("W-new", "3FIRST"))
    complete_profile(client)
    (task,) = choose(client)
    assert "unverified" not in task.extra
    # coming back with the same assignment (a reload of the HIT) is the same entry
    again = Client()
    r = again.get(reverse("collection:start"), mturk("W-new", "3FIRST"))
    assert r.url != reverse("collection:consent")
    assert not IdentityEvent.objects.filter(kind="new_assignment").exists()


@pytest.fixture
def prolific_api(monkeypatch):
    with FakeProlificServer(token="tok-1") as server:
        monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-1")
        monkeypatch.setenv("PROLIFIC_API_URL", server.url)
        yield server


def prolific(pid: str, session: str) -> dict[str, str]:
    return {"PROLIFIC_PID": pid, "STUDY_ID": "STUDY1", "SESSION_ID": session}


def test_prolific_session_of_this_participant_is_verified_at_entry(client, topics, demo_models, settings_row,
                                                                   prolific_api):
    _victim(client, prolific("PVICTIM", "SESSION1"))
    prolific_api.submissions["SESSION2"] = {"participant_id": "PVICTIM", "study_id": "STUDY1"}
    same_person = Client()
    r = same_person.get(reverse("collection:start"), prolific("PVICTIM", "SESSION2"))
    assert r.status_code == 302 and r.url != reverse("collection:consent")  # vouched for: the profile is theirs
    assert prolific_api.requests[-1] == ("/api/v1/submissions/SESSION2/", "Token tok-1")
    assert IdentityEvent.objects.filter(kind="assignment_verified", assignment_id="SESSION2").exists()


def test_prolific_session_of_someone_else_is_refused(client, topics, demo_models, settings_row, prolific_api):
    _victim(client, prolific("PVICTIM", "SESSION1"))
    prolific_api.submissions["SESSION3"] = {"participant_id": "PATTACKER", "study_id": "STUDY1"}
    for session in ("SESSION3", "NOSUCHSESSION"):
        attacker = Client()
        r = attacker.get(reverse("collection:start"), prolific("PVICTIM", session))
        assert r.status_code == 403 and "ifllm.worker" not in attacker.session
    assert IdentityEvent.objects.filter(kind="assignment_refused").count() == 2


def test_prolific_api_down_leaves_the_entry_unverified(client, topics, demo_models, settings_row, prolific_api):
    _victim(client, prolific("PVICTIM", "SESSION1"))
    prolific_api.down = True
    other = Client()
    r = other.get(reverse("collection:start"), prolific("PVICTIM", "SESSION4"))
    assert r.status_code == 302 and r.url == reverse("collection:consent")


def test_planted_session_bound_to_the_victim_is_not_kept(client, topics, demo_models, settings_row):
    """Session fixation (item 10): the attacker's own session, bound to the victim's worker id,
    planted in the victim's browser, gets a new key when the victim enters."""
    attacker = Client()
    attacker.get(reverse("collection:start"), mturk("W-fix", "3FIX"))
    planted = attacker.cookies["sessionid"].value
    victim = Client()
    victim.cookies["sessionid"] = planted
    assert victim.get(reverse("collection:start"), mturk("W-fix", "3FIX")).status_code == 302
    assert victim.cookies["sessionid"].value != planted
    complete_profile(victim)
    attacker.cookies["sessionid"] = planted
    assert attacker.get(reverse("collection:topics")).url == reverse("collection:start")
