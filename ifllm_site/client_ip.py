"""The client address for login throttling (django-axes ``AXES_CLIENT_IP_CALLABLE``).

uvicorn rewrites the peer address from ``X-Forwarded-For`` when the connection comes from an
address in its ``--forwarded-allow-ips`` (loopback by default), so a client on loopback could
send a new ``X-Forwarded-For`` with each login attempt and never be locked out. Forwarded
headers are trusted only from the proxies ``IFLLM_TRUSTED_PROXIES`` names (``scripts/run.sh``
passes the same list to uvicorn): then the client is the right-most ``X-Forwarded-For`` entry
that is not one of them. With no proxy named, a request that carries the header at all counts
as one address (``FORWARDED_UNTRUSTED``), whatever the header says.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

#: The one address every request with an untrusted ``X-Forwarded-For`` is throttled as.
FORWARDED_UNTRUSTED = "0.0.0.0"


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.IFLLM_TRUSTED_PROXIES)


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR") or ""
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if not forwarded:
        return remote
    if not settings.IFLLM_TRUSTED_PROXIES:
        return FORWARDED_UNTRUSTED
    for address in reversed(forwarded):
        if not _trusted(address):
            return address if _valid(address) else FORWARDED_UNTRUSTED
    return remote
