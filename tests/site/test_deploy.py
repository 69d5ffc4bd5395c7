"""Deployment hardening: `check --deploy` is clean in production, the content security policy is
sent (and lets the inline scripts we mean run), oversized bodies are refused before Django works
on them, and admin logins are throttled."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {  # the documented production variables (README, "Production / scale-out")
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "lab.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://lab.example.org",
}


def _check_deploy(**extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION, **extra}
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"):
        if name not in extra:
            env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_is_clean_in_production() -> None:
    result = _check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "warning"),
    [("SECURE_SSL_REDIRECT", "W008"), ("SESSION_COOKIE_SECURE", "W012"), ("CSRF_COOKIE_SECURE", "W016")],
)
def test_check_deploy_fails_when_a_protection_is_turned_off(variable: str, warning: str) -> None:
    """The variables really switch the protections (and the check would catch a regression)."""
    result = _check_deploy(**{variable: "false"})
    assert result.returncode != 0 and warning in result.stdout + result.stderr


@pytest.mark.django_db
def test_content_security_policy_with_nonce_for_inline_scripts(client: Client) -> None:
    response = client.get(reverse("collection:unsupported"))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert "'wasm-unsafe-eval'" in directives["script-src"] and "blob:" in directives["worker-src"]
    nonce = re.search(r"'nonce-([^']+)'", directives["script-src"]).group(1)
    assert f'nonce="{nonce}"' in response.content.decode()  # the page's inline script carries it
    assert client.get(reverse("collection:unsupported"))["Content-Security-Policy"] != policy  # fresh nonce


@pytest.mark.django_db
def test_oversized_body_is_refused_before_authentication(client: Client, django_assert_num_queries) -> None:
    from django.conf import settings

    client.cookies["sessionid"] = "x" * 32  # a session lookup would be a query
    with django_assert_num_queries(0):
        response = client.generic(
            "POST", "/api/study/tasks/1/batches/", b"[]", content_type="application/json",
            CONTENT_LENGTH=str(settings.IFLLM_MAX_REQUEST_BODY + 1),
        )
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def _asgi_call(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """Run one request through ``app``; return (status, body chunks the app pulled)."""
    sent: list[dict] = []
    pulled = 0

    async def receive() -> dict:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x/", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), pulled


def test_asgi_cap_refuses_declared_and_streamed_bodies(settings) -> None:
    from ifllm_site.body_limit import RequestBodyLimitASGI

    settings.IFLLM_MAX_REQUEST_BODY = 1000

    async def django_like(scope, receive, send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = RequestBodyLimitASGI(django_like)
    assert _asgi_call(app, [(b"content-length", b"1001")], [b"x" * 1001]) == (413, 0)  # nothing read
    status, pulled = _asgi_call(app, [], [b"x" * 400] * 10)  # chunked, no length
    assert status == 413 and pulled == 3  # cut off at the chunk that passed the cap
    assert _asgi_call(app, [(b"content-length", b"800")], [b"x" * 400] * 2)[0] == 200


@pytest.mark.django_db
def test_admin_login_is_throttled(settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("rita", password="right-password-1", is_staff=True)
    User.objects.create_user("other", password="right-password-2", is_staff=True)
    client = Client()
    url = reverse("admin:login")
    for _ in range(2):
        assert client.post(url, {"username": "rita", "password": "wrong"}).status_code == 200
    assert client.post(url, {"username": "rita", "password": "wrong"}).status_code == 429  # the limit-th
    locked = client.post(url, {"username": "rita", "password": "right-password-1"})
    assert locked.status_code == 429  # even the right password, while locked
    assert "_auth_user_id" not in client.session
    ok = Client().post(url, {"username": "other", "password": "right-password-2"})
    assert ok.status_code == 302  # another account is not locked by rita's failures
