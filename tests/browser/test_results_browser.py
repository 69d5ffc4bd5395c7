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
from analysis.reward.verdict import setting_verdicts, verdict
from collection.models import Worker
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
    # A transfer run: fitted on two copies of every mini worker, scored on the other two copies
    # (so both settings have rows on both sides).
    workers = sorted(Worker.objects.values_list("pseudonym", flat=True))
    train = [w for w in workers if w.endswith(("c0", "c1"))]
    transfer = RewardModelRun.objects.create(name="transfer half", params={
        **SMALL, "train_workers": train, "test_workers": [w for w in workers if w not in train]})
    transfer.job = job_start(kind="analysis.reward_models", params={"run_pk": transfer.pk})
    transfer.save(update_fields=["job"])
    job_start(kind="analysis.figures", params={})
    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 4, list(Job.objects.values("kind", "error"))
    for run in (*runs, transfer):
        run.refresh_from_db()
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
    assert page.locator("#result_list tbody tr").count() == 3
    assert "reward models: Pairwise" in page.locator("#result_list tbody").inner_text()
    _right_edge_inside(page, "#result_list th.column-job_link")
    _shots(page, "02-reward-runs")

    # A run page: Table 2 as HTML tables with the best marked, the accuracy plot with the length
    # baseline, the settings used and the stage timings as tables.
    page.goto(f"/admin/analysis/rewardmodelrun/{runs[0].pk}/change/")
    # First the verdict: one sentence per setting, read from the worker-grouped protocol.
    verdicts = page.locator(".field-verdict li.verdict")
    expected = setting_verdicts(runs[0].report["intervals"])
    assert verdicts.count() == len(expected) >= 1
    for v in expected:
        assert " over length on new workers: " in v["sentence"]
        assert page.locator(".field-verdict li", has_text=v["sentence"]).count() == 1
    # Then accuracy and the difference to length-only, each with its worker interval, grouped
    # protocol first and the paper's marked leaky.
    intervals = page.locator(".field-intervals_table table.ifllm-intervals")
    assert intervals.count() >= 3
    assert intervals.first.get_attribute("data-protocol") == "grouped"
    assert page.locator(".field-intervals_table table.leaky caption", has_text="LEAKY").count() >= 1
    rf = next(r for r in runs[0].report["intervals"]["Pairwise"]
              if r["model"] == "RF + IF" and r["protocol"] == "grouped")
    row = intervals.first.locator("tr", has_text="RF + IF").first.inner_text()
    assert f"{rf['accuracy']:.3f}" in row and f"[{rf['acc_lo']:.3f}, {rf['acc_hi']:.3f}]" in row
    diff = f"{rf['diff_lo']:+.3f}".replace("-", "\u2212")
    assert diff in row and verdict(rf["diff_lo"], rf["diff_hi"]) in row
    tables = page.locator(".field-table table.ifllm-results")
    assert tables.count() >= 3  # Table 2 (seed spread): at least Pairwise under each protocol
    assert page.locator(".field-table td.best").count() == 0  # no "best" without an interval
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

    # The transfer run: its intervals and verdict, a drawn plot, no empty Table 2 or JSON blob.
    page.goto(f"/admin/analysis/rewardmodelrun/{transfer.pk}/change/")
    expected = setting_verdicts(transfer.report["intervals"])
    assert expected and all(" over length on the test workers: " in v["sentence"] for v in expected)
    for v in expected:
        assert page.locator(".field-verdict li", has_text=v["sentence"]).count() == 1
    t_tables = page.locator(".field-intervals_table table.ifllm-intervals[data-protocol=transfer]")
    assert t_tables.count() == len(transfer.report["intervals"])
    first = next(iter(transfer.report["intervals"].values()))
    rf = next(r for r in first if r["model"] == "RF + IF")
    row = t_tables.first.locator("tr", has_text="RF + IF").first.inner_text()
    assert f"{rf['accuracy']:.3f}" in row and f"{rf['diff']:+.3f}".replace("-", "\u2212") in row
    assert page.locator(".field-accuracy_plot svg").count() == 1
    assert "transfer" not in page.locator(".field-report_summary").inner_text()  # no JSON blob
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    _shots(page, "03b-transfer-run")

    # Two runs compared: one full-width table with Δ between the runs (paired interval) and
    # the calibration figures, one plot of both.
    page.goto("/admin/analysis/rewardmodelrun/")
    for pk in (runs[0].pk, runs[1].pk):
        page.locator(f"#result_list tbody input.action-select[value='{pk}']").check()
    page.locator("select[name=action]").select_option("compare_runs")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()
    compare = page.locator("table.ifllm-compare-table")
    assert compare.count() >= 3
    assert compare.first.get_attribute("data-protocol") == "grouped"
    head = compare.first.locator("thead").text_content()  # as written (the admin shows heads in capitals)
    assert "Δ accuracy (B − A)" in head and "Δ ECE" in head and "Δ Brier" in head
    rf_row = compare.first.locator("tr", has_text="RF + IF").first
    delta = rf_row.locator("td").nth(2).inner_text()
    assert "paired" in delta and "[" in delta and "]" in delta  # paired interval of the runs' difference
    assert "[" in rf_row.locator("td").nth(3).inner_text()  # run A's difference to length, with interval
    assert page.locator(".ifllm-compare-runs li.verdict").count() >= 2
    assert page.locator(".ifllm-plot svg").count() == 1
    page.set_viewport_size({"width": 1400, "height": 900})
    assert compare.first.evaluate("e => e.closest('.ifllm-scroll').scrollWidth - e.closest('.ifllm-scroll').clientWidth") <= 1  # noqa: E501
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    _shots(page, "04-reward-compare")

    # Jobs: the list fits at 1400 px; a job page shows its progress, log and result.
    page.goto("/admin/jobs/job/")
    assert page.locator("#result_list tbody tr").count() == 4
    _right_edge_inside(page, "#result_list th.column-duration")
    _shots(page, "05-jobs")
    page.goto(f"/admin/jobs/job/{runs[0].job_id}/change/")
    assert page.locator(".field-status .readonly").inner_text() == "Succeeded"
    assert page.locator(".field-progress_bar progress").get_attribute("value") == "100"
    assert "reward models" in page.locator(".field-log_tail_pre").inner_text()
    _shots(page, "06-job")
