"""Every staff page renders with no task, one task and many tasks.

Staff pages are found, not listed: every URL under ``/crowd/``, ``/analysis/`` and
``/alignment/``, every admin page without URL arguments (changelists, add forms, custom admin
views), and the change page of rows of every registered model. A page that takes an object id
gets every task and worker (and the first turn of each task) of the state, so tasks without QC,
with NaN or constant QC figures, imported and site-collected ones are all opened.

The states:

* ``no_tasks``: a fresh install (only the staff user);
* ``one_task``: one site task with samples and computed QC, and one row of every other model;
* ``many_tasks``: the mini release (three workers) with QC, plus site tasks whose QC figures are
  the same in every task up to float rounding (what broke the QC histograms), NaN, missing, or
  absent (no QC row at all).
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from analysis.models import AnalysisFigure, Leaderboard, StudyPlan
from collection.models import DataSelection, Task, Turn, Withdrawal, Worker
from crowd.models import Study, TaskQC
from tests.support.paths import MINI
from tests.support.site_tasks import site_task
from tests.support.staff_rows import one_of_each

pytestmark = pytest.mark.django_db

STAFF_PREFIXES = ("crowd/", "analysis/", "alignment/")
#: Which rows fill a URL argument: by argument name, or by URL name for a generic ``pk``.
ARG_ROWS: dict[str, type[Model]] = {
    "task_id": Task, "worker_id": Worker, "turn_id": Turn, "selection_id": DataSelection, "study_id": Study,
    "withdrawal_id": Withdrawal,
}
PK_ROWS: dict[str, type[Model]] = {
    "analysis:figure_png": AnalysisFigure,
    "analysis:figure_svg": AnalysisFigure,
    **{f"analysis:leaderboard_{ext}": Leaderboard for ext in ("csv", "json", "png", "svg")},
    **{f"analysis:plan_{ext}": StudyPlan for ext in ("json", "svg")},
}
#: Extra query strings opened on top of the bare URL.
VARIANTS: dict[str, list[dict[str, str]]] = {
    "crowd:qc_plots": [
        {"level": "worker"}, {"source": "site"}, {"source": "release", "level": "worker"},
        {"min_response_score": "inf", "max_log_gap_s": "nan", "min_calibration_score": "abc"},
    ],
    "crowd:release_exclusions": [{"min_response_score": "0.9"}, {"min_response_score": ""}],
    "crowd:review_queue_qc": [{"flag": "max_index_score"}, {"flag": "nonsense", "only": "disputed", "i": "x"}],
}
#: Admin pages without arguments that are not pages to look at.
#: login: staff are sent on; the smoke-test model is made by the button's POST (a GET goes back
#: to the Training runs page).
ADMIN_SKIP = {"admin:login", "admin:logout", "admin:autocomplete", "admin:alignment_smoke_model"}


def _walk(patterns: list, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(filter(None, [namespace, p.namespace]))
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif p.name:
            yield prefix + str(p.pattern), f"{namespace}:{p.name}" if namespace else p.name, p


def _rows(model: type[Model], name: str) -> list[Model]:
    qs = model.objects.order_by("pk")
    if model is Turn:  # the first turn of every task: replays decode samples, keep it quick
        return [t for t in qs.filter(index=0)]
    return list(qs)


def staff_urls() -> list[str]:
    urls = []
    for route, name, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(STAFF_PREFIXES):
            args = list(pattern.pattern.converters)
            if not args:
                urls.append(reverse(name))
                urls += [f"{reverse(name)}?{urlencode(q)}" for q in VARIANTS.get(name, [])]
                continue
            assert len(args) == 1, f"{name}: teach this test how to fill {args}"
            model = PK_ROWS.get(name) if args[0] == "pk" else ARG_ROWS.get(args[0])
            assert model is not None, f"{name}: add the model behind <{args[0]}> to ARG_ROWS or PK_ROWS"
            urls += [reverse(name, kwargs={args[0]: row.pk}) for row in _rows(model, name)]
        elif name == "admin:app_list":
            labels = sorted({m._meta.app_label for m in admin.site._registry})
            urls += [reverse(name, kwargs={"app_label": label}) for label in labels]
        elif (
            route.startswith("admin/")
            and not pattern.pattern.regex.groups
            and name not in ADMIN_SKIP
            and not name.endswith("_add")  # opened below where the admin offers it
        ):
            urls.append(reverse(name))
    return urls


def admin_change_urls(user: User, *, require_rows: bool) -> list[str]:
    """Change pages of rows of every registered model, add forms the admin offers, searches."""
    request = RequestFactory().get("/admin/")
    request.user = user
    urls = []
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        rows = list(model.objects.order_by("pk")[:2]) + list(model.objects.order_by("-pk")[:1])
        if require_rows:
            assert rows, f"no {meta.label} row: add one to tests/support/staff_rows.py so its change page is opened"
        urls += [reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[r.pk]) for r in rows]
        if admin.site._registry[model].search_fields:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist") + "?q=a")
    return urls


def _open_all(client: Client, urls: list[str]) -> dict[str, int]:
    failures = {}
    for url in dict.fromkeys(urls):
        response = client.get(url)
        if response.status_code != 200:
            failures[url] = response.status_code
            print(url, response.status_code, response.content[:3000].decode(errors="replace"))
    return failures


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_superuser("boss", password="pw-boss-123")


def _client(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _qc_all() -> None:
    from crowd.services import task_qc_compute

    for task in Task.objects.filter(chunks__isnull=False).distinct():
        task_qc_compute(task=task)


def test_every_staff_page_with_no_tasks(staff: User) -> None:
    urls = staff_urls() + admin_change_urls(staff, require_rows=False)
    assert any("/crowd/qc/" in u for u in urls) and any(u.startswith("/analysis/") for u in urls)
    assert _open_all(_client(staff), urls) == {}


def test_every_staff_page_with_one_task(staff: User) -> None:
    task = site_task(name="solo", n_turns=2, chunk_sizes=(60, 20))
    _qc_all()
    one_of_each(task=task, user=staff)
    assert TaskQC.objects.count() == 1
    urls = staff_urls() + admin_change_urls(staff, require_rows=True)
    assert f"/crowd/task/{task.pk}/" in urls
    assert _open_all(_client(staff), urls) == {}


def test_every_staff_page_with_many_tasks(staff: User) -> None:
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    same = [site_task(name=f"same-{i}", chunk_sizes=(30,)) for i in range(4)]
    nan_task = site_task(name="nan", mode="pairwise", chunk_sizes=(30,))
    no_qc = site_task(name="no-qc", chunk_sizes=(30,))
    site_task(name="no-samples", chunk_sizes=())
    _qc_all()
    TaskQC.objects.filter(task=no_qc).delete()
    # Equal up to rounding in every task: numpy cannot make 5 bins of that range.
    for i, task in enumerate(same):
        TaskQC.objects.filter(task=task).update(
            response_score=0.3 if i % 2 else 0.1 + 0.2, max_index_score=0.0, sampling_rate_hz=20.0,
            head_in_box_share=0.3 if i % 2 else 0.1 + 0.2, calibration_score=None,
        )
    TaskQC.objects.filter(task=nan_task).update(
        sampling_rate_hz=float("nan"), head_in_box_share=float("nan"), max_index_score=None, response_score=None
    )
    one_of_each(task=same[0], user=staff, tag="a")
    one_of_each(task=nan_task, user=staff, tag="b")
    assert Task.objects.count() > 10 and Task.objects.filter(qc__isnull=True).count() >= 2
    urls = staff_urls() + admin_change_urls(staff, require_rows=True)
    assert _open_all(_client(staff), urls) == {}
    # The histograms are drawn, not replaced by an error or "no data".
    html = _client(staff).get(reverse("crowd:qc_plots"), {"source": "site"}).content.decode()
    assert "<svg" in html


def test_qc_plots_page_was_a_500_on_constant_figures(staff: User) -> None:
    """The case of the report, on its own: the same figure in every task."""
    tasks = [site_task(name=f"c{i}", chunk_sizes=(30,)) for i in range(3)]
    _qc_all()
    TaskQC.objects.filter(task__in=tasks[:2]).update(response_score=0.1 + 0.2)
    TaskQC.objects.filter(task=tasks[2]).update(response_score=0.3)
    response = _client(staff).get(reverse("crowd:qc_plots"))
    assert response.status_code == 200
    assert "<svg" in response.content.decode()
