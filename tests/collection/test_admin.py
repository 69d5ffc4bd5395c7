"""Every collection admin page renders for staff on real (imported) data; non-staff are refused."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from collection.models import ImportRun, LLMModel, Task, Topic, TrajectoryChunk, Turn, Worker
from tests.support.paths import MINI

MODELS = [Worker, Topic, LLMModel, Task, Turn, TrajectoryChunk, ImportRun]

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported() -> None:
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages(admin_client, imported, model) -> None:
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    obj = model.objects.order_by("pk").first()
    change = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    assert change.status_code == 200
    # search and filters do not break
    assert admin_client.get(url, {"q": "a"}).status_code == 200


def test_task_page_shows_stream_counts_not_rows(admin_client, imported) -> None:
    task = Task.objects.filter(chunks__isnull=False).distinct().first()
    html = admin_client.get(reverse("admin:collection_task_change", args=[task.pk])).content.decode()
    total = sum(TrajectoryChunk.objects.filter(task=task).values_list("n_samples", flat=True))
    assert "gaze/box1" in html and "mouse/abs" in html
    counts = [int(c) for c in __import__("re").findall(r"<td>(\d+)</td>", html)]
    assert sum(counts) == total
    assert len(html) < 500_000


def test_admin_needs_staff(client, django_user_model) -> None:
    url = reverse("admin:collection_task_changelist")
    assert client.get(url).status_code == 302
    user = django_user_model.objects.create_user("worker", password="pw-12345-abc")
    client.force_login(user)
    assert client.get(url).status_code == 302


def test_seed_demo_is_idempotent_and_prints_password() -> None:
    out1, out2 = StringIO(), StringIO()
    call_command("seed_demo", stdout=out1)
    call_command("seed_demo", stdout=out2)
    assert out1.getvalue() == out2.getvalue()
    assert "Staff login: staff / " in out1.getvalue()
    # Two chat models for the study and one offline judge that is never served to workers.
    assert set(LLMModel.objects.filter(enabled=True).values_list("model_id", flat=True)) == {"demo-a", "demo-b"}
    assert list(LLMModel.objects.filter(can_judge=True).values_list("model_id", "enabled")) == [("demo-judge", False)]


def test_a_model_added_to_the_registry_is_neither_a_study_model_nor_a_judge(admin_client) -> None:
    response = admin_client.post(
        "/admin/collection/llmmodel/add/",
        {"name": "judge-x", "provider": "openai", "model_id": "gpt-x", "max_tokens": 500, "quota": 40},
    )
    assert response.status_code == 302, response.content[:2000]
    model = LLMModel.objects.get(name="judge-x")
    assert (model.enabled, model.can_judge) == (False, False)


def test_task_list_counts_samples_once_however_many_turns(admin_client) -> None:
    """Regression: the Samples column summed every chunk once per turn (a JOIN of both)."""
    from tests.support.site_tasks import site_task

    busy = site_task(name="busy", n_turns=3, chunk_sizes=(40, 25))
    quiet = site_task(name="quiet", n_turns=1, chunk_sizes=(30,))
    bare = site_task(name="bare", n_turns=2, chunk_sizes=())
    url = reverse("admin:collection_task_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    rows = {t.pk: (t.n_turns_total, t.n_samples_total) for t in response.context["cl"].result_list}
    assert rows == {busy.pk: (3, 65), quiet.pk: (1, 30), bare.pk: (2, 0)}
    html = response.content.decode()
    assert '<td class="field-n_samples">65</td>' in html and '<td class="field-n_turns">3</td>' in html
    # Both columns sort on the exact figures.
    from django.contrib import admin

    columns = list(admin.site._registry[Task].list_display)
    for column, expected in (("n_samples", [bare, quiet, busy]), ("n_turns", [quiet, bare, busy])):
        ordered = admin_client.get(url, {"o": str(columns.index(column) + 1)}).context["cl"].result_list
        assert [t.pk for t in ordered] == [t.pk for t in expected]
