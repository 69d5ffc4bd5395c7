"""Two guards every request passes.

``RequestGuardMiddleware``: refuse what the database or the body limit cannot take with a clear 4xx, never a 500.

NUL characters: a 400 that names the field.
PostgreSQL text cannot hold NUL (0x00), so a ``%00`` in ``workerId`` or in an admin search used to
reach the database and come back as a 500. Form fields refuse NUL themselves (Django and DRF
``CharField``); this catches what no form sees: query parameters of the entry page, raw POST
fields, the path, and cookies (a session cookie with NUL is dropped, i.e. treated as absent).

Bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: Django answers an HTML 400; this turns it into a 413
that gives the limits (JSON on the APIs), which the study page reads as "split the batch".

``study_pages_no_store``: study pages are never cached: Back must ask the server again.

Every study page is decided by the server's state (``views.next_step``); a cached copy shown by
Back would show a step the worker already left, with its old form errors. ``no-store`` also
keeps browsers from restoring the page from the back/forward cache.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.decorators import sync_and_async_middleware
from django.utils.translation import gettext as _

NUL = "\x00"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def nul_field(request: HttpRequest) -> str | None:
    """The name of the first request field (or the path) with a NUL character, else None."""
    if NUL in request.path:
        return "path"
    sources = [request.GET]
    if request.method == "POST" and request.content_type in FORM_TYPES:
        sources.append(request.POST)
    for source in sources:
        for key, values in source.lists():
            if NUL in key or any(NUL in v for v in values):
                return key.replace(NUL, "\\x00")
    return None


def text_codec(name: str) -> bool:
    """Whether ``name`` is a codec that decodes bytes to text (not rot13, base64, zlib, unknown)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        return False
    # Text codecs that are not character sets of a body (idna/punycode refuse errors="replace").
    return info._is_text_encoding and info.name not in _NOT_BODY_CHARSETS


_NOT_BODY_CHARSETS = frozenset(("idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined"))


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


class RequestGuardMiddleware:
    """First in the chain after security: nothing later sees a NUL from the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        charset = request.content_params.get("charset") if request.content_params else None
        if charset is not None and not text_codec(charset):
            # ``bytes.decode`` accepts rot13, base64, zlib...: Django's form and multipart
            # parsers then raised LookupError (a 500); the body is refused before anyone reads it.
            message = _("The character set “%(charset)s” is not supported: send UTF-8.") % {"charset": charset[:40]}
            if _wants_json(request):
                return JsonResponse({"detail": message, "code": "unsupported_charset"}, status=415)
            return render(request, "collection/error.html", {"message": message}, status=415)
        bad = [k for k, v in request.COOKIES.items() if NUL in k or NUL in v]
        for key in bad:
            del request.COOKIES[key]
        try:
            field = nul_field(request)
        except MultiPartParserError as exc:
            # A malformed multipart body (no or a bad boundary) is the client's error, not a 500.
            message = _("The request body is not valid form data: %(error)s") % {"error": exc}
            if _wants_json(request):
                return JsonResponse({"non_field_errors": [message], "code": "parse_error"}, status=400)
            return render(request, "collection/error.html", {"message": message}, status=400)
        if field is not None:
            message = _("The field “%(field)s” contains a NUL character, which is not allowed.") % {"field": field}
            if _wants_json(request):
                return JsonResponse({field: [message], "code": "nul_character"}, status=400)
            return render(request, "collection/error.html", {"message": message}, status=400)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, RequestDataTooBig):
            return None
        from .parsers import too_large

        body = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE).detail
        if _wants_json(request):
            return JsonResponse(body, status=413)
        return render(request, "collection/error.html", {"message": body["detail"]}, status=413)


def _no_store(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.app_name == "collection" and not response.streaming:
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True)
    return response


@sync_and_async_middleware
def study_pages_no_store(get_response: Callable) -> Callable:
    """Add ``Cache-Control: no-store`` (and Django's never-cache headers) to the study's pages.

    Sync and async: the answer stream is an async view, which a sync-only middleware would push
    through a thread.
    """
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _no_store(request, await get_response(request))

        markcoroutinefunction(middleware)
        return middleware

    def sync_middleware(request: HttpRequest) -> HttpResponse:
        return _no_store(request, get_response(request))

    return sync_middleware
