"""A cap on request bodies that acts before anything else looks at the request.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is checked only when a view reads the body, i.e. after
sessions, authentication and CSRF have run (database work an attacker gets for free), and under
ASGI Django has already read the whole body into a temporary file by then. So the cap is applied
twice, both ahead of Django's own work:

* :class:`RequestBodyLimitASGI` wraps the ASGI application (``ifllm_site.asgi``): a declared
  ``Content-Length`` over the cap is answered 413 without reading the body, and a body sent
  without one (chunked) is cut off with 413 as soon as it passes the cap.
* :class:`RequestBodyLimitMiddleware`, first in ``MIDDLEWARE``, does the same check on the
  declared length for WSGI and the test client.

The cap is ``settings.IFLLM_MAX_REQUEST_BODY`` bytes; it must stay above the largest legitimate
body (a full trajectory batch). The admin's release upload has its own, larger cap
(:func:`body_limit`, ``IFLLM_IMPORT_MAX_UPLOAD_MB``): Django spools such a body to a temporary
file on disk (``FILE_UPLOAD_MAX_MEMORY_SIZE``), never into memory.

A refusal is a page for a person and JSON for the APIs (and for clients that ask for JSON).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


#: The path of the admin's release upload (``admin:collection_importrun_import``; a test holds
#: the two equal). Staff-only: the admin itself checks the login before reading the body.
IMPORT_UPLOAD_PATH = "/admin/collection/importrun/import/"
#: Room for the form's other fields and the multipart framing around the archive.
FORM_SLACK = 1024 * 1024


def body_limit(path: str) -> int:
    """The body cap of a request to ``path``."""
    if path == IMPORT_UPLOAD_PATH:
        return int(settings.IFLLM_IMPORT_MAX_UPLOAD_MB * 1024 * 1024) + FORM_SLACK
    return settings.IFLLM_MAX_REQUEST_BODY


def _detail(limit: int) -> dict[str, str]:
    return {"detail": f"Request body too large: the limit is {limit} bytes."}


def _wants_json(path: str, accept: str) -> bool:
    return path.startswith("/api/") or "json" in accept


def _page(limit: int) -> str:
    from django.template.loader import render_to_string

    megabytes = limit / (1024 * 1024)
    message = (f"What you sent is larger than this page accepts ({megabytes:.0f} MB). "
               "Send less at once; a large release archive can be copied to the server and imported by its path.")
    return render_to_string("collection/error.html", {"message": message, "status": 413})


def too_large_response(path: str, accept: str, limit: int) -> HttpResponse:
    if _wants_json(path, accept):
        return JsonResponse(_detail(limit), status=413)
    return HttpResponse(_page(limit), status=413, content_type="text/html; charset=utf-8")


class RequestBodyLimitMiddleware:
    """Django middleware: 413 for a declared ``Content-Length`` above the cap."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request.path)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        if length > limit:
            return too_large_response(request.path, request.headers.get("Accept", ""), limit)
        return self.get_response(request)


class BodyTooLarge(Exception):
    pass


class RequestBodyLimitASGI:
    """ASGI wrapper: 413 before Django reads a body above the cap."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def _refuse(self, send: Send, limit: int, scope: Scope) -> None:
        accept = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"accept"), "")
        if _wants_json(scope.get("path", ""), accept):
            body, kind = json.dumps(_detail(limit)).encode(), b"application/json"
        else:
            body, kind = _page(limit).encode(), b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # Django answers the malformed header itself
                if declared > limit:
                    await self._refuse(send, limit, scope)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit, scope)
