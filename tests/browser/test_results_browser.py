"""The result pages of the analysis half, in Chromium at 1400x900 and 1920x1080: admin index,
analysis dashboard, reward-model runs (list, run page, comparison) and jobs (list, job page).

Real content, not stand-ins: two reward-model jobs and a figures job run on a scaled copy of the
mini release (jobs run in-process here; the worker is covered by the alignment browser test).
Each page is checked for the content it exists for, and wide lists for their last columns being
inside the 1400 px viewport. Screenshots: set IFLLM_SCREENSHOT_DIR (kept out of git).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from analysis.models import AnalysisFigure, RewardModelRun
from jobs.models import Job
from jobs.services import job_start
from tests.support.paths import MINI
from tests.support.scaled_release import scaled_release

from .test_study_browser import shot

SIZES = {"1400": (1400, 900), "1920": (1920, 1080)}
SMALL = {"seeds": [0, 1], "trees": 20, "selector_trees": 20, "k": 10, "n_splits": 3, "quality_filter": False,
         "worker_normalise": False}


def _shots(page, name: str) -> None:
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        shot(page, f"r-{name}-{label}")
    page.set_viewport_size({"width": 1400, "height": 900})


def _right_edge_inside(page, selector: str) -> None:
    """At 1400 px the element is in view: inside the viewport, and a change list's table needs no
    sideways scrolling in its box (Django lets ``.results`` scroll, which hides the last columns)."""
    page.set_viewport_size({"width": 1400, "height": 900})
    element = page.locator(selector).first
    box = element.bounding_box()
    assert box is not None, selector
    assert box["x"] + box["width"] <= 1400, f"{selector} ends at {box['x'] + box['width']:.0f} px"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    overflow = element.evaluate(
        "e => { const r = e.closest('.results'); return r ? r.scrollWidth - r.clientWidth : 0; }"
    )
    assert overflow <= 1, f"{selector}: the list scrolls sideways by {overflow} px at 1400 px"


@pytest.mark.django_db(transaction=True)
def test_result_pages_show_their_content_at_both_sizes(browser, asgi_server, tmp_path, django_user_model) -> None:
    call_command("import_ifllm", str(scaled_release(MINI, tmp_path / "scaled", copies=4)), "--jobs", "1",
                 stdout=StringIO())
    runs = []
    for name, trees in (("twenty trees", 20), ("thirty trees", 30)):
        run = RewardModelRun.objects.create(name=name, params={**SMALL, "trees": trees})
        run.job = job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
        run.save(update_fields=["job"])
        runs.append(run)
    job_start(kind="analysis.figures", params={})
    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 3, list(Job.objects.values("kind", "error"))
    assert AnalysisFigure.objects.exists()
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-the-browser")

    page = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=asgi_server).new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("lab")
    page.get_by_label("Password").fill("pw-for-the-browser")
    page.get_by_role("button", name="Log in").click()

    # The admin index links the staff pages outside the admin, the analysis dashboard first.
    page.goto("/admin/")
    page.get_by_role("link", name="Analysis dashboard").click()
    page.wait_for_url("**/analysis/")
    assert page.locator("h1").inner_text() == "Analysis dashboard"
    assert page.locator("figure img").count() == AnalysisFigure.objects.values("name").distinct().count()
    assert all(page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)") for _ in [0])
    assert page.get_by_role("link", name=runs[1].name).count() == 1
    _shots(page, "01-analysis-dashboard")

    # Reward-model runs: the list fits at 1400 px with its job column.
    page.goto("/admin/analysis/rewardmodelrun/")
    assert page.locator("#result_list tbody tr").count() == 2
    assert "reward models: Pairwise" in page.locator("#result_list tbody").inner_text()
    _right_edge_inside(page, "#result_list th.column-job_link")
    _shots(page, "02-reward-runs")

    # A run page: Table 2 as HTML tables with the best marked, the accuracy plot with the length
    # baseline, the settings used and the stage timings as tables.
    page.goto(f"/admin/analysis/rewardmodelrun/{runs[0].pk}/change/")
    tables = page.locator(".field-table table.ifllm-results")
    assert tables.count() >= 3  # at least Pairwise under each protocol
    assert page.locator(".field-table td.best").count() >= 4
    assert "length-only baseline" in page.locator(".field-table").inner_text()
    assert page.locator(".field-accuracy_plot svg").count() == 1
    assert page.locator(".field-settings_used th", has_text="calibration_fit").count() == 1
    assert "crossfit" in page.locator(".field-settings_used").inner_text()
    timings = page.locator(".field-stage_timings").inner_text()
    assert "reward models" in timings and "load + match + features" in timings
    assert "{" not in page.locator(".field-report_summary").inner_text()[:1]  # a table, not a JSON blob
    _right_edge_inside(page, ".field-table table.ifllm-results")
    assert page.get_by_role("button", name="Save", exact=True).count() == 0  # read-only: Delete only
    _shots(page, "03-reward-run")

    # Two runs side by side.
    page.goto("/admin/analysis/rewardmodelrun/")
    page.locator("#result_list tbody input.action-select").first.check()
    page.locator("#result_list tbody input.action-select").nth(1).check()
    page.locator("select[name=action]").select_option("compare_runs")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()
    assert page.locator("table.ifllm-results").count() >= 6
    assert page.locator("svg").count() >= 2
    page.set_viewport_size({"width": 1400, "height": 900})
    sections = page.locator(".ifllm-compare > section")
    assert sections.count() == 2
    for i in range(2):  # both tables whole in their half at 1400 px, the AUC column included
        assert sections.nth(i).evaluate("e => e.scrollWidth - e.clientWidth") <= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    _shots(page, "04-reward-compare")

    # Jobs: the list fits at 1400 px; a job page shows its progress, log and result.
    page.goto("/admin/jobs/job/")
    assert page.locator("#result_list tbody tr").count() == 3
    _right_edge_inside(page, "#result_list th.column-duration")
    _shots(page, "05-jobs")
    page.goto(f"/admin/jobs/job/{runs[0].job_id}/change/")
    assert page.locator(".field-status .readonly").inner_text() == "Succeeded"
    assert page.locator(".field-progress_bar progress").get_attribute("value") == "100"
    assert "reward models" in page.locator(".field-log_tail_pre").inner_text()
    _shots(page, "06-job")
