"""The pure scrub of identifiers from stored text and JSON (``crowd/scrub.py``), no database."""

from __future__ import annotations

from crowd.scrub import mentions, pattern, scrub


def test_whole_tokens_only() -> None:
    found = pattern(["w12"])
    assert scrub("w12 and w123 and xw12 and w12.", found) == ("withdrawn and w123 and xw12 and withdrawn.", True)
    assert scrub("w123", found) == ("w123", False)


def test_lists_lose_the_name_dict_keys_are_renamed_values_replaced() -> None:
    found = pattern(["wA", "PID9"])
    value = {"train_workers": ["wA", "wB"], "per_worker": {"wA": 1, "wB": 2, "withdrawn": 0},
             "rows": [{"worker": "wA", "n": 1}], "log": "paid PID9", "n": 3, "none": None}
    new, changed = scrub(value, found)
    assert changed
    assert new == {"train_workers": ["wB"], "per_worker": {"withdrawn-2": 1, "wB": 2, "withdrawn": 0},
                   "rows": [{"worker": "withdrawn", "n": 1}], "log": "paid withdrawn", "n": 3, "none": None}
    assert not mentions(new, found) and mentions(value, found)


def test_nothing_to_find() -> None:
    assert pattern(["", ""]) is None
    found = pattern(["wA"])
    assert scrub({"a": [1, 2.5, True]}, found) == ({"a": [1, 2.5, True]}, False)
    assert scrub(b"<svg>wA</svg>", found) == (b"<svg>withdrawn</svg>", True)
