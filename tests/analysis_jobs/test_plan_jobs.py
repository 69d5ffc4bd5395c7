"""The study planner through Django: the job on imported data, the page, the figure, the rights."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from analysis.models import AnalysisFigure, StudyPlan
from jobs.models import Job
from jobs.services import job_start
from tests.support.paths import MINI
from tests.support.scaled_release import scaled_release

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return scaled_release(MINI, tmp_path_factory.mktemp("scaled"), copies=8)


@pytest.fixture
def imported(release: Path) -> None:
    call_command("import_ifllm", str(release), "--jobs", "1", stdout=StringIO())


def _run(plan: StudyPlan, capture) -> Job:
    with capture(execute=True):
        job = job_start(kind="analysis.learning_curve", params={"plan_pk": plan.pk})
    job.refresh_from_db()
    plan.refresh_from_db()
    return job


def test_job_computes_the_curve_on_imported_workers_and_the_page_shows_the_answer(
    imported, django_capture_on_commit_callbacks, admin_client
) -> None:
    plan = StudyPlan.objects.create(repeats=2, trees=10, sizes="4,8", quality_filter=False)
    job = _run(plan, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.queue == "cpu" and plan.job_id == job.pk
    curve = plan.results["curve"]
    assert {r["n"] for r in curve} == {4, 8}  # 16 labelled workers: 8 held out, 8 to draw from
    assert {"RF + IF", "RF + Text lengths"} <= {r["model"] for r in curve}
    assert all(r["acc_lo"] <= r["accuracy"] <= r["acc_hi"] for r in curve)
    assert "workers_needed" in plan.results and plan.workers_needed == plan.results["workers_needed"]
    sentence = plan.results["workers_needed_detail"]["sentence"]
    assert sentence.startswith("RF + IF:")
    assert plan.results["votes_needed"] and plan.results["design_effect"] > 0
    assert "<svg" in plan.svg
    assert AnalysisFigure.objects.filter(name="learning_curve", job=job).exists()
    page = admin_client.get(f"/analysis/plan/?pk={plan.pk}").content.decode()
    assert 'id="plan-answer"' in page and sentence.split(":")[0] in page
    assert page.count("<tr><td>") == 2  # one row per training size
    assert f"/analysis/plan/{plan.pk}.svg" in page
    assert admin_client.get(f"/analysis/plan/{plan.pk}.svg").status_code == 200
    data = admin_client.get(f"/analysis/plan/{plan.pk}.json").json()
    assert data["curve"] == curve
    # the dashboard and analysis_figures draw it too
    out = StringIO()
    call_command("analysis_figures", stdout=out, stderr=StringIO())
    assert "learning_curve" in out.getvalue()


def test_too_few_workers_fail_with_the_reason(django_capture_on_commit_callbacks) -> None:
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())  # 3 workers
    plan = StudyPlan.objects.create(repeats=2, trees=10, quality_filter=False)
    job = _run(plan, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.FAILED
    assert "too few to hold out" in job.error
    assert plan.results == {} and plan.workers_needed is None


def test_start_from_the_page_needs_the_add_permission_and_valid_sizes(client, admin_client) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    assert client.get("/analysis/plan/").status_code == 200
    assert client.post("/analysis/plan/", {"repeats": 3}).status_code == 403
    assert StudyPlan.objects.count() == 0
    bad = admin_client.post("/analysis/plan/", {"repeats": 3, "sizes": "8,x"})
    assert bad.status_code == 400 and b"sizes" in bad.content
    bad = admin_client.post("/analysis/plan/", {"repeats": 1})
    assert bad.status_code == 400 and b"repeats" in bad.content
    assert StudyPlan.objects.count() == 0
    anonymous = client.__class__()
    assert anonymous.get("/analysis/plan/").status_code == 302  # to the admin login
