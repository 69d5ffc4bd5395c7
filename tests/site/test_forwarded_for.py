"""Issue 22, item 7: login throttling bypassed with ``X-Forwarded-For`` from loopback.

Replayed through uvicorn with its defaults (``proxy_headers`` on, ``--forwarded-allow-ips``
loopback: the rewrite that made each attempt look like a new client) and real HTTP requests
carrying a new ``X-Forwarded-For`` each time. Forwarded headers count only from the proxies
``IFLLM_TRUSTED_PROXIES`` names (ifllm_site/client_ip.py).
"""

from __future__ import annotations

import re

import pytest
import requests
from django.contrib.auth.models import User

from tests.support.servers import uvicorn_in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def _attempt(base: str, password: str, forwarded: str) -> int:
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = session.post(f"{base}/admin/login/", data={"username": "rita", "password": password,
                                                  "csrfmiddlewaretoken": token},
                     headers={"X-Forwarded-For": forwarded, "Referer": f"{base}/admin/login/"},
                     allow_redirects=False, timeout=30)
    return r.status_code


def test_new_forwarded_for_per_attempt_is_still_locked_out(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.IFLLM_TRUSTED_PROXIES = []
    User.objects.create_user("rita", password="right-password-1", is_staff=True)
    with uvicorn_in_thread() as base:
        codes = [_attempt(base, "wrong", f"203.0.113.{i}") for i in range(5)]
        assert codes[:2] == [200, 200] and set(codes[2:]) == {429}, codes
        assert _attempt(base, "right-password-1", "198.51.100.7") == 429


def test_a_named_proxy_is_trusted(settings):
    """Behind a named proxy, the client it reports is the one throttled: another client is not
    locked by the first one's failures, and the same client is."""
    settings.AXES_FAILURE_LIMIT = 3
    settings.IFLLM_TRUSTED_PROXIES = ["127.0.0.1", "::1"]
    User.objects.create_user("rita", password="right-password-1", is_staff=True)
    with uvicorn_in_thread() as base:
        codes = [_attempt(base, "wrong", "203.0.113.1") for _ in range(3)]
        assert codes == [200, 200, 429]
        # a spoofed entry left of the real one changes nothing: the right-most untrusted counts
        assert _attempt(base, "wrong", "198.51.100.99, 203.0.113.1") == 429
        assert _attempt(base, "right-password-1", "198.51.100.7") == 302
