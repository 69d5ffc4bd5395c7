"""The site's error pages (``handler400``/``handler500`` in ``ifllm_site/urls.py``).

Django's own 400 view is wrapped in ``requires_csrf_token``, which runs the CSRF check again and
reads the body again: a form post in a charset Django refuses (``BadRequest``) raised the same
error inside the 400 handler, which became a 500. These views read neither the body nor the
database.

A 500 caused by the database being unreachable (``OperationalError``/``InterfaceError``, e.g.
during a failover) is a 503 page with ``Retry-After`` that tells the person to try again: the
APIs already answer so, and the pages and the answer stream now do too.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

RETRY_AFTER_S = 5


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, *, message: str, status: int, code: str,
                   headers: dict[str, str] | None = None) -> HttpResponse:
    """A page for a person, JSON for the APIs; no database and no request body involved."""
    if _wants_json(request):
        response: HttpResponse = JsonResponse({"detail": message, "code": code}, status=status)
    else:
        response = render(request, "collection/error.html", {"message": message, "status": status}, status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, status=400, code="bad_request", message=_(
        "The request could not be read (for example a form sent in a character set other than UTF-8)."))


def database_unavailable(request: HttpRequest) -> HttpResponse:
    return error_response(
        request, status=503, code="unavailable", headers={"Retry-After": str(RETRY_AFTER_S)},
        message=_("The server cannot reach its database for a moment. Nothing you saved is lost: "
                  "please wait a few seconds and reload this page."),
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """500, except that a database outage is a 503 that says to retry."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable(request)
    return error_response(request, status=500, code="server_error",
                          message=_("Something went wrong on the server. Please try again in a moment."))
