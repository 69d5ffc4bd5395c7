"""Browser tests: Debian's Chromium driven by Playwright against the real ASGI app (uvicorn).

uvicorn runs in a thread of the test process, so it shares pytest-django's test database with
either backend (SQLite's shared in-memory test database, or PostgreSQL's test_<name>); the tests
use ``transaction=True`` so the server sees committed rows. Tests are skipped when Chromium or
Playwright is missing on a laptop, and fail in CI (``CI`` set) so that CI cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.servers import uvicorn_in_thread

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


def _require_browser() -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)


@contextmanager
def _chromium(extra_args: list[str]) -> Iterator[object]:
    """Debian's Chromium through Playwright. Playwright's sync API keeps an event loop in this
    thread while it runs; the ORM calls of the tests are still plain synchronous code. Module
    scope in the fixtures: the loop must be gone before other tests use async_to_sync here."""
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
            yield b
            b.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_browser()
    with _chromium([]) as b:
        yield b


@pytest.fixture(scope="module")
def face_browser(tmp_path_factory) -> Iterator[object]:
    """Chromium whose camera shows a face (a Y4M made at test time, see ``face_video``)."""
    _require_browser()
    from .face_video import write_face_y4m

    video = write_face_y4m(tmp_path_factory.mktemp("camera") / "face.y4m")
    with _chromium([f"--use-file-for-fake-video-capture={video}"]) as b:
        yield b


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[str]:
    """The site under uvicorn on http://localhost:PORT (localhost: the CSRF origin the pages use)."""
    with uvicorn_in_thread() as url:
        yield url
