"""Helpers of the browser tests that run the REAL WebGazer (no injected gaze source): entering
the study, and a page-side record of every calibration/validation target and face-status state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.urls import reverse

from collection.models import LLMModel, Topic, Worker
from collection.services import identity

SHOTS = os.environ.get("IFLLM_SCREENSHOT_DIR")

#: Records, for every target the page adds, the element at the target's centre (checked at once:
#: ``getBoundingClientRect``/``elementFromPoint`` lay the page out; ``elementFromPoint`` skips
#: pointer-events:none, as a click does), and every state the face-status badge shows.
WATCH_TARGETS = """
window.__targets = [];
window.__faceStates = [];
new MutationObserver((records) => {
  for (const r of records) {
    for (const n of r.addedNodes) {
      if (!(n instanceof HTMLElement) || !n.matches('.calib-point, .calib-target') || !n.isConnected) continue;
      const b = n.getBoundingClientRect();
      const x = b.left + b.width / 2, y = b.top + b.height / 2;
      const hit = document.elementFromPoint(x, y);
      window.__targets.push({kind: n.className, x, y, w: innerWidth, h: innerHeight, ok: hit === n,
        hit: hit ? (hit.id || hit.className || hit.tagName) : null});
    }
    if (r.type === 'attributes' && r.target.id === 'head-status' && r.attributeName === 'data-state') {
      const s = r.target.dataset.state;
      if (window.__faceStates[window.__faceStates.length - 1] !== s) window.__faceStates.push(s);
    }
  }
}).observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-state']});
"""

#: Shorter validation targets (a test hook of calibrate.mjs; an object, not a gaze function, so
#: the real WebGazer still runs): a 2 s centre stare and 1 s per corner instead of 5 s and 1.5 s.
SHORT_VALIDATION = "window.IFLLM_TEST_GAZE = {centreMs: 2000, pointMs: 1000};"

#: How many calibration examples WebGazer keeps in this browser (its localforage IndexedDB
#: database, key ``webgazerGlobalData``): null when nothing is stored. The page's own reader
#: (gaze.mjs, which the calibration page uses to fall back to a full calibration).
STORED_CALIBRATION = "async () => (await import('/static/collection/js/gaze.mjs')).storedCalibrationCount()"

#: The two screen sizes of the screenshots people look at.
SHOT_SIZES = [(1366, 768), (1920, 1080)]


def shot(page, name: str, *, full_page: bool = False) -> None:
    """Screenshots for people to look at (set IFLLM_SCREENSHOT_DIR); no effect otherwise."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=full_page)


def shots(page, name: str, *, full_page: bool = False) -> None:
    """``shot`` at each of SHOT_SIZES, then back to the page's own size."""
    if not SHOTS:
        return
    size = page.viewport_size
    for w, h in SHOT_SIZES:
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(300)
        shot(page, f"{name}-{w}x{h}", full_page=full_page)
    page.set_viewport_size(size)


def study_content() -> None:
    for i in range(3):
        Topic.objects.get_or_create(title=f"Webcam topic {i}")
    LLMModel.objects.get_or_create(name="demo-a", defaults={"provider": "demo", "model_id": "demo-a", "enabled": True})
    LLMModel.objects.get_or_create(name="demo-b", defaults={"provider": "demo", "model_id": "demo-b", "enabled": True})


def enter_to_calibration(page, worker_id: str, *, topics: int = 1) -> Worker:
    """Lab entry, consent, demographics, ``topics`` topics, instructions: the calibration intro."""
    worker = enter_to_instructions(page, worker_id, topics=topics)
    page.get_by_role("button", name="I have read the instructions").click()
    page.wait_for_url(re.compile(r"/calibrate/$"))
    return worker


def enter_to_instructions(page, worker_id: str, *, topics: int = 1, topics_shot: str | None = None) -> Worker:
    """Lab entry, consent, demographics, ``topics`` topics: the instructions page (``topics_shot``:
    the name of screenshots of the topic page)."""
    # Lab entry: staff created the participant and sent a one-time invitation link.
    worker = identity.lab_participant_create(participant_id=worker_id)
    page.goto(reverse("collection:join", kwargs={"token": identity.invitation_create(worker=worker).token}))
    page.get_by_role("button", name="Start").click()
    shots(page, "consent")
    page.get_by_label(re.compile("I have read the information")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Age").fill("41")
    page.get_by_label("Country you live in").fill("Testland")
    page.get_by_label("Highest level of education").select_option("master")
    page.get_by_label("Race or ethnicity", exact=True).select_option("prefer_not")
    page.get_by_label("Gender", exact=True).select_option("female")
    page.get_by_role("button", name="Continue").click()
    if topics_shot:
        page.wait_for_url(re.compile(r"/topics/$"))
        shots(page, topics_shot)
    for i in range(topics):
        page.locator('input[name="topics"]').nth(i).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/instructions/$"))
    return worker


def click_all_points(page, *, clicks: int = 1, shot_name: str | None = None, look_ms: int = 0,
                     look_frames: int = 0) -> None:
    """Click every calibration dot ``clicks`` times at its centre (the centre dot appears last).

    The outer dots' centres are read in one call: while WebGazer tracks, each round trip to the
    page waits for a face-mesh frame (about 0.2 s on a loaded 2-core machine). ``look_ms``: move
    the mouse onto each dot and wait that long before clicking, as a worker looks at a dot before
    clicking it (the following-eyes camera looks where the mouse is; WebGazer learns from the eye
    image at the moment of the click), and at least ``look_frames`` of the tracker's frames (on a
    loaded machine WebGazer processes 2-5 frames/s, so a fixed wait may end on a stale frame).
    """
    page.wait_for_selector(".calib-point", timeout=60_000)
    if shot_name:
        shot(page, shot_name)
    centres = page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].map((b) => {
          const r = b.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })""",
        ".calib-point:not(:disabled)",
    )
    assert len(centres) == 8, centres
    for point in [*centres, None]:
        if point is None:  # the centre dot, shown once the outer ones are done
            box = page.locator('.calib-point[data-index="8"]').bounding_box(timeout=30_000)
            point = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        x, y = point
        if look_ms or look_frames:
            start = page.evaluate("window.ifllmCalibration.frames")
            page.mouse.move(x, y)
            page.wait_for_timeout(look_ms)
            if look_frames:
                page.wait_for_function(f"() => window.ifllmCalibration.frames >= {start + look_frames}",
                                       timeout=60_000)
        for _ in range(clicks):
            page.mouse.click(x, y)


def heading_clear(page, selector: str) -> bool:
    """The element at a heading's first characters is the heading (no preview over it)."""
    return page.evaluate(
        """(sel) => { const h = document.querySelector(sel); const b = h.getBoundingClientRect();
        const e = document.elementFromPoint(b.left + 4, b.top + b.height / 2); return e === h || h.contains(e); }""",
        selector,
    )
