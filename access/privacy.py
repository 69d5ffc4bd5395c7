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

from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils.html import format_html

PRIVATE_PERMISSION = "access.view_private"
MASK = "(hidden)"
#: Keys of platform JSON whose values are private: worker ids (Prolific: participant ids), amounts,
#: rewards, balances.
_PRIVATE_KEY = re.compile(r"worker_?ids?$|participant_?ids?$|amount|reward|balance|bonus|pay", re.IGNORECASE)
_WORKER_ID_KEY = re.compile(r"worker_?ids?$|participant_?ids?$", re.IGNORECASE)


#: Model fields that hold private values, by ``app_label.model``: admins hide them from viewers
#: and refuse every query-string lookup that reaches them (a filter that answers "1 result" or
#: "0" for ``platform_worker_id__startswith=A2S`` reads the id out one character at a time).
PRIVATE_FIELDS: dict[str, frozenset[str]] = {
    "collection.worker": frozenset({"platform_worker_id"}),
    "crowd.assignment": frozenset({"platform_worker_id", "answer"}),
    "crowd.hit": frozenset({"reward"}),
    "crowd.study": frozenset({"reward"}),
    "crowd.payment": frozenset({"amount"}),
    "crowd.auditlog": frozenset({"request", "response", "error"}),
}


def may_see_private(request: HttpRequest) -> bool:
    return request.user.has_perm(PRIVATE_PERMISSION)


def lookup_is_private(model: Any, lookup: str) -> bool:
    """Whether the lookup path (``worker__platform_worker_id__startswith``,
    ``request__BonusAmount``) passes through a private field of any model on its way."""
    opts = model._meta
    for part in lookup.split(LOOKUP_SEP):
        if part in PRIVATE_FIELDS.get(opts.label_lower, ()):
            return True
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return False  # a lookup or transform (startswith, a JSON key) of a field already passed
        if not field.is_relation or field.related_model is None:
            return False
        opts = field.related_model._meta
    return False


def guard_admin_lookups(model_admin: Any) -> None:
    """Make ``model_admin`` refuse (400, Django's ``DisallowedModelAdminLookup``) every lookup
    that reaches a private field, for users without ``access.view_private``. Applied to every
    registered admin in ``CrowdConfig.ready``, so a new admin cannot forget it."""
    if getattr(model_admin, "_private_lookups_guarded", False):
        return
    allowed = model_admin.lookup_allowed

    def lookup_allowed(lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if (request is None or not may_see_private(request)) and lookup_is_private(model_admin.model, lookup):
            return False
        return allowed(lookup, value, request)

    model_admin.lookup_allowed = lookup_allowed
    model_admin._private_lookups_guarded = True


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

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if may_see_private(request):
            return fieldsets
        return [(name, {**options, "fields": self._hide(request, options.get("fields", ()))})
                for name, options in fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._hide(request, super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return self._hide(request, super().get_list_display(request))  # type: ignore[misc]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        fields = super().get_search_fields(request)  # type: ignore[misc]
        if may_see_private(request):
            return list(fields)
        return [f for f in fields if f.split("__")[-1] not in (*self.private_fields, *self.masked_fields)]
