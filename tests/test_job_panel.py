"""The job panel of job and run pages: one-line cause, Cancel / Resume, re-runs that re-link their run."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from analysis.models import AnalysisFigure, RewardModelRun
from jobs.models import Job
from jobs.services import job_rerun, job_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(django_capture_on_commit_callbacks) -> Job:
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="jobs.count", params={"n": 4, "fail": True})
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    return job


def _viewer(django_user_model):
    user = django_user_model.objects.create_user("victor", password="pw-victor", is_staff=True)
    user.groups.add(Group.objects.get(name="viewer"))
    return user


def test_cause_is_the_last_line_of_the_traceback(failed) -> None:
    assert failed.cause == "RuntimeError: failing on purpose at 3 of 4"
    assert Job(error="").cause == ""


def test_job_page_shows_the_cause_and_hides_the_traceback(admin_client, failed) -> None:
    html = admin_client.get(reverse("admin:jobs_job_change", args=[failed.pk])).content.decode()
    cause = re.search(r'<p class="errornote job-cause">([^<]*)</p>', html)
    assert cause and cause.group(1) == "RuntimeError: failing on purpose at 3 of 4"
    # The traceback is behind a toggle (details), never in the open.
    assert re.search(r"<details class=\"job-traceback\"><summary>Traceback \(\d+ lines\)</summary><pre[^>]*>Traceback",
                     html)
    assert "Traceback (most recent call last)" not in re.sub(r"<details.*?</details>", "", html, flags=re.S)
    api = admin_client.get(reverse("jobs:detail", args=[failed.pk])).json()
    assert api["cause"] == failed.cause and api["is_finished"] is True


def test_rerun_moves_the_run_to_the_new_job_but_not_a_figure(failed, django_capture_on_commit_callbacks) -> None:
    run = RewardModelRun.objects.create(name="r", job=failed)
    figure = AnalysisFigure.objects.create(name="f", title="f", job=failed, png=b"", svg="")
    with django_capture_on_commit_callbacks(execute=True):
        new = job_rerun(job=failed)
    run.refresh_from_db()
    figure.refresh_from_db()
    assert run.job_id == new.pk and new.rerun_of_id == failed.pk
    assert figure.job_id == failed.pk  # a figure keeps the job that drew it


def test_rerun_from_the_jobs_list_relinks_the_run(admin_client, failed, django_capture_on_commit_callbacks) -> None:
    run = RewardModelRun.objects.create(name="r", job=failed)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:jobs_job_changelist"),
                          {"action": "rerun_jobs", "_selected_action": [failed.pk]})
    run.refresh_from_db()
    assert run.job_id != failed.pk and run.job.rerun_of_id == failed.pk


def test_run_page_offers_cancel_while_running_and_cancel_works(admin_client) -> None:
    job = Job.objects.create(kind="analysis.reward_models", status=Job.Status.RUNNING, progress=30, message="features")
    run = RewardModelRun.objects.create(name="r", job=job)
    page_url = reverse("admin:analysis_rewardmodelrun_change", args=[run.pk])
    html = admin_client.get(page_url).content.decode()
    assert 'class="ifllm-job-panel job-running"' in html and 'data-live="1"' in html
    assert ">Cancel</button>" in html and "job-resume" not in html
    assert "/static/jobs/live_job.js" in html and "— features" in html

    response = admin_client.post(reverse("admin:jobs_job_cancel", args=[job.pk]), {"next": page_url})
    assert response.status_code == 302 and response["Location"] == page_url
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    html = admin_client.get(page_url).content.decode()
    assert "job-resume" in html and ">Cancel</button>" not in html and 'data-live="0"' in html


def test_resume_button_starts_a_new_job_and_relinks(admin_client, failed, django_capture_on_commit_callbacks) -> None:
    run = RewardModelRun.objects.create(name="r", job=failed)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:jobs_job_rerun", args=[failed.pk]), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:jobs_job_change", args=[failed.pk])
    run.refresh_from_db()
    assert run.job.rerun_of_id == failed.pk


def test_buttons_need_post_and_the_kinds_permission(client, django_user_model, failed) -> None:
    running = Job.objects.create(kind="jobs.count", status=Job.Status.RUNNING)
    viewer = _viewer(django_user_model)
    client.force_login(viewer)
    html = client.get(reverse("admin:jobs_job_change", args=[running.pk])).content.decode()
    assert "ifllm-job-panel" in html and ">Cancel</button>" not in html  # viewers see no buttons
    assert client.get(reverse("admin:jobs_job_cancel", args=[running.pk])).status_code == 405
    assert client.post(reverse("admin:jobs_job_cancel", args=[running.pk])).status_code == 403
    assert client.post(reverse("admin:jobs_job_rerun", args=[failed.pk])).status_code == 403
    running.refresh_from_db()
    assert running.status == Job.Status.RUNNING and Job.objects.count() == 2
