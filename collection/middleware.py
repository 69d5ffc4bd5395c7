"""Study pages are never cached: Back must ask the server again.

Every study page is decided by the server's state (``views.next_step``); a cached copy shown by
Back would show a step the worker already left, with its old form errors. ``no-store`` also
keeps browsers from restoring the page from the back/forward cache.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.decorators import sync_and_async_middleware


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
