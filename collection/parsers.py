"""JSON request bodies that can never become a 500: too large, too deep or not JSON is a 4xx.

DRF's own ``JSONParser`` reads the whole stream (Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is
never consulted on that path) and lets ``RecursionError`` from ``json`` escape on ``[`` × 1000.
This parser reads at most the configured limit (413 beyond it, with the limits in the body so
the page can split a batch), and refuses nesting deeper than any of our inputs needs (400).
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

#: Deepest nesting any study input has (calibration: body > points > point > samples > sample).
MAX_JSON_DEPTH = 16


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, detail: str, **limits: int) -> None:
        super().__init__(detail)
        # Set after DRF's coercion of details to strings: the page reads the limits as numbers.
        self.detail = {"detail": detail, "code": self.default_code, **limits}


def max_body_bytes() -> int:
    """The request body limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``; Django's default when unset)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, iteratively (a recursive walk could itself overflow)."""
    deepest, stack = 0, [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        # A batch column is a list of hundreds of scalars: ask for the set of item types (a C
        # loop) before looking at items one by one in Python.
        if not _CONTAINERS.isdisjoint(set(map(type, children))):
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


#: What ``json.loads`` makes containers of (it makes no subclasses).
_CONTAINERS = frozenset((dict, list))


def too_large(limit: int) -> PayloadTooLarge:
    from .serializers import MAX_BATCH_SAMPLES

    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes: send fewer samples per request.",
        max_bytes=limit, max_samples=MAX_BATCH_SAMPLES,
    )


class SafeJSONParser(JSONParser):
    """``JSONParser`` with a size limit, a depth limit, and every decoding failure a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        # A view may bound its body below the site's limit (``max_body_bytes``: calibration).
        limit = getattr((parser_context or {}).get("view"), "max_body_bytes", None) or max_body_bytes()
        request = (parser_context or {}).get("request")
        if request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise too_large(limit)
        if stream is None:
            raise ParseError("JSON parse error - empty body")
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large(limit)
        encoding = json_charset((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels")
        return data


#: Charsets a JSON body may declare: JSON is Unicode (RFC 8259), so UTF-8/16/32 and ASCII only.
JSON_CHARSETS = frozenset(("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
                           "ascii"))


def json_charset(name: str) -> str:
    """The codec for a declared charset, or 415 naming it.

    ``bytes.decode`` takes any codec name: ``rot13``, ``base64``, ``hex`` or ``zlib`` are
    bytes-to-bytes or text-to-text codecs that raise ``LookupError`` (it was a 500), and an
    unknown name does too.
    """
    try:
        codec = codecs.lookup(name).name
    except (LookupError, TypeError, ValueError):
        codec = ""
    if codec not in JSON_CHARSETS:
        raise UnsupportedMediaType(f"application/json; charset={str(name)[:40]}",
                                   detail=f"Unsupported charset '{str(name)[:40]}': send JSON as UTF-8.")
    return codec


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON (the browser never sends them); DRF's parser refuses them too.
    raise ValueError(f"{name} is not valid JSON")


class BeaconJSONParser(SafeJSONParser):
    """The same JSON sent as ``text/plain`` by ``navigator.sendBeacon`` (it cannot set the type)."""

    media_type = "text/plain"
