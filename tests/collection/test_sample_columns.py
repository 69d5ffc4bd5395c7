"""The sample columns are defined once, in ``collection.release.schema``; the browser's logger and
the batch serializer follow it."""

from __future__ import annotations

import re
from pathlib import Path

from collection.release.schema import BROWSER_COLUMNS, COLUMNS, SERVER_COLUMNS
from collection.serializers import SampleColumnsSerializer, worst_sample_row

QUEUE = Path(__file__).resolve().parents[2] / "static" / "collection" / "js" / "logger" / "queue.mjs"


def _js_columns(source: str) -> list[str]:
    block = re.search(r"export const COLUMNS = \[(.*?)\];", source, re.S)
    assert block, "queue.mjs no longer exports COLUMNS"
    return re.findall(r"'([a-z_0-9]+)'", block.group(1))


def test_browser_logger_sends_the_schema_columns_in_order() -> None:
    assert _js_columns(QUEUE.read_text()) == list(BROWSER_COLUMNS)


def test_js_list_parser_sees_a_change() -> None:
    assert _js_columns("export const COLUMNS = [\n  'signal', 'x',\n];") == ["signal", "x"]


def test_serializer_fields_are_the_browser_columns() -> None:
    assert list(SampleColumnsSerializer().fields) == list(BROWSER_COLUMNS)
    assert set(BROWSER_COLUMNS) | set(SERVER_COLUMNS) == set(COLUMNS)
    assert list(worst_sample_row()) == list(BROWSER_COLUMNS)  # the body-size bound covers every column
