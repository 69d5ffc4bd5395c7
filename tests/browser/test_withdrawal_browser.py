"""Withdrawal in Chromium against uvicorn and the test database (issue 24).

* A worker in the middle of the chat, whose page has been sending gaze and mouse samples, clicks
  "Withdraw from the study", reads what is deleted and kept, confirms, and sees that they have
  withdrawn; the database then holds none of their samples, tasks or answers.
* Staff withdraw a worker from the staff worker page and land on the withdrawal's page, where the
  reward run, leaderboard, dataset and selection built from the worker's data are marked, each
  with its rebuild control; the run's admin page shows the notice.

Screenshots at 1366x768 and 1920x1080 with IFLLM_SCREENSHOT_DIR set.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from alignment.models import PreferenceDataset, PreferencePair
from analysis.models import Leaderboard, RewardModelRun
from collection.models import DataSelection, Mode, Task, TrajectoryChunk, Turn, Withdrawal, Worker
from tests.site.conftest import choose, complete_profile, enter_lab, pass_calibration
from tests.support.admin_browser import admin_page
from tests.support.site_tasks import site_task

from .real_webgazer import shots, study_content

pytestmark = pytest.mark.django_db(transaction=True)

INJECTED_GAZE = """
window.__gaze = {x: 400, y: 300, headInBox: true};
window.IFLLM_TEST_GAZE = () => window.__gaze;
"""


def _chatting_page(browser, base_url: str):
    """A page on the chat step of a fresh pointwise task (entered through the study's services)."""
    from collection.services import study

    study_content()
    cfg = study.study_settings_get()
    cfg.min_turns, cfg.min_seconds, cfg.bullet_probability = 1, 5, 0.0
    cfg.pointwise_quota, cfg.pairwise_quota = 100, 0
    cfg.researcher_contact = "IFllm lab, lab@example.org"
    cfg.save()
    client = Client()
    enter_lab(client, "withdrawing-worker")
    complete_profile(client)
    (task,) = choose(client)
    pass_calibration(client, task)
    task.refresh_from_db()
    assert task.status == Task.Status.CHATTING and task.mode == Mode.POINTWISE
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base_url)
    host = base_url.split("//")[1].split(":")[0]
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "domain": host,
                          "path": "/"}])
    context.add_init_script(INJECTED_GAZE)
    page = context.new_page()
    page.goto(reverse("collection:chat", args=[task.pk]))
    page.wait_for_function("() => !!window.ifllmLogger", timeout=90_000)
    return context, page, task


def test_worker_withdraws_mid_task(browser, asgi_server) -> None:
    other = site_task(name="someone-else", chunk_sizes=(30,))
    context, page, task = _chatting_page(browser, asgi_server)
    page.get_by_label("Your question").fill("What is the topic about?")
    page.get_by_role("button", name="Ask").click()
    page.wait_for_selector("#rating:not([hidden])", timeout=60_000)
    page.mouse.move(300, 300)
    page.mouse.move(500, 400)
    page.evaluate("window.ifllmLogger.flush()")
    page.wait_for_function("() => window.ifllmLogger.stats.pending === 0", timeout=30_000)
    assert TrajectoryChunk.objects.filter(task=task).exists(), "the page stored samples before the withdrawal"
    assert Turn.objects.filter(task=task).exists()
    shots(page, "withdraw-01-chat-with-link")

    page.get_by_role("link", name="Withdraw from the study").click()
    page.wait_for_url(re.compile(r"/withdraw/$"))
    assert page.get_by_role("heading", name="Withdraw from the study").is_visible()
    facts = page.locator("#withdraw-deleted").inner_text()
    assert "gaze and mouse data" in facts and "samples recorded so far" in facts
    assert "payment record" in page.locator("main").inner_text()
    shots(page, "withdraw-02-confirmation", full_page=True)

    page.get_by_role("button", name="Withdraw and delete my data").click()
    page.wait_for_selector("#withdrawn-notice")
    assert page.get_by_role("heading", name="You have withdrawn from the study").is_visible()
    page.wait_for_function("() => document.body.dataset.webgazerData === 'cleared'", timeout=10_000)
    shots(page, "withdraw-03-done")

    assert not TrajectoryChunk.objects.filter(task_id=task.pk).exists()
    assert not Task.objects.filter(pk=task.pk).exists() and not Turn.objects.filter(task_id=task.pk).exists()
    assert not Worker.objects.filter(pk=task.worker_id).exists()
    assert not Worker.objects.filter(platform_worker_id="withdrawing-worker").exists()
    record = Withdrawal.objects.get()
    assert record.channel == "worker" and record.counts["samples"] > 0
    assert TrajectoryChunk.objects.filter(task=other).count() == 1  # someone else's data stays
    # the session is over: the task's page sends to the start
    page.goto(reverse("collection:chat", args=[task.pk]))
    assert urlsplit(page.url).path == reverse("collection:start")
    context.close()


def test_staff_withdraw_from_the_worker_page(browser, asgi_server) -> None:
    mine = site_task(name="to-withdraw", n_turns=2, mode="pairwise")
    other = site_task(name="stays", n_turns=2, mode="pairwise")
    selection = DataSelection.objects.create(name="clean pilot", task_ids=[mine.pk, other.pk], n_kept=2,
                                             n_candidates=2)
    run = RewardModelRun.objects.create(name="reward models on the pilot", selection=selection)
    Leaderboard.objects.create(name="pilot leaderboard", selection=selection)
    dataset = PreferenceDataset.objects.create(name="pilot preferences", source="explicit", selection=selection)
    for turn in Turn.objects.filter(task__in=[mine, other]):
        PreferencePair.objects.create(dataset=dataset, turn=turn, prompt=turn.query, chosen=turn.response_1,
                                      rejected=turn.response_2, chosen_side=1, split="train")
    page = admin_page(browser, asgi_server, User, width=1366, height=768)
    page.goto(reverse("crowd:worker_review", args=[mine.worker_id]))
    shots(page, "withdraw-10-worker-page")
    page.get_by_label(re.compile("Delete their samples")).check()
    page.get_by_role("button", name="Withdraw participant").click()
    page.wait_for_url(re.compile(r"/crowd/withdrawal/\d+/$"))
    rows = page.locator("tr.affected-row")
    text = page.locator("#affected").inner_text()
    for name in ("reward models on the pilot", "pilot leaderboard", "pilot preferences", "clean pilot"):
        assert name in text, name
    assert rows.count() == 4
    assert page.get_by_role("button", name="Rebuild with the same settings").count() == 4
    shots(page, "withdraw-11-affected", full_page=True)

    assert not Worker.objects.filter(pk=mine.worker_id).exists() and Worker.objects.filter(pk=other.worker_id).exists()
    assert not TrajectoryChunk.objects.filter(task_id=mine.pk).exists()
    assert TrajectoryChunk.objects.filter(task_id=other.pk).exists()

    # rebuild the selection: a new version without the withdrawn task
    page.locator("tr.affected-row", has_text="clean pilot").get_by_role(
        "button", name="Rebuild with the same settings").click()
    page.wait_for_selector("tr.affected-row:has-text('clean pilot') .good")
    assert DataSelection.objects.filter(name="clean pilot", version=2).exists()
    assert page.get_by_role("button", name="Rebuild with the same settings").count() == 3
    shots(page, "withdraw-12-after-rebuild", full_page=True)

    page.goto(reverse("admin:analysis_rewardmodelrun_change", args=[run.pk]))
    notice = page.locator("ul.messagelist")
    assert "Affected by a withdrawal on" in notice.inner_text()
    assert notice.get_by_role("link", name="withdrawal and rebuild").count() == 1
    shots(page, "withdraw-13-run-notice")


def test_consent_page_says_how_to_withdraw(browser, asgi_server) -> None:
    from collection.services import study

    cfg = study.study_settings_get()
    cfg.researcher_contact = "IFllm lab, lab@example.org"
    cfg.save()
    client = Client()
    enter_lab(client, "reading-consent")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=asgi_server)
    host = asgi_server.split("//")[1].split(":")[0]
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "domain": host,
                          "path": "/"}])
    page = context.new_page()
    page.goto(reverse("collection:consent"))
    how = page.locator("#how-to-withdraw").inner_text()
    assert "Withdraw from the study" in how and "worker ID" in how
    assert "payment record" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Withdraw from the study").is_visible()
    shots(page, "withdraw-00-consent", full_page=True)
    context.close()
