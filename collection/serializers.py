"""Serializer pieces shared by the study APIs: the column-wise sample batch above all.

A batch travels as columns (``{"x": [...], "y": [...], ...}``) rather than a list of objects: the
same field names once instead of per sample, and validation of a whole column at once in C
(pyarrow) instead of a DRF field call per value, which is what lets one server process validate
every field of tens of thousands of samples per second. Errors still name the column and the
first bad position, e.g. ``{"columns": {"x": ["item 17: a number is required"]}}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from collection.release.schema import BROWSER_COLUMNS, FRAMES, SCHEMA, SIGNALS

#: Most samples one batch may carry (a 5 s batch at 100 ms in pairwise has 300; the page seals
#: a batch at 400). The request body limit must hold this many samples: see
#: :func:`batch_body_bytes_bound` and the system check in ``collection.checks``.
MAX_BATCH_SAMPLES = 10_000
MAX_SNIPPET_CHARS = 500
#: Snippet length the body limit is sized for (the page sends 30 characters); batches with longer
#: snippets may exceed the body limit, get a 413, and the page splits them.
SIZED_SNIPPET_CHARS = 64


def worst_sample_row() -> dict[str, Any]:
    """A sample as long as the page can make it: every number at full double precision, and a
    snippet of ``SIZED_SNIPPET_CHARS`` with characters JSON has to escape and non-ASCII ones."""
    number = -123456.78901234567
    snippet = ('"é\\n' * SIZED_SNIPPET_CHARS)[:SIZED_SNIPPET_CHARS]
    return {
        "signal": "mouse", "frame": "box2", "x": number, "y": number, "snippet": snippet,
        "char_index": 9_999_999, "page_timer_ms": 9_999_999_999.123456, "head_in_box": False,
        "epoch_ms": 4_102_444_799_999, "turn_id": 2**62, "viewport_w": 99_999, "viewport_h": 99_999,
        "box_left": number, "box_top": number, "box_width": 123456.78901234567, "box_height": 123456.78901234567,
        "scroll_left": 123456.78901234567, "scroll_top": 123456.78901234567, "no_face": False,
    }


def batch_body_bytes_bound(n_samples: int = MAX_BATCH_SAMPLES) -> int:
    """Bytes of the JSON body of a batch of ``n_samples`` worst-case samples (column layout)."""
    import json

    row = worst_sample_row()
    columns = {k: [v] * n_samples for k, v in row.items()}
    body = {"seq": 2**31 - 1, "idempotency_key": "x" * 100, "columns": columns}
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())

_INFERRED_OK = {
    "float": (pa.types.is_integer, pa.types.is_floating),
    "int": (pa.types.is_integer,),
    "bool": (pa.types.is_boolean,),
    "str": (pa.types.is_string,),
}
_PY_OK = {
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
}
_MESSAGES = {
    "float": _("a number is required"),
    "int": _("an integer is required"),
    "bool": _("true or false is required"),
    "str": _("a string is required"),
}


class ColumnField(serializers.Field):
    """One column of a batch: a JSON list validated as a whole, returned as a ``pyarrow.Array``.

    Parameters: ``kind`` (float/int/bool/str), ``arrow_type`` of the stored column, ``nullable``,
    inclusive ``min_value``/``max_value``, ``choices`` for enumerations, ``max_length`` for strings.
    """

    def __init__(
        self,
        *,
        kind: str,
        arrow_type: pa.DataType,
        nullable: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
        choices: tuple[str, ...] | None = None,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kind, self.arrow_type, self.nullable = kind, arrow_type, nullable
        self.min_value, self.max_value = min_value, max_value
        self.choices, self.max_length = choices, max_length

    def __deepcopy__(self, memo: dict) -> ColumnField:
        # DRF deep-copies every declared field for each serializer instance; the default copy
        # also deep-copies the Arrow type and the choices (immutable), which cost more than
        # validating a 300-sample column. A fresh instance from the same arguments is the copy.
        return self.__class__(*self._args, **self._kwargs)

    def _first_bad(self, values: list[Any], ok: Any) -> int:
        for i, v in enumerate(values):
            if not ok(v):
                return i
        return -1

    def _fail_at(self, i: int, message: Any) -> None:
        raise serializers.ValidationError(f"item {i}: {message}")

    def to_internal_value(self, data: Any) -> pa.Array:
        if not isinstance(data, list):
            raise serializers.ValidationError(_("a list is required"))
        if len(data) > MAX_BATCH_SAMPLES:
            raise serializers.ValidationError(_("too many items"))
        py_ok = _PY_OK[self.kind]
        try:
            arr = pa.array(data)
            type_ok = pa.types.is_null(arr.type) or any(check(arr.type) for check in _INFERRED_OK[self.kind])
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            type_ok = False
        if not type_ok:
            # Slow path only for bad input: find the first offending item to name it.
            i = self._first_bad(data, lambda v: (v is None) or py_ok(v))
            self._fail_at(max(i, 0), _MESSAGES[self.kind])
        if arr.null_count and not self.nullable:
            self._fail_at(self._first_bad(data, lambda v: v is not None), _("may not be null"))
        if self.kind == "float" and pa.types.is_floating(arr.type):
            values = arr.to_numpy(zero_copy_only=False)
            bad = ~np.isfinite(values) & ~np.asarray(arr.is_null())
            if bad.any():
                self._fail_at(int(np.argmax(bad)), _("must be a finite number"))
        if self.kind in ("float", "int") and len(arr) and arr.null_count < len(arr):
            lo, hi = pc.min_max(arr).values()
            if self.min_value is not None and lo.as_py() < self.min_value:
                i = self._first_bad(data, lambda v: v is None or v >= self.min_value)
                self._fail_at(i, _("must be at least %(v)s") % {"v": self.min_value})
            if self.max_value is not None and hi.as_py() > self.max_value:
                i = self._first_bad(data, lambda v: v is None or v <= self.max_value)
                self._fail_at(i, _("must be at most %(v)s") % {"v": self.max_value})
        if self.choices is not None and pa.types.is_string(arr.type):
            # The distinct values are few (2 or 3): one compute call instead of a per-item test.
            if not set(arr.unique().drop_null().to_pylist()) <= set(self.choices):
                i = self._first_bad(data, lambda v: v in self.choices or v is None)
                self._fail_at(i, _("must be one of %(c)s") % {"c": ", ".join(self.choices)})
        if self.max_length is not None and pa.types.is_string(arr.type) and len(arr):
            longest = pc.max(pc.utf8_length(arr)).as_py()
            if longest is not None and longest > self.max_length:
                i = self._first_bad(data, lambda v: v is None or len(v) <= self.max_length)
                self._fail_at(i, _("at most %(n)d characters") % {"n": self.max_length})
        try:
            return arr.cast(self.arrow_type) if not pa.types.is_null(arr.type) else pa.nulls(len(arr), self.arrow_type)
        except pa.ArrowInvalid:
            self._fail_at(0, _("out of range"))
            raise  # unreachable; keeps type checkers quiet

    def to_representation(self, value: Any) -> Any:
        return value


class ColumnFieldExtension(OpenApiSerializerFieldExtension):
    """OpenAPI of a column: an array of the item type, with its bounds and choices."""

    target_class = ColumnField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        f: ColumnField = self.target
        item: dict[str, Any] = {"type": {"float": "number", "int": "integer", "bool": "boolean",
                                         "str": "string"}[f.kind]}
        if f.nullable:
            item["nullable"] = True
        if f.min_value is not None:
            item["minimum"] = f.min_value
        if f.max_value is not None:
            item["maximum"] = f.max_value
        if f.choices is not None:
            item["enum"] = list(f.choices)
        if f.max_length is not None:
            item["maxLength"] = f.max_length
        return {"type": "array", "items": item, "maxItems": MAX_BATCH_SAMPLES}


_COORD = 1e6  # CSS pixels; anything beyond is a bug or an attack, not a screen
_EPOCH_MIN, _EPOCH_MAX = 946_684_800_000, 4_102_444_800_000  # 2000-01-01 .. 2100-01-01


#: How each browser column is validated. Names, order and stored types come from the one sample
#: schema (``collection.release.schema``); a column added there without a rule here fails at import.
_COLUMN_RULES: dict[str, dict[str, Any]] = {
    "signal": {"kind": "str", "choices": SIGNALS},
    "frame": {"kind": "str", "choices": FRAMES},
    "x": {"kind": "float", "nullable": True, "min_value": -_COORD, "max_value": _COORD},
    "y": {"kind": "float", "nullable": True, "min_value": -_COORD, "max_value": _COORD},
    "snippet": {"kind": "str", "nullable": True, "max_length": MAX_SNIPPET_CHARS},
    "char_index": {"kind": "int", "nullable": True, "min_value": 0, "max_value": 10_000_000},
    "page_timer_ms": {"kind": "float", "min_value": 0, "max_value": 1e10},
    "head_in_box": {"kind": "bool", "nullable": True},
    "epoch_ms": {"kind": "int", "min_value": _EPOCH_MIN, "max_value": _EPOCH_MAX},
    "turn_id": {"kind": "int", "nullable": True, "min_value": 1, "max_value": 2**62},
    "viewport_w": {"kind": "int", "min_value": 1, "max_value": 100_000},
    "viewport_h": {"kind": "int", "min_value": 1, "max_value": 100_000},
    "box_left": {"kind": "float", "nullable": True, "min_value": -_COORD, "max_value": _COORD},
    "box_top": {"kind": "float", "nullable": True, "min_value": -_COORD, "max_value": _COORD},
    "box_width": {"kind": "float", "nullable": True, "min_value": 0, "max_value": _COORD},
    "box_height": {"kind": "float", "nullable": True, "min_value": 0, "max_value": _COORD},
    "scroll_left": {"kind": "float", "nullable": True, "min_value": 0, "max_value": _COORD},
    "scroll_top": {"kind": "float", "nullable": True, "min_value": 0, "max_value": _COORD},
    "no_face": {"kind": "bool"},
}
if set(_COLUMN_RULES) != set(BROWSER_COLUMNS):
    raise ImportError(f"sample column rules {sorted(_COLUMN_RULES)} differ from the schema's {BROWSER_COLUMNS}")


def _stored_type(name: str) -> pa.DataType:
    """The column's Arrow type in a stored chunk (a dictionary column is validated as its values)."""
    stored = SCHEMA.field(name).type
    return stored.value_type if pa.types.is_dictionary(stored) else stored


class SampleColumnsSerializer(serializers.Serializer):
    """Every sample field the browser sends (``row`` and ``received_ms`` are set by the server).

    One field per ``BROWSER_COLUMNS`` of the sample schema, in its order.
    """

    def get_fields(self) -> dict[str, ColumnField]:
        return {name: ColumnField(arrow_type=_stored_type(name), **_COLUMN_RULES[name]) for name in BROWSER_COLUMNS}

    def validate(self, attrs: dict[str, pa.Array]) -> dict[str, pa.Array]:
        lengths = {name: len(a) for name, a in attrs.items()}
        n = lengths["signal"]
        uneven = sorted(name for name, k in lengths.items() if k != n)
        if uneven:
            raise serializers.ValidationError({uneven[0]: [_("every column must have %(n)d items") % {"n": n}]})
        if n == 0:
            raise serializers.ValidationError({"signal": [_("a batch needs at least one sample")]})
        return attrs


