"""The replay and the eye-tracking report in Chromium, on a task recorded by the real chat page.

A worker goes through the study with the test gaze source (gaze follows the mouse), asks one
question and rates it: the chat page sends its answer boxes' layout with the rating. Staff then
open the replay of that turn at 1400x900 and 1920x1080: hidden dots must not be visible, the box
must be drawn at the recorded width and font, and the logged box coordinates must land on the
characters the logger recorded under them (and, drawn the old way, at 560 px of sans-serif, they
do not). The eye-tracking report of the task and the mini release is screenshot at both sizes.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from collection.models import CalibrationAttempt, Turn
from collection.selectors import task_samples
from collection.services import study
from tests.support.paths import MINI

from .real_webgazer import enter_to_calibration, study_content
from .test_study_browser import TEST_GAZE, ask_and_rate, calibrate, current_task, shot

SIZES = {"1400": (1400, 900), "1920": (1920, 1080)}

# For every slider position: each dot with [hidden] must not be displayed; and for each sample
# with a character, the character the replay has at the sample's point.
CHECK_JS = """
(settled) => {
  const slider = document.getElementById('replay-slider');
  const data = JSON.parse(document.getElementById('replay-data').textContent);
  const out = {hiddenSeen: 0, hiddenShown: 0, checked: 0, same: 0, misses: []};
  const box = data.boxes[0];
  const content = document.querySelectorAll('.replay-box .content')[0];
  const spans = [...content.querySelectorAll('span:not(.dot)')];
  const dot = content.querySelector('.dot.gaze');
  for (let v = 0; v <= 1000; v += 2) {
    slider.value = v; slider.dispatchEvent(new Event('input'));
    for (const d of document.querySelectorAll('.dot')) {
      if (!d.hidden) continue;
      out.hiddenSeen += 1;
      if (getComputedStyle(d).display !== 'none' || d.getBoundingClientRect().width > 0) out.hiddenShown += 1;
    }
  }
  const t = box.gaze.t, c = box.gaze.c;
  for (let i = 0; i < t.length; i += 1) {
    // Points on a character only: a point below the text gets the end of the text on any layout.
    if (c[i] === null || c[i] >= box.text.length || box.gaze.x[i] === null || !settled.includes(t[i])) continue;
    slider.value = data.duration ? Math.min(1000, Math.ceil(t[i] / data.duration * 1000)) : 0;
    slider.dispatchEvent(new Event('input'));
    // the slider is coarse: place the dot at this sample's time exactly
    dot.hidden = false;
    dot.style.left = `${box.gaze.x[i] - box.layout.border[3]}px`;
    dot.style.top = `${box.gaze.y[i] - box.layout.border[0]}px`;
    dot.scrollIntoView({block: 'center', inline: 'center'});
    const r = dot.getBoundingClientRect();
    // The logger's own rule (logger/hittest.mjs), asked of the replay: the point lies inside the
    // box of the logged character's span (a caret offset alone would name the next character for
    // a point in a character's right half).
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    const b = spans[c[i]] ? spans[c[i]].getBoundingClientRect() : null;
    const pos = document.caretPositionFromPoint(cx, cy);
    const node = pos ? pos.offsetNode : null;
    const k = node ? spans.indexOf(node.nodeType === Node.TEXT_NODE ? node.parentNode : node) : -1;
    out.checked += 1;
    if (b && cx >= b.left - 0.5 && cx <= b.right + 0.5 && cy >= b.top - 0.5 && cy <= b.bottom + 0.5) out.same += 1;
    else if (out.misses.length < 5) out.misses.push([c[i], k, box.gaze.x[i], box.gaze.y[i], t[i]]);
  }
  return out;
}
"""


def _login(browser, base_url: str, size: tuple[int, int]):
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}, base_url=base_url).new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("lab")
    page.get_by_label("Password").fill("pw-for-the-browser")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page


@pytest.mark.django_db(transaction=True)
def test_replay_draws_the_recorded_box_and_the_report_shows_site_and_release(
    browser, asgi_server, django_user_model,
) -> None:
    study_content()
    cfg = study.study_settings_get()
    cfg.min_turns, cfg.min_seconds = 1, 0
    cfg.save()

    # The worker: the real chat page, gaze from the test source (it follows the mouse).
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=asgi_server)
    context.add_init_script(TEST_GAZE)
    page = context.new_page()
    enter_to_calibration(page, "replay-worker")
    calibrate(page, 0)
    task = current_task(page)

    def read_the_answer(page=page) -> None:  # the mouse (so the gaze) moves over the text, line by line
        box = page.locator("#response-1").bounding_box()
        for row in range(8):
            for col in range(12):
                page.mouse.move(box["x"] + 25 + (box["width"] - 50) * col / 11, box["y"] + 30 + 40 * row)
                page.wait_for_timeout(40)

    ask_and_rate(page, "What is this topic about?", task.mode, before_rating=read_the_answer)
    page.wait_for_function("() => document.querySelector('#save-state')?.dataset.state === 'saved'", timeout=20_000)
    page.evaluate("window.ifllmLogger.flush()")
    page.wait_for_timeout(1500)
    turn = Turn.objects.get(task=task)
    layout = turn.box_layout["1"]
    css_width = page.evaluate("document.querySelector('#response-1').getBoundingClientRect().width")
    assert layout["width"] == pytest.approx(css_width, abs=0.01)
    assert "Georgia" in layout["font_family"] and layout["font_size_px"] == pytest.approx(24.3, abs=0.05)
    env = CalibrationAttempt.objects.filter(task=task).last().environment
    assert (env["screen_w"], env["screen_h"]) == tuple(page.evaluate("[screen.width, screen.height]"))
    samples = task_samples(task=task)
    assert samples["char_index"].notna().sum() > 10, "the gaze never fell on the answer"
    # Samples taken while the answer streamed in saw a shorter text: a point past its end got the
    # end of the text so far. Only samples whose snippet is the final text around their index
    # (the text was complete there) can be checked against the replay of the final text.
    mine = samples[samples["turn_id"] == turn.pk]
    t0 = int(mine["epoch_ms"].min())
    text = turn.response_1
    gaze = mine[(mine["signal"] == "gaze") & (mine["frame"] == "box1") & mine["char_index"].notna()]
    # Samples logged while the box had another size (the window was resized, e.g. by the screenshot
    # helper) cannot be drawn on one box: the replay says how many; they are not checked here.
    width = turn.box_layout["1"]["width"]
    settled = sorted({float(r.epoch_ms - t0) for r in gaze.itertuples()
                      if r.snippet == text[max(0, int(r.char_index) - 15): int(r.char_index) + 15]
                      and abs(float(r.box_width) - width) <= 1})
    context.close()

    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-the-browser")
    for label, size in SIZES.items():
        staff = _login(browser, asgi_server, size)
        staff.goto(reverse("crowd:replay", args=[turn.pk]))
        staff.wait_for_selector(".replay-box .content")
        content = staff.locator(".replay-box .content").first
        box = content.bounding_box()
        assert box["width"] == pytest.approx(layout["width"], abs=0.5)
        style = content.evaluate("e => [getComputedStyle(e).fontFamily, getComputedStyle(e).fontSize]")
        assert style[0] == layout["font_family"] and float(style[1].removesuffix("px")) == pytest.approx(
            layout["font_size_px"], abs=0.05)
        assert content.get_attribute("data-layout") == "recorded"
        staff.evaluate("() => { const s = document.getElementById('replay-slider'); s.value = 500;"
                       " s.dispatchEvent(new Event('input')); }")
        shot(staff, f"replay-{task.mode}-{label}")
        result = staff.evaluate(CHECK_JS, settled)
        assert result["hiddenSeen"] > 0 and result["hiddenShown"] == 0, result
        if result["same"] / max(result["checked"], 1) < 0.9:  # say what the misses were
            cols = ["x", "y", "char_index", "snippet", "box_width", "scroll_top", "page_timer_ms"]
            rows = [gaze[gaze["epoch_ms"] - t0 == m[4]][cols].to_dict("records") for m in result["misses"]]
            raise AssertionError(f"{result} {rows} {text[140:220]!r}")
        # Must fail: the same coordinates on the old replay box (560 px of sans-serif) miss the characters.
        staff.evaluate("() => Object.assign(document.querySelector('.replay-box .content').style,"
                       " {width: '560px', font: '18px/1.6 sans-serif', padding: '0', borderWidth: '2px'})")
        old = staff.evaluate(CHECK_JS, settled)
        assert old["same"] / old["checked"] < 0.5, old

        staff.goto(reverse("crowd:eyetracking_report"))
        assert staff.locator("table.eyetracking-table").count() >= 6
        heads = staff.locator("table.eyetracking-table").first.locator("thead th").all_text_contents()
        assert heads[-2:] == ["Site tasks", "Imported release"]
        assert staff.get_by_text("not recorded in the release").count() > 5
        assert staff.evaluate("document.documentElement.scrollWidth") <= size[0]
        shot(staff, f"eyetracking-report-{label}")
        with staff.expect_download() as dl:
            staff.locator("#download-md").click()
        assert dl.value.suggested_filename == "eyetracking-report.md"
        staff.context.close()
