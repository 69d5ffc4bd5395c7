"""Browser tests: Debian's Chromium driven by Playwright against the real ASGI app (uvicorn).

uvicorn runs in a thread of the test process, so it shares pytest-django's test database with
either backend (SQLite's shared in-memory test database, or PostgreSQL's test_<name>); the tests
use ``transaction=True`` so the server sees committed rows. Tests are skipped when Chromium or
Playwright is missing on a laptop, and fail in CI (``CI`` set) so that CI cannot pass silently.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    # Playwright's sync API keeps an event loop in this thread while it runs; the ORM calls of
    # the tests are still plain synchronous code. Module scope: the loop must be gone before
    # other tests use async_to_sync in this thread.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield b
            b.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture(scope="module")
def face_browser(tmp_path_factory) -> Iterator[object]:
    """Chromium whose camera shows a face (a Y4M made at test time, see ``face_video``)."""
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    from .face_video import write_face_y4m

    video = write_face_y4m(tmp_path_factory.mktemp("camera") / "face.y4m")
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=str(CHROMIUM),
                                   args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"])
            yield b
            b.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[str]:
    """The site under uvicorn on http://localhost:PORT (localhost: the CSRF origin the pages use)."""
    import uvicorn

    from ifllm_site.asgi import application

    port = _free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://localhost:{port}"
    server.should_exit = True
    thread.join(timeout=10)
