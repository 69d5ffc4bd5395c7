"""The review queue in Chromium (uvicorn, PostgreSQL): one keystroke per move and per call.

Staff open the queue over a selection of four site tasks (turns and gaze samples made through
the site's services), press a, x then 2, x then Esc, f, k, j, type in the note (keys are off
there), and the calls are in the database while the position moves. A second reviewer sees the
first one's calls, disagrees once and agrees once, and the header shows their agreement.
Screenshots at 1366x768 and 1920x1080 (set IFLLM_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from crowd import services
from crowd.models import ReviewCall, TaskQC
from crowd.qc import THRESHOLD_NAMES
from tests.support.admin_browser import admin_page
from tests.support.site_tasks import site_task

from .test_study_browser import shot

SIZES = {"1366": (1366, 768), "1920": (1920, 1080)}


def _shots(page, name: str) -> None:
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(150)  # the replay refits on resize
        _fits(page, w)
        shot(page, f"review-{name}-{label}")
    page.set_viewport_size({"width": 1366, "height": 768})


def _fits(page, width: int) -> None:
    """Nothing makes the page scroll sideways, and the replay's boxes fit their column."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if page.locator("#rq-replay").count():
        inner = page.evaluate("() => { const b = document.getElementById('replay-boxes');"
                              " return b.getBoundingClientRect().right; }")
        outer = page.locator("#rq-replay").bounding_box()
        assert inner <= outer["x"] + outer["width"] + 1


def _position(page) -> str:
    return page.locator("#rq-position").inner_text()


def _press(page, key: str, *, then_url: str | None = None) -> None:
    if then_url is None:
        page.keyboard.press(key)
        return
    with page.expect_navigation(url=re.compile(then_url)):
        page.keyboard.press(key)
    page.wait_for_selector("#rq[data-keys=ready]")


def _login(browser, base_url: str, name: str, password: str):
    page = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base_url).new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_go_through_a_queue_with_the_keyboard(browser, asgi_server, django_user_model) -> None:
    tasks = [site_task(name=f"rq{n}", n_turns=3, mode="pairwise" if n == 1 else "pointwise") for n in range(4)]
    turn = tasks[0].turns.get(index=0)
    turn.response_1 = "The **short** answer:\n\n1. first\n2. second\n\n`code` and <b>raw html</b>"
    turn.save(update_fields=["response_1"])
    for task in tasks:
        services.task_qc_compute(task=task)
    selection = services.data_selection_create(
        name="keyboard queue", thresholds=dict.fromkeys(THRESHOLD_NAMES), require_qc=False, validation=False)
    ids = sorted(selection.task_ids)
    errors: list[str] = []

    page = admin_page(browser, asgi_server, django_user_model, width=1366, height=768)
    lab = django_user_model.objects.get(username="lab")
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The selection's page links the queue.
    page.goto(f"/admin/collection/dataselection/{selection.pk}/change/")
    page.locator("a.review-queue-link").first.click()
    page.wait_for_selector("#rq[data-keys=ready]")
    assert _position(page) == "1 of 4"
    assert page.locator(".md-answer strong", has_text="short").count() == 1  # Markdown rendered
    assert page.locator(".md-answer b").count() == 0  # raw HTML stays text
    legend = page.locator("#rq-legend")
    assert legend.is_visible() and "x exclude, then 1–6 reason" in legend.inner_text()
    page.wait_for_function("() => document.getElementById('rq-replay').dataset.zoom")
    _shots(page, "first")

    _press(page, "?")
    assert page.locator("#rq-help").is_visible()
    _shots(page, "help")
    _press(page, "?")
    assert page.locator("#rq-help").is_hidden()

    # a: keep, saved, next task.
    _press(page, "a", then_url=r"i=2")
    assert _position(page) == "2 of 4"
    assert ReviewCall.objects.get(task_id=ids[0], reviewer=lab).call == "keep"
    assert TaskQC.objects.get(task_id=ids[0]).decision == "keep"
    _shots(page, "pairwise")

    # x then 2: exclude for the second reason of the list (calibration drift).
    _press(page, "x")
    assert page.locator("#rq-reasons").is_visible()
    assert "press 1–6" in page.locator("#rq-status").inner_text()
    _shots(page, "picking")
    _press(page, "2", then_url=r"i=3")
    call = ReviewCall.objects.get(task_id=ids[1], reviewer=lab)
    assert (call.call, call.reason) == ("exclude", "calibration_drift")
    assert tasks[1].__class__.objects.get(pk=ids[1]).excluded

    # x then Esc: nothing saved, still on task 3.
    _press(page, "x")
    _press(page, "Escape")
    assert page.locator("#rq-reasons").is_hidden()
    _press(page, "2")
    page.wait_for_timeout(300)
    assert _position(page) == "3 of 4" and not ReviewCall.objects.filter(task_id=ids[2]).exists()

    # f: flag, decides nothing.
    _press(page, "f", then_url=r"i=4")
    assert ReviewCall.objects.get(task_id=ids[2], reviewer=lab).call == "flag"
    assert TaskQC.objects.get(task_id=ids[2]).decision == ""

    # k / j move without calling.
    _press(page, "k", then_url=r"i=3")
    assert _position(page) == "3 of 4"
    _press(page, "ArrowRight", then_url=r"i=4")
    assert _position(page) == "4 of 4"
    _press(page, "ArrowLeft", then_url=r"i=3")
    _press(page, "j", then_url=r"i=4")

    # Typing in the note: the keys are the note's, not the queue's.
    page.locator("#rq-note").click()
    page.keyboard.type("a fixation at x, jumps far")
    page.wait_for_timeout(300)
    assert _position(page) == "4 of 4" and not ReviewCall.objects.filter(task_id=ids[3]).exists()
    page.locator("#rq-note").blur()
    _press(page, "a", then_url=r"i=5")
    assert ReviewCall.objects.get(task_id=ids[3], reviewer=lab).note == "a fixation at x, jumps far"
    assert "end of queue" in _position(page)
    assert errors == []

    # The second reviewer sees the first one's calls and the agreement.
    uma = django_user_model.objects.create_user("uma", password="pw-of-uma", is_staff=True)
    uma.groups.add(Group.objects.get(name="researcher"))
    second = _login(browser, asgi_server, "uma", "pw-of-uma")
    second.on("pageerror", lambda exc: errors.append(str(exc)))
    second.goto(f"/crowd/review/{selection.pk}/?only=unreviewed")
    second.wait_for_selector("#rq[data-keys=ready]")
    assert _position(second) == "1 of 4"
    assert "lab" in second.locator("#rq-calls").inner_text() and "Keep" in second.locator("#rq-calls").inner_text()
    assert "no task called by two reviewers yet" in second.locator("#rq-agreement").inner_text()
    _press(second, "x")
    _press(second, "1", then_url=r"only=unreviewed&i=1")  # task 1 left "not called by you"
    assert _position(second) == "1 of 3"
    _press(second, "x")
    _press(second, "2", then_url=r"only=unreviewed&i=1")  # agrees with lab on task 2
    assert [ReviewCall.objects.filter(task_id=t).count() for t in ids[:2]] == [2, 2]
    assert TaskQC.objects.get(task_id=ids[0]).decision == "keep"  # disputed: the first decision stays

    second.goto(f"/crowd/review/{selection.pk}/?only=disputed")
    second.wait_for_selector("#rq[data-keys=ready]")
    assert _position(second) == "1 of 1"
    assert second.locator("#rq-task-status").inner_text() == "disputed"
    assert "differs from yours" in second.locator("#rq-calls").inner_text()
    header = second.locator("#rq-agreement").inner_text()
    assert "lab vs uma" in header and "50% agree (1 of n = 2)" in header and "κ = " in header
    _shots(second, "second-reviewer")
    assert errors == []

    # A viewer may look but not call: the keys say why nothing is saved.
    victor = django_user_model.objects.create_user("victor", password="pw-of-victor", is_staff=True)
    victor.groups.add(Group.objects.get(name="viewer"))
    third = _login(browser, asgi_server, "victor", "pw-of-victor")
    third.goto(f"/crowd/review/{selection.pk}/")
    third.wait_for_selector("#rq[data-keys=ready]")
    n_calls = ReviewCall.objects.count()
    _press(third, "a")
    assert "crowd.review_task" in third.locator("#rq-status").inner_text()
    assert ReviewCall.objects.count() == n_calls and _position(third) == "1 of 4"
    _press(third, "j", then_url=r"i=2")  # moving still works


@pytest.mark.django_db(transaction=True)
def test_the_buttons_work_without_javascript(browser, asgi_server, django_user_model) -> None:
    tasks = [site_task(name=f"nojs{n}", n_turns=1) for n in range(3)]
    selection = services.data_selection_create(
        name="no js", thresholds=dict.fromkeys(THRESHOLD_NAMES), require_qc=False, validation=False)
    ids = sorted(t.pk for t in tasks)
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-the-browser")
    page = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=asgi_server,
                               java_script_enabled=False).new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("lab")
    page.get_by_label("Password").fill("pw-for-the-browser")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    page.goto(f"/crowd/review/{selection.pk}/")
    assert page.locator("#rq").get_attribute("data-keys") is None  # the script did not run
    page.locator("button.rq-keep").click()
    page.wait_for_url(re.compile(r"i=2"))
    assert _position(page) == "2 of 3" and ReviewCall.objects.get(task_id=ids[0]).call == "keep"
    page.locator("#rq-note").fill("camera froze")
    page.locator("button.rq-exclude").click()  # no reason chosen: refused, the message beside the field
    page.wait_for_selector("#rq-error-reason")
    assert _position(page) == "2 of 3"  # the same task again, not a bare error page
    assert "Reason: an exclusion needs a reason" in page.locator("#rq-error-reason").inner_text()
    assert page.locator("#rq-note").input_value() == "camera froze"  # what was typed is kept
    assert not ReviewCall.objects.filter(task_id=ids[1]).exists()
    _shots(page, "refused-nojs")
    page.locator("#rq-reason").select_option("technical")
    page.locator("button.rq-exclude").click()
    page.wait_for_url(re.compile(r"i=3"))
    call = ReviewCall.objects.get(task_id=ids[1])
    assert (call.call, call.reason, call.note) == ("exclude", "technical", "camera froze")
    page.locator("#rq-next").click()
    assert "end of queue" in _position(page)
