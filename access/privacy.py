"""What viewers must not see: platform worker ids and payment amounts (see ``access.roles``).

Only users with ``access.view_private`` (researchers) see them. The admin of every model that
holds them uses :class:`PrivateFieldsAdmin`: private columns are left out of lists, forms and
searches (a search by worker id would confirm who took part), and JSON kept from platform calls
(audit log requests and answers, assignment answers) is shown with private values masked.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html

PRIVATE_PERMISSION = "access.view_private"
MASK = "(hidden)"
#: Keys of platform JSON whose values are private: worker ids, amounts, rewards, balances.
_PRIVATE_KEY = re.compile(r"worker_?ids?$|amount|reward|balance|bonus|pay", re.IGNORECASE)
_WORKER_ID_KEY = re.compile(r"worker_?ids?$", re.IGNORECASE)


def may_see_private(request: HttpRequest) -> bool:
    return request.user.has_perm(PRIVATE_PERMISSION)


def _worker_ids(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if _WORKER_ID_KEY.search(str(key)):
                for v in item if isinstance(item, list) else [item]:
                    if isinstance(v, str) and v:
                        found.add(v)
            else:
                _worker_ids(item, found)
    elif isinstance(value, list):
        for item in value:
            _worker_ids(item, found)


def worker_ids(*values: Any) -> set[str]:
    """Every worker id named under a worker-id key anywhere in the JSON ``values``."""
    found: set[str] = set()
    for value in values:
        _worker_ids(value, found)
    return found


def _mask(value: Any, ids: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if _PRIVATE_KEY.search(str(k)) else _mask(v, ids)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, ids) for v in value]
    if isinstance(value, str):
        return mask_text(value, ids)
    return value


def mask_text(text: str, ids: set[str]) -> str:
    """``text`` with each of the worker ids ``ids`` replaced (error messages quote them)."""
    for worker_id in sorted(ids, key=len, reverse=True):
        text = text.replace(worker_id, MASK)
    return text


def redact(*values: Any, known_ids: set[str] | None = None) -> list[Any]:
    """Mask private keys in JSON ``values`` and any worker id they name wherever it appears."""
    ids = set(known_ids or ()) | worker_ids(*values)
    return [_mask(value, ids) for value in values]


def json_block(value: Any) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, default=str))


class PrivateFieldsAdmin:
    """ModelAdmin mixin: hide ``private_fields`` from users without ``access.view_private``.

    ``masked_fields`` maps a JSON or text field to the display method that shows it masked;
    viewers get the method instead of the field (in forms and in ``list_display``).
    """

    private_fields: tuple[str, ...] = ()
    masked_fields: dict[str, str] = {}

    def _hide(self, request: HttpRequest, names: Any) -> list[Any]:
        if may_see_private(request):
            return list(names)
        out = []
        for name in names:
            if name in self.private_fields:
                continue
            shown = self.masked_fields.get(name, name) if isinstance(name, str) else name
            if shown not in out:
                out.append(shown)
        return out

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._hide(request, super().get_fields(request, obj))  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._hide(request, super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return self._hide(request, super().get_list_display(request))  # type: ignore[misc]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        fields = super().get_search_fields(request)  # type: ignore[misc]
        if may_see_private(request):
            return list(fields)
        return [f for f in fields if f.split("__")[-1] not in (*self.private_fields, *self.masked_fields)]
