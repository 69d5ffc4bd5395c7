"""Take a withdrawn participant's identifiers out of stored text and JSON (pure: no Django).

A withdrawal deletes the rows of record, but results built from them copy identifiers into
free-form fields: a transfer reward run lists its training and test workers by pseudonym
(``params["train_workers"]``), its report names the workers it found no features for, a study
plan or a leaderboard may carry per-worker tables, an import run's problems name a worker, a job's
params or result name the worker it ran for. Those rows are the lab's results and stay; only the
identifiers go. ``crowd.services.withdrawal`` finds the rows in the database and calls
:func:`scrub` on each field.

What changes, and why:

* a string equal to an identifier inside a list is *removed* (a worker list then names the workers
  that are left, so a rebuild "with the same settings" runs on them without a dangling name);
* a dictionary key equal to an identifier becomes ``"withdrawn"`` (``"withdrawn-2"`` … when taken),
  keeping the table's other rows and its shape;
* any other occurrence, alone or inside text (a table, an SVG label, a message), becomes
  ``"withdrawn"``. Matching is on whole tokens (not inside a longer id), so ``w12`` does not
  touch ``w123``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: What an identifier is replaced by (the same word frozen selections use).
WITHDRAWN = "withdrawn"

_EDGE = r"A-Za-z0-9_\-"


def pattern(needles: Iterable[str]) -> re.Pattern[str] | None:
    """One regular expression matching any of ``needles`` as a whole token (None: nothing to find)."""
    words = sorted({n for n in needles if n}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(rf"(?<![{_EDGE}])(?:{'|'.join(map(re.escape, words))})(?![{_EDGE}])")


def scrub(value: Any, found: re.Pattern[str]) -> tuple[Any, bool]:
    """``value`` without the identifiers ``found`` matches, and whether anything changed."""
    if isinstance(value, str):
        new = found.sub(WITHDRAWN, value)
        return new, new != value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        new_bytes = re.sub(found.pattern.encode(), WITHDRAWN.encode(), raw)
        return new_bytes, new_bytes != raw
    if isinstance(value, list | tuple):
        out, changed = [], False
        for item in value:
            if isinstance(item, str) and found.fullmatch(item):
                changed = True
                continue
            new, did = scrub(item, found)
            out.append(new)
            changed |= did
        return (out if isinstance(value, list) else tuple(out)), changed
    if isinstance(value, dict):
        out_map: dict[Any, Any] = {}
        changed = False
        for key, item in value.items():
            new_key = key
            if isinstance(key, str) and found.search(key):
                new_key = found.sub(WITHDRAWN, key)
                n = 2
                while new_key in value or new_key in out_map:
                    new_key = f"{found.sub(WITHDRAWN, key)}-{n}"
                    n += 1
                changed = True
            new, did = scrub(item, found)
            out_map[new_key] = new
            changed |= did
        return out_map, changed
    return value, False


def mentions(value: Any, found: re.Pattern[str]) -> bool:
    """Whether ``value`` (text, bytes, or JSON of any depth) holds one of the identifiers."""
    return scrub(value, found)[1]
