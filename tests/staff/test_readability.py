"""Readability of the staff pages (issue 21, item 13): Markdown answers rendered safely, the Task QC
list, the figures grid, the admin index labels, the 403 page with the site's chrome and a reason,
and ``/crowd/``."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from collection.markdown_render import render_markdown
from crowd.models import TaskQC
from jobs.models import Job
from tests.support.site_tasks import site_task

pytestmark = pytest.mark.django_db

ANSWER = ("**Bold** and a list:\n\n- one\n- two\n\n<script>alert(1)</script> [bad](javascript:alert(1)) "
          "[good](https://example.org) ![track](https://evil.example/p.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |")


def test_markdown_is_rendered_and_sanitised() -> None:
    html = render_markdown(ANSWER)
    assert "<strong>Bold</strong>" in html and "<li>one</li>" in html and "<table>" in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">good</a>' in html
    # Must not: run a script, follow a javascript: link, or fetch a remote image.
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.replace("[bad](javascript:alert(1))", "")  # left as plain text
    assert 'href="javascript' not in html and "<img" not in html and "evil.example" not in html
    assert render_markdown(None) == ""


@pytest.fixture
def boss() -> User:
    return User.objects.create_superuser("boss", password="pw-boss-123")


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_task_review_renders_answers_as_markdown(boss) -> None:
    task = site_task(name="md", chunk_sizes=())
    task.turns.update(response_1=ANSWER)
    html = _client(boss).get(reverse("crowd:task_review", args=[task.pk])).content.decode()
    cell = re.search(r'<div class="md-answer">(.*?)</div>', html, re.S).group(1)
    assert "<strong>Bold</strong>" in cell and "**Bold**" not in cell and "<script" not in cell


def test_task_qc_list_says_flagged_in_words_with_short_figures_and_the_decision_first(boss) -> None:
    from crowd.services import task_qc_compute

    flagged, passed = site_task(name="f", chunk_sizes=(30,)), site_task(name="p", chunk_sizes=(30,))
    for task in (flagged, passed):
        task_qc_compute(task=task)
    TaskQC.objects.filter(task=flagged).update(flagged=True, response_score=0.123456789012345,
                                               reasons=[{"message": "response score below the threshold"}])
    TaskQC.objects.filter(task=passed).update(flagged=False, response_score=None, sampling_rate_hz=float("nan"))
    html = _client(boss).get(reverse("admin:crowd_taskqc_changelist")).content.decode()
    assert '<span class="bad qc-verdict">flagged</span>' in html
    assert '<span class="good qc-verdict">passed</span>' in html
    assert "icon-yes.svg\" alt=\"True\"" not in re.search(r'<td class="field-qc_verdict">.*?</td>', html, re.S).group(0)
    assert "0.123" in html and "0.1234567" not in html and ">nan<" not in html
    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', html)
    assert headers.index("decision_dataset") < headers.index("reason_list") < headers.index("response")
    assert "Not reviewed<br>kept" in html
    assert "crowd/staff.css" in html


def test_figures_dashboard_is_a_grid_and_the_index_names_its_pages(boss) -> None:
    client = _client(boss)
    dashboard = client.get(reverse("analysis:dashboard")).content.decode()
    assert 'class="ifllm-figure-grid"' in dashboard and "max-width:520px" not in dashboard
    index = client.get(reverse("admin:index")).content.decode()
    assert "Reward-model leaderboard" not in index and "tasks left out of the release" not in index
    assert f'<a href="{reverse("analysis:leaderboard")}">Model leaderboard</a>' in index
    assert "release workers the QC thresholds would exclude" in index
    assert f'<a href="{reverse("crowd:index")}">Crowd pages</a>' in index


def test_crowd_prefix_is_an_index_page_not_a_404(boss) -> None:
    assert reverse("crowd:index") == "/crowd/"
    response = _client(boss).get("/crowd/")
    assert response.status_code == 200 and 'id="crowd-index"' in response.content.decode()
    assert Client().get("/crowd/").status_code == 302  # anonymous: to the login page


def test_viewer_gets_a_403_page_with_chrome_and_the_reason(django_user_model) -> None:
    viewer = django_user_model.objects.create_user("victor", password="pw-victor-123", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    plain_staff = django_user_model.objects.create_user("sam", password="pw-sam-12345", is_staff=True)
    job = Job.objects.create(kind="jobs.count", status=Job.Status.RUNNING)

    response = _client(viewer).post(reverse("admin:jobs_job_cancel", args=[job.pk]))
    html = response.content.decode()
    assert response.status_code == 403
    assert 'id="header"' in html and "Logged in as <strong>victor</strong>" in html
    assert "victor may not cancel jobs.count jobs (needs jobs.add_job)" in html and "Your roles: <strong>viewer" in html

    page = _client(plain_staff).get(reverse("analysis:dashboard"))
    assert page.status_code == 403
    assert "This page needs the access.view_staff_pages permission" in page.content.decode()
    crowd = _client(plain_staff).get("/crowd/qc/")
    assert crowd.status_code == 403 and "access.view_staff_pages" in crowd.content.decode()
