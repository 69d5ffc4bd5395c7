"""The leaderboard page in Chromium: a staff member logs in, starts a leaderboard, and sees the
tables and the forest plot (the job runs in-process: Celery is eager in tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from analysis.models import Leaderboard, RewardModelRun, RewardPrediction
from jobs.models import Job
from tests.support.leaderboard_sim import store_simulated_votes

SHOTS = os.environ.get("IFLLM_SCREENSHOT_DIR")


@pytest.mark.django_db(transaction=True)
def test_leaderboard_page_shows_tables_and_forest_plot(browser, asgi_server) -> None:
    turns = store_simulated_votes({"alpha-7b": 0.0, "beta-13b": 0.8, "gamma-70b": 1.6})
    run = RewardModelRun.objects.create(name="noisy oracle")
    RewardPrediction.objects.bulk_create([
        RewardPrediction(run=run, turn=t, model_name="RF + IF", protocol="grouped",
                         prob_1=0.7 if (t.preferred == 1) != (i % 4 == 0) else 0.3, predicted=1, p_winner=0.7)
        for i, t in enumerate(turns)
    ])
    User.objects.create_superuser("boss", "boss@example.org", "pw-123456")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{asgi_server}/admin/login/?next=/analysis/leaderboard/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-123456")
    page.click("input[type=submit]")
    page.wait_for_url("**/analysis/leaderboard/")
    assert "No leaderboard yet" in page.content()
    page.check("input[name=sources][value=implicit]")
    page.check("input[name=sources][value=mixed]")
    page.click("button[type=submit]")
    page.wait_for_url("**/analysis/leaderboard/?pk=*", timeout=60_000)
    board = Leaderboard.objects.get()
    assert board.job.status == Job.Status.SUCCEEDED, board.job.error
    tables = page.locator("table.lb-table")
    assert tables.count() == 6  # per source: ranking + style coefficients
    first_rows = page.locator("table.lb-table").first.locator("tbody tr td.model").all_inner_texts()
    assert first_rows == ["gamma-70b", "beta-13b", "alpha-7b"]
    # Every prediction is on a voted turn (as on the release): mixed adds no votes and says so
    # instead of showing τ = 1.00 [1.00, 1.00]; implicit votes are marked as predictions.
    assert page.get_by_text("Agreement with the explicit ranking").count() == 1
    assert page.locator(".lb-warning", has_text="Mixed adds no votes").count() == 1
    assert page.locator(".lb-warning", has_text="do not include the reward model's own error").count() == 1
    assert page.locator(".lb-warning", has_text="another scale").count() == 1
    plot = page.locator("img.lb-plot")
    plot.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('img.lb-plot').complete")
    assert plot.evaluate("img => img.naturalWidth") > 600
    csv = page.request.get(f"{asgi_server}/analysis/leaderboard/{board.pk}.csv")
    assert csv.ok and csv.text().startswith("source,control,rank,model")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        for name, size in (("leaderboard-1366", (1366, 768)), ("leaderboard-1400", (1400, 900)),
                           ("leaderboard-1920", (1920, 1080)),
                           ("leaderboard-390", (390, 844))):
            page.set_viewport_size({"width": size[0], "height": size[1]})
            page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)
            if size[0] >= 1366:
                assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
    context.close()
