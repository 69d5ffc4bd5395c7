"""The content security policy lets the real WebGazer run: the calibration page in Chromium, with
the fake camera and the policy the site sends, starts WebGazer, MediaPipe's face mesh fetches and
compiles its WebAssembly, and the browser reports no policy violation. WebGazer's bundle calls
eval, so its two pages (calibration, chat) add 'unsafe-eval'; the site-wide policy alone is
shown to break it (so the check can fail)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore

from collection import session as study_session
from collection.models import Task, Topic, Worker

VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""


def _calibration_page(browser, base_url: str):
    """A worker bound to a browser session with a chosen topic, on its calibration page."""
    worker = Worker.objects.create(pseudonym="csp-worker", platform="lab", platform_worker_id="csp-1", consent=True)
    task = Task.objects.create(worker=worker, topic=Topic.objects.create(title="CSP topic"))
    store = SessionStore()
    store[study_session.WORKER_KEY] = worker.pk
    store[study_session.SEEN_KEY] = int(time.time())
    store.create()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url, permissions=["camera"])
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": store.session_key, "url": base_url}])
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    wasm: list[str] = []
    console: list[str] = []
    page.on("response", lambda r: wasm.append(r.url) if r.url.endswith(".wasm") and r.ok else None)
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto(f"/task/{task.pk}/calibrate/")
    assert response.status == 200, response.text()[:500]
    return context, page, response.headers["content-security-policy"], wasm, console


def _start_webgazer(page, wasm: list[str]) -> None:
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => !!window.webgazer", timeout=30_000)
    deadline = time.monotonic() + 60
    # until the face mesh's WebAssembly arrives, or the policy blocked something (nothing more comes)
    while not wasm and time.monotonic() < deadline and not page.evaluate("window.__cspViolations.length"):
        page.wait_for_timeout(250)
    page.wait_for_timeout(3000)  # let the face mesh compile and run on a few frames


@pytest.mark.django_db(transaction=True)
def test_webgazer_runs_under_the_policy(browser, asgi_server) -> None:
    context, page, policy, wasm, console = _calibration_page(browser, asgi_server)
    # WebGazer's bundle needs eval: allowed on its pages only (collection.views.webgazer_csp).
    assert "'wasm-unsafe-eval'" in policy and "'unsafe-eval'" in policy
    _start_webgazer(page, wasm)
    assert wasm, "MediaPipe's face mesh WebAssembly was never fetched"
    assert page.evaluate("window.__cspViolations") == [] and console == []
    assert page.locator("#webgazerVideoFeed").count() == 1  # the camera runs in WebGazer
    assert page.locator("#error").inner_text() == ""
    context.close()


@pytest.mark.django_db(transaction=True)
def test_the_site_wide_policy_alone_would_break_webgazer(browser, asgi_server, monkeypatch) -> None:
    """Without the page's eval allowance the check sees the violation (so it can fail)."""
    from collection import views

    monkeypatch.setitem(views.WEBGAZER_CSP, "script-src", [])
    context, page, policy, wasm, console = _calibration_page(browser, asgi_server)
    assert "'unsafe-eval'" not in policy
    _start_webgazer(page, wasm)
    assert page.evaluate("window.__cspViolations") or console
    context.close()

