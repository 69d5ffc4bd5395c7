"""Helpers of the browser tests that run the REAL WebGazer (no injected gaze source): entering
the study, and a page-side record of every calibration/validation target and face-status state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.urls import reverse

from collection.models import LLMModel, Topic
from collection.services import identity

SHOTS = os.environ.get("IFLLM_SCREENSHOT_DIR")

#: Records, for every target the page adds, the element at the target's centre once it is laid
#: out (``elementFromPoint`` skips pointer-events:none, as a click does), and every state the
#: face-status badge shows.
WATCH_TARGETS = """
window.__targets = [];
window.__faceStates = [];
new MutationObserver((records) => {
  for (const r of records) {
    for (const n of r.addedNodes) {
      if (!(n instanceof HTMLElement) || !n.matches('.calib-point, .calib-target')) continue;
      requestAnimationFrame(() => requestAnimationFrame(() => {
        const b = n.getBoundingClientRect();
        const x = b.left + b.width / 2, y = b.top + b.height / 2;
        const hit = document.elementFromPoint(x, y);
        window.__targets.push({kind: n.className, x, y, ok: hit === n,
          hit: hit ? (hit.id || hit.className || hit.tagName) : null});
      }));
    }
    if (r.type === 'attributes' && r.target.id === 'head-status' && r.attributeName === 'data-state') {
      const s = r.target.dataset.state;
      if (window.__faceStates[window.__faceStates.length - 1] !== s) window.__faceStates.push(s);
    }
  }
}).observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-state']});
"""


def shot(page, name: str) -> None:
    """Screenshots for people to look at (set IFLLM_SCREENSHOT_DIR); no effect otherwise."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png")


def study_content() -> None:
    for i in range(3):
        Topic.objects.get_or_create(title=f"Webcam topic {i}")
    LLMModel.objects.get_or_create(name="demo-a", defaults={"provider": "demo", "model_id": "demo-a", "enabled": True})
    LLMModel.objects.get_or_create(name="demo-b", defaults={"provider": "demo", "model_id": "demo-b", "enabled": True})


def enter_to_calibration(page, worker_id: str, *, consent_shot: str | None = None) -> None:
    """Lab entry, consent, demographics, one topic, instructions: the calibration intro."""
    # Lab entry as staff hand it out: a participant and a one-time invitation link.
    worker = identity.lab_participant_create(participant_id=worker_id)
    page.goto(reverse("collection:join", kwargs={"token": identity.invitation_create(worker=worker).token}))
    page.get_by_role("button", name="Start").click()
    if consent_shot:
        shot(page, consent_shot)
    page.get_by_label(re.compile("I have read the information")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Age").fill("41")
    page.get_by_label("Country you live in").fill("Testland")
    page.get_by_label("Highest level of education").select_option("master")
    page.get_by_label("Race or ethnicity", exact=True).select_option("prefer_not")
    page.get_by_label("Gender", exact=True).select_option("female")
    page.get_by_role("button", name="Continue").click()
    page.locator('input[name="topics"]').nth(0).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="I have read the instructions").click()
    page.wait_for_url(re.compile(r"/calibrate/$"))


def click_all_points(page) -> None:
    """Click every calibration dot 5 times at its centre (the centre dot appears last)."""
    page.wait_for_selector(".calib-point", timeout=60_000)
    for i in range(9):
        point = page.locator(f'.calib-point[data-index="{i}"]')
        point.wait_for(timeout=10_000)
        box = point.bounding_box()
        for _ in range(5):
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(60)


def heading_clear(page, selector: str) -> bool:
    """The element at a heading's first characters is the heading (no preview over it)."""
    return page.evaluate(
        """(sel) => { const h = document.querySelector(sel); const b = h.getBoundingClientRect();
        const e = document.elementFromPoint(b.left + 4, b.top + b.height / 2); return e === h || h.contains(e); }""",
        selector,
    )
