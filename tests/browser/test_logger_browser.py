"""The chat page's logger in Chromium (issue 20, items 2 and 3).

* Character hits: a gaze point in the blank part of an answer box below the text is "in the box,
  off the text" (no char_index), not the answer's last character (the caret API's answer there);
  a point on a character gives that character's index. Injected gaze, real page, real server.
* Head in box: computed from the REAL WebGazer's eye patches while its preview is hidden (the chat
  page hides it): true on samples with the face video in the fake camera, false with Chromium's
  default (faceless) camera (test_logger_face_browser.py and test_logger_noface_browser.py: one
  Chromium per module).

The worker reaches the chat through the study's own services (tests.site.conftest helpers, with a
Django test client), and the browser continues that session: the tests are about the chat page.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import Mode, Task
from collection.selectors import task_samples
from tests.site.conftest import choose, complete_profile, enter_lab, pass_calibration

from .real_webgazer import shots, study_content

pytestmark = pytest.mark.django_db(transaction=True)

INJECTED_GAZE = """
window.__gaze = null;
window.IFLLM_TEST_GAZE = () => window.__gaze;
"""


def _chat_page(browser, base_url: str, worker_id: str, *, mode: str, init_script: str | None = None,
               viewport=(1366, 768)):
    """A page on the chat step of a fresh task (pointwise or pairwise), and the task."""
    from collection.services import study

    study_content()
    cfg = study.study_settings_get()
    cfg.min_turns, cfg.min_seconds, cfg.bullet_probability = 1, 5, 0.0
    cfg.pointwise_quota, cfg.pairwise_quota = (100, 0) if mode == Mode.POINTWISE else (0, 100)
    cfg.save()
    client = Client()
    enter_lab(client, worker_id)
    complete_profile(client)
    (task,) = choose(client)
    pass_calibration(client, task)
    task.refresh_from_db()
    assert task.status == Task.Status.CHATTING and task.mode == mode, (task.status, task.mode)
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, base_url=base_url)
    host = base_url.split("//")[1].split(":")[0]
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "domain": host,
                          "path": "/"}])
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.goto(reverse("collection:chat", args=[task.pk]))
    page.wait_for_function("() => !!window.ifllmLogger", timeout=90_000)
    return context, page, task


def _stored_gaze(task: Task, page) -> object:
    """Stop the page's logging, send everything, and return the stored gaze box rows."""
    page.evaluate("window.ifllmLogger.pauseClock()")
    page.evaluate("window.ifllmLogger.flush()")
    page.wait_for_function("() => window.ifllmLogger.stats.pending === 0", timeout=30_000)
    df = task_samples(task=task)
    return df[df["signal"].astype(str) == "gaze"]


#: Points in box 1 (viewport coordinates): below the last line of the answer, and at the centre of
#: character K, plus what the browser's caret API says at the point below the text.
POINTS = """(k) => {
  const box = document.querySelector('#response-1');
  const node = box.firstChild;
  const range = document.createRange();
  range.selectNodeContents(box);
  const text = range.getBoundingClientRect();
  const b = box.getBoundingClientRect();
  const below = {x: text.left + 40, y: (text.bottom + b.bottom) / 2};
  range.setStart(node, k); range.setEnd(node, k + 1);
  const c = range.getBoundingClientRect();
  const pos = document.caretPositionFromPoint(below.x, below.y);
  return {below, onChar: {x: c.left + c.width / 2, y: c.top + c.height / 2}, length: node.length,
          caretBelow: pos ? pos.offset : null, textBottom: text.bottom, boxBottom: b.bottom};
}"""


def _short_answer_question(task: Task) -> str:
    """A question whose demo answer is short (3 sentences), so the box has blank space below it."""
    from collection.llm.clients import DemoClient
    from collection.models import LLMModel

    client = DemoClient(LLMModel.objects.get(name=task.model_1))
    questions = [f"What is question {i} about?" for i in range(40)]
    return min(questions, key=lambda q: len(client.answer([{"role": "user", "content": q}])))


def test_char_index_only_inside_a_character(browser, asgi_server):
    context, page, task = _chat_page(browser, asgi_server, "hit-test", mode=Mode.POINTWISE,
                                     init_script=INJECTED_GAZE)
    task.refresh_from_db()
    page.get_by_label("Your question").fill(_short_answer_question(task))
    page.get_by_role("button", name="Ask").click()
    page.wait_for_selector("#rating:not([hidden])", timeout=60_000)
    answer = task.turns.get().response_1
    k = min(7, len(answer) - 2)
    while answer[k].isspace():
        k += 1
    pts = page.evaluate(POINTS, k)
    assert pts["length"] == len(answer)
    assert pts["boxBottom"] - pts["textBottom"] > 40, "the answer fills its box: no blank part to look at"
    # What made the old logger wrong: below the text the caret API answers "the end of the text".
    assert pts["caretBelow"] == len(answer)

    phases = {}
    for name in ("below", "onChar"):
        t0 = page.evaluate("(p) => { window.__gaze = p; return performance.now(); }", pts[name])
        page.wait_for_timeout(1500)
        phases[name] = (t0, page.evaluate("() => performance.now()"))
    shots(page, "logger-hit-test")
    gaze = _stored_gaze(task, page)
    box = gaze[gaze["frame"].astype(str) == "box1"]
    for name, (t0, t1) in phases.items():
        rows = box[(box["page_timer_ms"] > t0 + 50) & (box["page_timer_ms"] < t1)]
        assert len(rows) >= 5, (name, len(rows))
        assert (rows["x"] >= 0).all() and not rows["no_face"].any()  # inside the box, a face
        if name == "below":
            assert rows["char_index"].isna().all(), rows["char_index"].tolist()  # in box, off text
            assert rows["snippet"].isna().all()
        else:
            assert (rows["char_index"] == k).all(), rows["char_index"].tolist()
            assert rows["snippet"].iloc[0] == answer[max(0, k - 15): k + 15]
    # No site sample ever points at the end of the text.
    assert not (box["char_index"] == len(answer)).any()
    context.close()


#: WebGazer learns 9 screen points from the current face frame (as calibration clicks would), so
#: that it predicts on the chat page (the test reached it without the calibration page).
TEACH = """async () => {
  for (let round = 0; round < 3; round += 1) {
    for (const fx of [0.1, 0.5, 0.9]) for (const fy of [0.1, 0.5, 0.9]) {
      window.webgazer.recordScreenPosition(innerWidth * fx, innerHeight * fy, 'click');
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}"""


def _head_in_box(browser, base_url: str, worker_id: str, *, teach: bool = False) -> tuple[object, dict]:
    context, page, task = _chat_page(browser, base_url, worker_id, mode=Mode.POINTWISE)
    # The chat page hides WebGazer's preview (and with it the face feedback box).
    assert page.evaluate("getComputedStyle(document.getElementById('webgazerVideoContainer')).display") == "none"
    page.wait_for_function("() => window.ifllmLogger.stats.samples.gaze >= 3", timeout=90_000)
    if teach:
        page.evaluate(TEACH)
    page.wait_for_function("() => window.ifllmLogger.stats.samples.gaze >= 20", timeout=90_000)
    stats = page.evaluate("window.ifllmLogger.stats")
    gaze = _stored_gaze(task, page)
    context.close()
    return gaze[gaze["frame"].astype(str) == "abs"], stats
