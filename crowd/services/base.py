"""What every crowd service shares: the permission check, the acting user, the error staff see."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied


class CrowdError(Exception):
    """A crowd operation is not allowed in the current state (shown to staff as is)."""


def _require(user: Any, perm: str) -> None:
    if user is not None and not user.has_perm(perm):
        raise PermissionDenied(f"{getattr(user, 'username', user)} lacks {perm}")


def _acting(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
