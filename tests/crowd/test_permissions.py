"""The permission matrix: anonymous, a worker's session, a logged-in non-staff user, staff without
a role, viewer and researcher, against every staff page and every state-changing action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from collection.models import Task, Turn, Worker
from crowd.models import HIT, Assignment, AuditLog, Study, TaskQC

from .conftest import client_for

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "worker_session", "plain_user", "staff_no_role", "viewer", "researcher"]


@pytest.fixture
def clients(researcher, viewer, plain_user, staff_no_role) -> dict[str, Client]:  # noqa: ANN001
    worker_session = Client()
    session = worker_session.session
    session["worker_id"] = 1  # what a study participant's session carries: no Django user
    session.save()
    return {
        "anonymous": Client(),
        "worker_session": worker_session,
        "plain_user": client_for(plain_user),
        "staff_no_role": client_for(staff_no_role),
        "viewer": client_for(viewer),
        "researcher": client_for(researcher),
    }


@pytest.fixture
def data(mini_release: None) -> dict[str, int]:
    task = Task.objects.filter(release_task_id=163).get()
    from crowd.services import task_qc_compute

    task_qc_compute(task=task)
    turn = Turn.objects.filter(task=task).first()
    return {"task": task.pk, "worker": task.worker_id, "turn": turn.pk}


def _pages(data: dict[str, int]) -> dict[str, str]:
    return {
        "qc_plots": reverse("crowd:qc_plots"),
        "release_exclusions": reverse("crowd:release_exclusions"),
        "task_review": reverse("crowd:task_review", args=[data["task"]]),
        "worker_review": reverse("crowd:worker_review", args=[data["worker"]]),
        "replay": reverse("crowd:replay", args=[data["turn"]]),
    }


ADMIN_PAGES = ["study", "hit", "assignment", "taskqc", "auditlog", "payment"]
#: Expected status of GET per actor: staff pages, then admin changelists (payment separately).
EXPECTED_GET = {
    "anonymous": (302, 302, 302),
    "worker_session": (302, 302, 302),
    "plain_user": (302, 302, 302),
    "staff_no_role": (403, 403, 403),
    "viewer": (200, 200, 403),
    "researcher": (200, 200, 200),
}


@pytest.mark.parametrize("actor", ACTORS)
def test_get_matrix(actor: str, clients: dict[str, Client], data: dict[str, int]) -> None:
    client = clients[actor]
    pages_status, admin_status, payment_status = EXPECTED_GET[actor]
    for name, url in _pages(data).items():
        response = client.get(url)
        assert response.status_code == pages_status, (actor, name)
        if pages_status == 302:
            assert response["Location"].startswith(reverse("admin:login"))
    for model in ADMIN_PAGES:
        response = client.get(reverse(f"admin:crowd_{model}_changelist"))
        expected = payment_status if model == "payment" else admin_status
        assert response.status_code == expected, (actor, model)


EXPECTED_POST = {  # status of a decision POST, and whether it took effect
    "anonymous": (302, False),
    "worker_session": (302, False),
    "plain_user": (302, False),
    "staff_no_role": (403, False),
    "viewer": (403, False),
    "researcher": (302, True),
}


@pytest.mark.parametrize("actor", ACTORS)
def test_post_matrix(actor: str, clients: dict[str, Client], data: dict[str, int]) -> None:
    client = clients[actor]
    status, effect = EXPECTED_POST[actor]
    response = client.post(reverse("crowd:task_review", args=[data["task"]]), {"op": "exclude", "note": "weak summary"})
    assert response.status_code == status
    assert Task.objects.get(pk=data["task"]).excluded is effect
    response = client.post(reverse("crowd:worker_review", args=[data["worker"]]), {"op": "block", "reason": "spam"})
    assert response.status_code == status
    assert Worker.objects.get(pk=data["worker"]).blocked is effect  # release worker: blocked locally only
    response = client.post(reverse("crowd:release_exclusions"))
    assert response.status_code == status


@pytest.mark.parametrize("actor", ["viewer", "staff_no_role", "plain_user"])
def test_admin_payment_actions_are_not_offered_or_run(actor: str, clients: dict[str, Client], study: Study) -> None:
    hit = HIT.objects.create(
        study=study, environment="sandbox", hit_id="H1", unique_request_token="t", max_assignments=1, reward="1.00"
    )
    a = Assignment.objects.create(study=study, hit=hit, platform="mturk", assignment_id="A1", platform_worker_id="W1")
    url = reverse("admin:crowd_assignment_changelist")
    page = clients[actor].get(url)
    if page.status_code == 200:
        assert b"approve_assignments" not in page.content and b"bonus_assignments" not in page.content
    for action in ("approve_assignments", "bonus_assignments", "reject_assignments", "block_workers"):
        clients[actor].post(
            url,
            {
                "action": action,
                "_selected_action": [a.pk],
                "apply": "1",
                "feedback": "x",
                "amount": "1.00",
                "reason": "x",
                "key": "bonus",
            },
        )
    a.refresh_from_db()
    assert a.status == "Submitted" and not AuditLog.objects.exists() and not a.payments.exists()


def test_viewer_sees_the_review_screen_without_decision_buttons(clients: dict[str, Client], data: dict) -> None:
    body = clients["viewer"].get(reverse("crowd:task_review", args=[data["task"]])).content.decode()
    assert "Quality control" in body and 'value="exclude"' not in body
    body = clients["researcher"].get(reverse("crowd:task_review", args=[data["task"]])).content.decode()
    assert 'value="exclude"' in body


def test_csrf_is_enforced_on_staff_pages(researcher, data: dict[str, int]) -> None:  # noqa: ANN001
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    url = reverse("crowd:task_review", args=[data["task"]])
    assert client.post(url, {"op": "exclude"}).status_code == 403
    assert not Task.objects.get(pk=data["task"]).excluded
    token = client.get(url).cookies["csrftoken"].value
    assert client.post(url, {"op": "exclude", "csrfmiddlewaretoken": token}).status_code == 302
    assert Task.objects.get(pk=data["task"]).excluded
    assert TaskQC.objects.get(task_id=data["task"]).decision == "exclude"


def test_roles_exist_with_the_documented_split() -> None:
    researcher = set(Group.objects.get(name="researcher").permissions.values_list("codename", flat=True))
    viewer = set(Group.objects.get(name="viewer").permissions.values_list("codename", flat=True))
    assert {"pay_workers", "review_task", "export_dataset", "view_staff_pages", "change_task"} <= researcher
    assert "view_staff_pages" in viewer and "view_taskqc" in viewer and "view_task" in viewer
    assert not {c for c in viewer if not c.startswith("view_")} - {"view_staff_pages"}
    assert "view_payment" not in viewer and "pay_workers" not in viewer
