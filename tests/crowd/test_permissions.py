"""The permission matrix: anonymous, a worker's session, a logged-in non-staff user, staff without
a role, viewer and researcher, against every staff page and every state-changing action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from access.roles import LAB_APPS
from collection.models import Task, Turn, Worker
from crowd.models import HIT, Assignment, AuditLog, Study, TaskQC

from .conftest import client_for

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "worker_session", "plain_user", "staff_no_role", "viewer", "researcher"]


@pytest.fixture
def clients(researcher, viewer, plain_user, staff_no_role) -> dict[str, Client]:
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


def test_csrf_is_enforced_on_staff_pages(researcher, data: dict[str, int]) -> None:
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


# --------------------------------------------------------------------------- enumerated matrices
# Admin actions, staff pages and job kinds are listed from the running site, not by hand, so a
# new one is in the matrix the day it is added.


def _request_for(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _all_admin_actions() -> list[tuple[str, str, tuple[str, ...]]]:
    """(model label, action name, declared permissions) of every action of every ModelAdmin."""
    from django.contrib import admin

    out = []
    for model, model_admin in admin.site._registry.items():
        for func, name, _description in model_admin._get_base_actions():
            out.append((model._meta.label, name, tuple(getattr(func, "allowed_permissions", ()))))
    return out


def test_every_admin_action_declares_permissions() -> None:
    actions = _all_admin_actions()
    assert len(actions) > 20  # the enumeration sees the site's actions, not nothing
    assert [a for a in actions if not a[2]] == []


def test_admin_actions_per_role(researcher, viewer, staff_no_role) -> None:
    """Viewers get only read-only actions (declared ``view``), researchers get every one."""
    from django.contrib import admin

    read_only = {(label, name) for label, name, perms in _all_admin_actions() if set(perms) <= {"view"}}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        base = {name for _f, name, _d in model_admin._get_base_actions()}
        offered = {
            actor: set(model_admin.get_actions(_request_for(user)))
            for actor, user in (("researcher", researcher), ("viewer", viewer), ("staff_no_role", staff_no_role))
        }
        if model._meta.app_label in LAB_APPS:  # researchers hold every permission of the lab's apps
            assert offered["researcher"] >= base - {"delete_selected"}, label
        assert offered["viewer"] == {n for n in base if (label, n) in read_only}, label
        assert offered["staff_no_role"] == set(), label


def _staff_urls() -> list[tuple[str, object]]:
    """Every URL pattern outside the admin, the study site (``collection``), the job API and the
    schema: the staff pages. Returned as (namespaced name, pattern)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    public = {"collection", "admin", "jobs"}
    out = []

    def walk(patterns, namespace: str | None) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace or namespace
                if ns in public or getattr(p, "app_name", None) in public:
                    continue
                walk(p.url_patterns, ns)
            elif isinstance(p, URLPattern) and namespace and p.name:
                out.append((f"{namespace}:{p.name}", p))

    walk(get_resolver().url_patterns, None)
    return out


@pytest.fixture
def staff_url_args(data: dict[str, int]) -> dict[str, dict[str, int]]:
    """Real objects for the pages' ids (a page whose ids are unknown here fails the test)."""
    from analysis.models import AnalysisFigure, Leaderboard, StudyPlan
    from collection.models import DataSelection

    fig = AnalysisFigure.objects.create(name="demo", title="Demo", png=b"\x89PNG", svg="<svg/>")
    plan = StudyPlan.objects.create(name="demo", results={"curve": []}, svg="<svg/>")
    board = Leaderboard.objects.create(name="demo", csv="model,score\n", png=b"\x89PNG", svg="<svg/>",
                                       results={"sources": []})
    study = Study.objects.create(name="monitored", platform=Study.Platform.PROLIFIC, prolific_study_id="c" * 24)
    from collection.models import Withdrawal

    withdrawal = Withdrawal.objects.create(channel=Withdrawal.Channel.COMMAND)
    return {
        "crowd:study_monitor": {"study_id": study.pk},
        "crowd:study_monitor_data": {"study_id": study.pk},
        **{f"analysis:leaderboard_{fmt}": {"pk": board.pk} for fmt in ("csv", "json", "png", "svg")},
        "crowd:withdrawal": {"withdrawal_id": withdrawal.pk},
        "crowd:task_review": {"task_id": data["task"]},
        "crowd:worker_review": {"worker_id": data["worker"]},
        "crowd:replay": {"turn_id": data["turn"]},
        "crowd:review_queue": {"selection_id": DataSelection.objects.create(name="demo", task_ids=[data["task"]]).pk},
        "analysis:figure_png": {"pk": fig.pk},
        "analysis:figure_svg": {"pk": fig.pk},
        "analysis:plan_json": {"pk": plan.pk},
        "analysis:plan_svg": {"pk": plan.pk},
    }


STAFF_PAGE_STATUS = {
    "anonymous": 302, "worker_session": 302, "plain_user": 302, "staff_no_role": 403, "viewer": 200, "researcher": 200,
}


def test_every_staff_page_per_actor(clients: dict[str, Client], staff_url_args: dict) -> None:
    urls = _staff_urls()
    names = {name for name, _ in urls}
    assert {"crowd:task_review", "crowd:qc_plots", "analysis:dashboard", "analysis:figure_png"} <= names
    for name, pattern in urls:
        kwargs = staff_url_args.get(name, {})
        missing = set(pattern.pattern.converters) - set(kwargs)
        assert not missing, f"give {name} an object for {missing} in staff_url_args"
        url = reverse(name, kwargs=kwargs)
        for actor, client in clients.items():
            response = client.get(url)
            assert response.status_code == STAFF_PAGE_STATUS[actor], (actor, name)
            if response.status_code == 302:
                assert response["Location"].startswith(reverse("admin:login")), (actor, name)


def _job_kinds() -> list[str]:
    import alignment.tasks  # noqa: F401 - every app registers its kinds on import
    import analysis.tasks  # noqa: F401
    import crowd.tasks  # noqa: F401
    import jobs.tasks  # noqa: F401
    from jobs.runner import REGISTRY

    return sorted(REGISTRY)


def test_every_job_kind_per_role(researcher, viewer, staff_no_role, plain_user) -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied

    from jobs.models import Job
    from jobs.services import job_cancel, job_create, job_permission, job_rerun, job_start

    kinds = _job_kinds()
    assert {"crowd.export_dataset", "crowd.compute_qc", "analysis.figures", "alignment.train"} <= set(kinds)
    viewer_perms = set(Group.objects.get(name="viewer").permissions.values_list("content_type__app_label", "codename"))
    for kind in kinds:
        app_label, codename = job_permission(kind).split(".")
        assert (app_label, codename) not in viewer_perms, kind
        assert researcher.has_perm(job_permission(kind)), kind
        job = job_create(kind=kind, params={})  # started by the system: no user, no check
        for user in (viewer, staff_no_role, plain_user, AnonymousUser()):
            with pytest.raises(PermissionDenied):
                job_start(kind=kind, params={}, user=user)
            with pytest.raises(PermissionDenied):
                job_cancel(job=job, user=user)
            with pytest.raises(PermissionDenied):
                job_rerun(job=job, user=user)
        assert Job.objects.filter(kind=kind).count() == 1 and Job.objects.get(pk=job.pk).status == "PENDING"
        mine = job_create(kind=kind, params={}, user=researcher, rerun_of=job)
        assert mine.created_by == researcher and mine.rerun_of == job
        job_cancel(job=job, user=researcher)
        job.refresh_from_db()
        assert job.status == "CANCELLED" and job.cancelled_by == researcher


def _job_admin_post(client: Client, action: str, job_pk: int):
    return client.post(
        reverse("admin:jobs_job_changelist"), {"action": action, "_selected_action": [job_pk]}, follow=True
    )


def test_job_admin_cancel_and_rerun_per_role(
    clients: dict[str, Client], researcher, django_capture_on_commit_callbacks
) -> None:
    """The issue's case: a viewer re-ran an export it had no right to. Now the actions are not
    offered to viewers and a forged POST does nothing; researchers re-run, and the new job
    records who started it and which job it repeats."""
    from jobs.models import Job
    from jobs.services import job_create

    export = job_create(kind="crowd.export_dataset", params={"path": "/nonexistent/x"})
    export.status = Job.Status.FAILED
    export.save()
    pending = job_create(kind="crowd.compute_qc", params={"task_ids": []})
    page = clients["viewer"].get(reverse("admin:jobs_job_changelist"))
    assert page.status_code == 200 and b"rerun_jobs" not in page.content and b"cancel_jobs" not in page.content
    _job_admin_post(clients["viewer"], "rerun_jobs", export.pk)
    _job_admin_post(clients["viewer"], "cancel_jobs", pending.pk)
    assert Job.objects.count() == 2 and Job.objects.get(pk=pending.pk).status == "PENDING"

    with django_capture_on_commit_callbacks(execute=False):
        _job_admin_post(clients["researcher"], "rerun_jobs", export.pk)
    new = Job.objects.exclude(pk__in=[export.pk, pending.pk]).get()
    assert new.kind == "crowd.export_dataset" and new.created_by == researcher and new.rerun_of_id == export.pk
    _job_admin_post(clients["researcher"], "cancel_jobs", pending.pk)
    pending.refresh_from_db()
    assert pending.status == "CANCELLED" and pending.cancelled_by == researcher


def test_analysis_dashboard_job_needs_the_permission(
    clients: dict[str, Client], researcher, django_capture_on_commit_callbacks
) -> None:
    from jobs.models import Job

    url = reverse("analysis:dashboard")
    assert b'value="render"' not in clients["viewer"].get(url).content
    assert clients["viewer"].post(url, {"action": "render"}).status_code == 403
    assert clients["staff_no_role"].post(url, {"action": "render"}).status_code == 403
    assert not Job.objects.exists()
    assert b'value="render"' in clients["researcher"].get(url).content
    with django_capture_on_commit_callbacks(execute=False):
        assert clients["researcher"].post(url, {"action": "render"}).status_code == 302
    assert Job.objects.get().created_by == researcher


# --------------------------------------------------------------------------- private fields
SECRET_WORKER, SECRET_AMOUNT = "A3SECRETWORKER77", "7.25"


@pytest.fixture
def private_rows(study: Study) -> dict[str, object]:
    hit = HIT.objects.create(
        study=study, environment="sandbox", hit_id="H9", unique_request_token="t9", max_assignments=1, reward="3.10"
    )
    a = Assignment.objects.create(
        study=study, hit=hit, platform="mturk", assignment_id="A9", platform_worker_id=SECRET_WORKER,
        answer={"workerId": SECRET_WORKER, "code": "OK123"},
    )
    log = AuditLog.objects.create(
        platform="mturk", environment="sandbox", operation="send_bonus", ok=False, study=study,
        request={"WorkerId": SECRET_WORKER, "BonusAmount": SECRET_AMOUNT, "AssignmentId": "A9"},
        response=None, error=f"worker {SECRET_WORKER} is blocked",
    )
    worker = Worker.objects.create(pseudonym="p-secret", platform="mturk", platform_worker_id=SECRET_WORKER)
    return {"hit": hit, "assignment": a, "log": log, "worker": worker}


def test_viewers_never_see_worker_ids_or_amounts(clients: dict[str, Client], private_rows: dict) -> None:
    pages = [
        reverse("admin:crowd_auditlog_changelist"),
        reverse("admin:crowd_auditlog_change", args=[private_rows["log"].pk]),
        reverse("admin:crowd_assignment_changelist"),
        reverse("admin:crowd_assignment_change", args=[private_rows["assignment"].pk]),
        reverse("admin:crowd_hit_change", args=[private_rows["hit"].pk]),
        reverse("admin:collection_worker_change", args=[private_rows["worker"].pk]),
    ]
    for url in pages:
        body = clients["viewer"].get(url).content.decode()
        assert SECRET_WORKER not in body and SECRET_AMOUNT not in body and "3.10" not in body, url
        assert "A9" in body or "H9" in body or "p-secret" in body or "send_bonus" in body, url  # the page itself shows
        if url != reverse("admin:crowd_assignment_changelist"):  # that list shows no worker id to anyone
            body = clients["researcher"].get(url).content.decode()
            assert SECRET_WORKER in body or "3.10" in body, url
    # A search by worker id would confirm who took part: viewers cannot search by it.
    for url, row in (
        (reverse("admin:crowd_assignment_changelist"), ">A9<"),
        (reverse("admin:collection_worker_changelist"), ">p-secret<"),
    ):
        assert row not in clients["viewer"].get(url, {"q": SECRET_WORKER}).content.decode(), url
        assert row in clients["researcher"].get(url, {"q": SECRET_WORKER}).content.decode(), url
