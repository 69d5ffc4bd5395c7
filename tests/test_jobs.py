"""Job lifecycle with tasks run eagerly (in-process): the runner's state machine, services, admin."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from jobs.exceptions import JobStateError, UnknownJobKind
from jobs.models import Job
from jobs.runner import REGISTRY, JobContext, default_queue_for, job_task
from jobs.services import job_cancel, job_create, job_enqueue, job_start

CALLS: list[int] = []  # job pks whose function body ran, to prove a redelivery ran nothing


@job_task("tests.probe")
def probe(ctx: JobContext, *, pct: int = 40) -> dict:
    """Report progress, then read the row back as another process would see it."""
    CALLS.append(ctx.job.pk)
    ctx.progress(pct, "probing")
    row = Job.objects.values("status", "progress", "message").get(pk=ctx.job.pk)
    return row


@job_task("tests.cancel_self")
def cancel_self(ctx: JobContext) -> dict:
    """Gets cancelled by someone else mid-run; the next progress report must stop it."""
    job_cancel(job=Job.objects.get(pk=ctx.job.pk))
    ctx.progress(50, "after cancel")
    CALLS.append(-ctx.job.pk)  # must not be reached
    return {"reached": True}


@job_task("tests.chatty")
def chatty(ctx: JobContext, *, lines: int) -> None:
    for i in range(lines):
        ctx.log(f"line {i}")


@job_task("tests.bad_result")
def bad_result(ctx: JobContext) -> dict:
    return {"when": object()}


@job_task("tests.on_gpu", queue="gpu")
def on_gpu(ctx: JobContext) -> None:
    return None


def run_task(job: Job) -> Job:
    """Deliver the job's message once more, as a broker redelivery would, and reload the row."""
    REGISTRY[job.kind].apply(kwargs={"job_pk": job.pk})
    job.refresh_from_db()
    return job


@pytest.fixture
def started(django_capture_on_commit_callbacks):
    """job_start with the on-commit send executed, as it would be outside a test transaction."""

    def start(kind: str, params: dict | None = None, user=None) -> Job:
        with django_capture_on_commit_callbacks(execute=True):
            job = job_start(kind=kind, params=params, user=user)
        job.refresh_from_db()
        return job

    return start


pytestmark = pytest.mark.django_db


def test_count_job_succeeds_with_progress_log_and_result(started):
    job = started("jobs.count", {"n": 5})

    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100
    assert job.message == "5 of 5"
    assert job.result == {"counted": 5}
    assert job.log_tail.splitlines() == [f"counted {i}" for i in range(1, 6)]
    assert job.error == ""
    assert job.celery_task_id
    assert job.queue == "default"
    assert job.started_at is not None and job.finished_at >= job.started_at


def test_job_is_sent_only_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_start(kind="jobs.count", params={"n": 2})
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING
    assert len(callbacks) == 1
    callbacks[0]()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_progress_is_visible_in_the_database_while_running(started):
    job = started("tests.probe", {"pct": 40})

    assert job.result == {"status": "RUNNING", "progress": 40, "message": "probing"}
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100


def test_failure_leaves_failed_with_traceback(started):
    job = started("jobs.count", {"n": 4, "fail": True})

    assert job.status == Job.Status.FAILED
    assert job.error.startswith("Traceback (most recent call last)")
    assert "RuntimeError: failing on purpose at 3 of 4" in job.error
    assert job.progress == 50  # the last report before the failure
    assert job.result is None
    assert job.finished_at is not None


def test_wrong_params_fail_the_job_not_the_worker(started):
    job = started("jobs.count", {"n": 2, "nope": 1})

    assert job.status == Job.Status.FAILED
    assert "TypeError" in job.error and "nope" in job.error


def test_result_that_is_not_json_fails_the_job(started):
    job = started("tests.bad_result")

    assert job.status == Job.Status.FAILED
    assert "not JSON serializable" in job.error


def test_cancel_while_running_stops_at_next_progress(started):
    CALLS.clear()
    job = started("tests.cancel_self")

    assert job.status == Job.Status.CANCELLED
    assert job.progress == 0
    assert job.result is None
    assert job.finished_at is not None
    assert -job.pk not in CALLS


def test_cancelled_pending_job_never_runs():
    job = job_create(kind="jobs.count", params={"n": 3})
    job_cancel(job=job)

    job = run_task(job)

    assert job.status == Job.Status.CANCELLED
    assert job.started_at is None
    assert job.log_tail == ""


def test_cancelling_a_finished_job_is_refused(started):
    job = started("jobs.count", {"n": 1})
    with pytest.raises(JobStateError):
        job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_redelivery_of_succeeded_job_does_nothing(started):
    CALLS.clear()
    job = started("tests.probe")
    before = Job.objects.values().get(pk=job.pk)

    run_task(job)

    assert Job.objects.values().get(pk=job.pk) == before
    assert CALLS == [job.pk]


def test_redelivery_of_running_job_does_nothing():
    CALLS.clear()
    job = job_create(kind="tests.probe")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)

    job = run_task(job)

    assert job.status == Job.Status.RUNNING
    assert CALLS == []


def test_message_for_another_kind_is_refused():
    CALLS.clear()
    job = job_create(kind="jobs.count", params={"n": 1})

    REGISTRY["tests.probe"].apply(kwargs={"job_pk": job.pk})

    job.refresh_from_db()
    assert job.status == Job.Status.PENDING
    assert CALLS == []


def test_message_for_missing_job_is_dropped():
    result = REGISTRY["jobs.count"].apply(kwargs={"job_pk": 987654321})
    assert result.get() is None


def test_log_tail_keeps_only_the_last_lines(started, settings):
    settings.IFLLM_JOB_LOG_LINES = 200
    job = started("tests.chatty", {"lines": 250})

    lines = job.log_tail.splitlines()
    assert len(lines) == 200
    assert lines[0] == "line 50" and lines[-1] == "line 249"


def test_progress_above_100_violates_the_check_constraint():
    job = job_create(kind="jobs.count")
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(progress=101)


def test_unknown_kind_is_rejected():
    with pytest.raises(UnknownJobKind):
        job_create(kind="nobody.registered_this")


def test_only_pending_jobs_can_be_enqueued(started):
    job = started("jobs.count", {"n": 1})
    with pytest.raises(JobStateError):
        job_enqueue(job=job)


def test_queue_comes_from_routes_unless_the_decorator_names_one():
    assert default_queue_for("analysis.features") == "cpu"
    assert default_queue_for("alignment.train_dpo") == "gpu"
    assert default_queue_for("collection.import_release") == "default"
    assert default_queue_for("jobs.count") == "default"
    assert default_queue_for("unrouted.thing") == "default"
    assert job_create(kind="tests.on_gpu").queue == "gpu"


def test_a_kind_cannot_be_registered_by_two_functions():
    def other(ctx: JobContext) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        job_task("jobs.count")(other)


def test_job_records_its_creator(started, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("alice", password="x-long-password")
    user.user_permissions.add(Permission.objects.get(codename="add_job"))  # what jobs.count declares
    job = started("jobs.count", {"n": 1}, user=user)
    assert job.created_by == user


# --- Admin ------------------------------------------------------------------------------------


def test_admin_pages_render_log_and_error(admin_client, started):
    job = started("jobs.count", {"n": 4, "fail": True})

    changelist = admin_client.get(reverse("admin:jobs_job_changelist"))
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]))

    assert changelist.status_code == 200 and b"jobs.count" in changelist.content
    assert page.status_code == 200
    html = page.content.decode()
    assert "<pre" in html and "counted 2" in html and "RuntimeError" in html


def test_admin_cancel_action(admin_client, started):
    pending = job_create(kind="jobs.count")
    done = started("jobs.count", {"n": 1})

    response = admin_client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "cancel_jobs", "_selected_action": [pending.pk, done.pk]},
        follow=True,
    )

    pending.refresh_from_db()
    done.refresh_from_db()
    assert pending.status == Job.Status.CANCELLED
    assert done.status == Job.Status.SUCCEEDED
    text = response.content.decode()
    assert "Cancelled 1 job(s)." in text and "Skipped 1 job(s)" in text


def test_admin_rerun_action_starts_new_jobs_with_same_params(
    admin_client, admin_user, started, django_capture_on_commit_callbacks
):
    failed = started("jobs.count", {"n": 3, "fail": True})

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:jobs_job_changelist"),
            {"action": "rerun_jobs", "_selected_action": [failed.pk]},
        )

    new = Job.objects.exclude(pk=failed.pk).get()
    assert new.kind == "jobs.count" and new.params == {"n": 3, "fail": True}
    assert new.status == Job.Status.FAILED  # same params, same outcome: it really ran
    assert new.created_by == admin_user


# --- API --------------------------------------------------------------------------------------


def test_job_detail_api_shows_own_jobs_only(client, django_user_model, started):
    from django.contrib.auth.models import Permission

    alice = django_user_model.objects.create_user("alice", password="x-long-password")
    alice.user_permissions.add(Permission.objects.get(codename="add_job"))  # may start jobs.count
    bob = django_user_model.objects.create_user("bob", password="x-long-password")
    job = started("jobs.count", {"n": 2}, user=alice)
    url = reverse("jobs:detail", args=[job.pk])

    assert client.get(url).status_code == 403
    client.force_login(bob)
    assert client.get(url).status_code == 404
    client.force_login(alice)
    data = client.get(url).json()
    assert data["status"] == "SUCCEEDED" and data["progress"] == 100
    assert data["result"] == {"counted": 2}
    # issue 22: staff with no role read every job's log, result and traceback
    carol = django_user_model.objects.create_user("carol", password="x-long-password", is_staff=True)
    client.force_login(carol)
    assert client.get(url).status_code == 404
    carol.user_permissions.add(Permission.objects.get(codename="view_job"))  # what both roles hold
    client.force_login(django_user_model.objects.get(pk=carol.pk))
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_running_job_page_follows_the_job_with_a_script_the_csp_allows(admin_client) -> None:
    """The page follows the job with static/jobs/live_job.js, a script from the site itself, which
    the policy's script-src 'self' allows (an inline script without the nonce would be blocked and
    the page would never leave "Running")."""
    job = Job.objects.create(kind="analysis.figures", status=Job.Status.RUNNING)
    response = admin_client.get(f"/admin/jobs/job/{job.pk}/change/")
    policy = response["Content-Security-Policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'self'" in script_src
    assert '<script src="/static/jobs/live_job.js" defer></script>' in response.content.decode()
