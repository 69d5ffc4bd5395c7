"""Issue 20, items 7 and 9, in real Chromium against uvicorn, with the REAL WebGazer.

* A second tab of the same task (two pages of one context: one session) says the task is open in
  another tab and never calls ``getUserMedia``, on the calibration page and on the chat page,
  while the first tab keeps working; once the first tab is closed, the second one continues and
  does start the camera (the case that must fail the "no camera" check).
* The tracker files (WebGazer and MediaPipe's face mesh, about 12.4 MB) are fetched while the
  instructions are read, and WebGazer's own loads on the calibration page then come from the HTTP
  cache; without that visit they come over the network (the twin that must fail). On a throttled
  line the calibration page shows the download's progress, and Start waits for it.

Screenshots (IFLLM_SCREENSHOT_DIR) of the topic, instructions, loading and other-tab states at
1366x768 and 1920x1080.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from collection.models import Task
from collection.views import TRACKER_FILES

from .real_webgazer import enter_to_calibration, enter_to_instructions, shots, study_content

#: Counts the page's getUserMedia calls (the camera), before any page script runs.
COUNT_CAMERA = """
window.__gum = 0;
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { window.__gum += 1; return original(c); };
}
"""

#: The tracker files' resource-timing entries of this page: [url, bytes over the network, body bytes,
#: initiator]. Over the network the bytes sent exceed the body (headers + body); from the HTTP cache
#: they are 0, or a 304's headers only when the cache revalidates.
TRACKER_ENTRIES = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/static/vendor/webgazer/'))
  .map((e) => [new URL(e.name).pathname, e.transferSize, e.decodedBodySize, e.initiatorType])"""


def _context(browser, base_url: str, size=(1366, 768)):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, base_url=base_url)
    context.add_init_script(COUNT_CAMERA)
    return context


def _throttle(page, bytes_per_s: float):
    """Chromium's own network throttling (DevTools protocol) for this page; -1 lifts it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": bytes_per_s, "uploadThroughput": -1,
    })
    return cdp


@pytest.mark.django_db(transaction=True)
def test_second_tab_of_a_task_never_starts_the_camera(browser, asgi_server):
    study_content()
    context = _context(browser, asgi_server)
    first = context.new_page()
    enter_to_calibration(first, "two-tabs")
    first.wait_for_selector('body[data-tab="held"]')
    task = Task.objects.get(worker__platform_worker_id="two-tabs")

    # Calibration page: the second tab says where the task is and shows nothing else.
    second = context.new_page()
    second.goto("/continue/")
    second.wait_for_url(re.compile(r"/calibrate/$"))
    second.wait_for_selector("#other-tab", timeout=10_000)
    assert second.locator("#other-tab h1").inner_text() == "This task is open in another tab"
    assert not second.locator("#start").is_visible()
    shots(second, "20-other-tab-calibrate")
    first.get_by_role("button", name="Start").click()  # the first tab starts the real WebGazer
    # WebGazer runs (no dot before a face is seen: this fake camera may show none)
    first.wait_for_function("() => window.__gum === 1 && !!window.webgazer", timeout=90_000)
    first.wait_for_function("() => window.__gum === 1")
    second.wait_for_timeout(1000)
    assert second.evaluate("window.__gum") == 0 and second.evaluate("typeof window.webgazer") == "undefined"

    # Chat page: the same, and the first tab chats and logs while the second waits.
    Task.objects.filter(pk=task.pk).update(status=Task.Status.CHATTING, chat_started_at=timezone.now())
    chat = reverse("collection:chat", args=[task.pk])
    first.goto(chat)
    first.wait_for_function("() => window.__gum === 1 && window.ifllmLogger", timeout=90_000)
    second.goto(chat)
    second.wait_for_selector("#other-tab", timeout=10_000)
    shots(second, "21-other-tab-chat")
    generated = first.evaluate("window.ifllmLogger.stats.generated")
    first.get_by_label("Your question").fill("What is this about?")
    first.get_by_role("button", name="Ask").click()
    first.wait_for_selector("#rating:not([hidden])", timeout=60_000)
    first.locator('input[name="likert_1"][value="4"]').check()
    first.wait_for_function(f"() => window.ifllmLogger.stats.generated > {generated}", timeout=30_000)
    assert task.turns.count() == 1
    assert second.evaluate("window.__gum") == 0
    assert second.evaluate("typeof window.ifllmLogger") == "undefined"  # no second logger
    assert second.evaluate("typeof window.ifllmChat") == "undefined"

    # The first tab closes: now the second one may work, and starts the camera.
    first.close(run_before_unload=True)
    second.get_by_role("button", name="Continue in this tab").click()
    second.wait_for_selector('body[data-tab="held"]', timeout=10_000)
    second.wait_for_function("() => window.__gum === 1 && window.ifllmLogger", timeout=90_000)
    assert not second.locator("#other-tab").count()
    context.close()


@pytest.mark.django_db(transaction=True)
def test_tracker_files_prefetched_on_the_instructions_and_progress_while_loading(browser, asgi_server):
    study_content()
    wanted = {f"/static/{p}" for p in TRACKER_FILES}

    # 1. Read the instructions: the files are fetched meanwhile; WebGazer then loads from cache.
    warm = _context(browser, asgi_server)
    page = warm.new_page()
    cdp = _throttle(page, 1_000_000)  # 8 Mbit/s: a few seconds in which to see the progress
    enter_to_instructions(page, "prefetch", topics_shot="24-topics")
    page.wait_for_function(
        "() => Number(document.querySelector('#tracker-loading').dataset.percent) >= 5", timeout=30_000)
    assert page.locator("#tracker-loading").get_attribute("data-state") == "loading"
    shots(page, "22-instructions-loading", full_page=True)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    page.wait_for_selector('#tracker-loading[data-state="done"]', timeout=60_000)
    assert page.locator("#tracker-loading").inner_text() == "The eye tracker is loaded."
    fetched = {url for url, *_ in page.evaluate(TRACKER_ENTRIES)}
    assert fetched == wanted
    shots(page, "22-instructions-prefetched", full_page=True)
    page.get_by_role("button", name="I have read the instructions").click()
    page.wait_for_url(re.compile(r"/calibrate/$"))
    page.wait_for_selector('#tracker-loading[data-state="done"]', timeout=10_000)
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => window.__gum === 1 && !!window.webgazer", timeout=90_000)
    _wait_for_webgazer_loads(page, wanted)
    entries = page.evaluate(TRACKER_ENTRIES)
    network = [(url, sent, body) for url, sent, body, _ in entries if sent > body]
    assert not network, f"came over the network although prefetched: {network}"
    assert {url for url, *_ in entries} == wanted  # WebGazer loads exactly the files prefetched
    warm.close()

    # 2. The twin that must fail: no instructions visit, a slow line. The calibration page shows
    # the download's progress, Start waits for it, and the files come over the network.
    cold = _context(browser, asgi_server)
    page = cold.new_page()
    page.route(re.compile(r"/static/vendor/webgazer/"), lambda route: route.abort())
    enter_to_calibration(page, "cold")  # the instructions' prefetch fails: nothing cached
    calibrate_url = page.url
    page.goto("about:blank")  # no fetch of the pages above is left in flight to slip past the route
    page.unroute(re.compile(r"/static/vendor/webgazer/"))
    cdp = _throttle(page, 500_000)  # 4 Mbit/s: 12.4 MB take about 25 s
    page.goto(calibrate_url)
    page.wait_for_selector('#tracker-loading[data-state="loading"]', timeout=10_000)
    page.get_by_role("button", name="Start").click()
    page.wait_for_function(
        "() => Number(document.querySelector('#tracker-loading').dataset.percent) >= 5", timeout=30_000)
    percent = int(page.locator("#tracker-loading").get_attribute("data-percent"))
    assert 0 < percent < 100, percent
    assert re.fullmatch(r"Loading the eye tracker: \d+ % \(\d+\.\d of 12\.\d MB\)",
                        page.locator("#tracker-loading span").inner_text())
    assert page.locator("#start").is_disabled() and page.evaluate("window.__gum") == 0  # Start waits
    shots(page, "23-calibrate-loading")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    # Then Start goes on by itself, saying that the tracker starts, and shows the dots.
    page.wait_for_selector('#tracker-loading[data-state="starting"]', state="attached", timeout=60_000)
    page.wait_for_function("() => window.__gum === 1 && !!window.webgazer", timeout=90_000)
    _wait_for_webgazer_loads(page, wanted)
    network = {url for url, sent, body, _ in page.evaluate(TRACKER_ENTRIES) if sent > body}
    assert network == wanted  # nothing was cached for this browser: all came over the network
    cold.close()


def _wait_for_webgazer_loads(page, wanted: set[str]) -> None:
    """Until WebGazer itself has requested every tracker file (besides the page's own prefetch)."""
    page.wait_for_function(
        """(wanted) => { const seen = {};
          for (const e of performance.getEntriesByType('resource')) {
            const p = new URL(e.name).pathname; seen[p] = (seen[p] || 0) + 1; }
          return wanted.every((p) => seen[p] >= 2); }""",
        arg=sorted(wanted), timeout=90_000,
    )
