"""Trajectory samples as columns, and the compact binary chunk they are stored in.

Why chunks instead of one database row per sample: the release alone has ~7-10 M samples and a
live study adds ~20 k per worker-hour. Analysis always reads *all* samples of one task at once,
never a single sample, so we store each task's samples as a few column-oriented blocks (Apache
Arrow IPC, zstd-compressed) in one table.  Importing the dev release is then a few hundred large
INSERTs instead of millions of rows, scanning one task is one indexed read, and the database stays
about 10x smaller than a narrow table with per-row overhead.  What SQL loses (filtering single
samples) is never needed: per-chunk metadata (counts, time span per stream) answers the admin's
questions without decoding.

A sample row has the union of the fields of the release's files and what the site adds:

* ``signal``: ``gaze`` or ``mouse``;
* ``frame``: ``abs`` (viewport coordinates, the release's ``abs_*.csv``), ``box1`` (the
  single response box, or the left box in pairwise) or ``box2`` (the right box);
* ``x``, ``y``: CSS pixels; in a box frame relative to the box's top-left plus its scroll
  offset, and ``-1, -1`` means the point was outside that box;
* ``snippet``: text around the point (null: no text under the point / outside);
* ``char_index``: offset in the stored response text under the point (null when none);
* ``page_timer_ms``: ``performance.now()`` of the page (restarts on reload);
* ``head_in_box``: WebGazer's head-position flag (null in older release files);
* ``epoch_ms``: client wall-clock time;
* ``row``: position of the row in its source file/batch (keeps original order);
* site-only fields (null for imported data): ``turn_id``, ``viewport_w``, ``viewport_h``,
  ``box_left``, ``box_top``, ``box_width``, ``box_height``, ``scroll_left``, ``scroll_top``,
  ``received_ms`` (server receive time) and ``no_face`` (the tracker saw no face).

This module is pure (no Django) so notebooks can decode chunks too.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa

SIGNALS = ("gaze", "mouse")
PAIRWISE, POINTWISE = "pairwise", "pointwise"


def mode_of(model_2: object) -> str:
    """The one rule for "is this pairwise": a turn (or task) that names a second model.

    Used by the release reader, ``Turn.mode`` and ``Task.effective_mode``; everything else reads
    the ``mode`` they give rather than looking at answers or names again.
    """
    return PAIRWISE if isinstance(model_2, str) and model_2.strip() else POINTWISE

FRAMES = ("abs", "box1", "box2")

#: Arrow schema of one trajectory block.  Categorical columns are dictionary encoded.
SCHEMA = pa.schema(
    [
        ("signal", pa.dictionary(pa.int8(), pa.string())),
        ("frame", pa.dictionary(pa.int8(), pa.string())),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("snippet", pa.string()),
        ("char_index", pa.int32()),
        ("page_timer_ms", pa.float64()),
        ("head_in_box", pa.int8()),
        ("epoch_ms", pa.int64()),
        ("row", pa.int32()),
        ("turn_id", pa.int64()),
        ("viewport_w", pa.int32()),
        ("viewport_h", pa.int32()),
        ("box_left", pa.float32()),
        ("box_top", pa.float32()),
        ("box_width", pa.float32()),
        ("box_height", pa.float32()),
        ("scroll_left", pa.float32()),
        ("scroll_top", pa.float32()),
        ("received_ms", pa.int64()),
        ("no_face", pa.bool_()),
    ]
)
COLUMNS = tuple(SCHEMA.names)
#: Columns the server fills in; every other column is sent by the browser's logger
#: (``static/collection/js/logger/queue.mjs`` lists them, a test holds that list to this one).
SERVER_COLUMNS = ("row", "received_ms")
BROWSER_COLUMNS = tuple(c for c in COLUMNS if c not in SERVER_COLUMNS)

def _pandas_dtype(arrow: pa.DataType) -> str:
    """The pandas dtype a column of Arrow type ``arrow`` decodes to: nullable integers and
    booleans, so that a missing value stays missing instead of turning an integer into a float."""
    if pa.types.is_dictionary(arrow):
        return "category"
    if pa.types.is_string(arrow):
        return "object"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_integer(arrow):
        return f"Int{arrow.bit_width}"
    if pa.types.is_float64(arrow):
        return "float64"  # coordinates and timers: NaN is their missing value already
    if pa.types.is_floating(arrow):
        return f"Float{arrow.bit_width}"
    raise TypeError(f"no pandas dtype for {arrow}")


#: pandas dtypes used when a block is decoded, derived from :data:`SCHEMA`.
PANDAS_DTYPES: dict[str, str] = {f.name: _pandas_dtype(f.type) for f in SCHEMA}
#: Numeric columns by kind, for parsers of text files (the release reader).
INTEGER_COLUMNS = tuple(f.name for f in SCHEMA if pa.types.is_integer(f.type))
FLOAT_COLUMNS = tuple(f.name for f in SCHEMA if pa.types.is_floating(f.type))


def empty_frame() -> pd.DataFrame:
    """An empty sample table with every column and the right dtypes."""
    return conform(pd.DataFrame({c: [] for c in COLUMNS}))


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with exactly :data:`COLUMNS` (missing ones all-null) and their dtypes."""
    out = {}
    n = len(df)
    for col in COLUMNS:
        if col in df.columns:
            s = df[col]
        else:
            s = pd.Series([None] * n, index=df.index, dtype="object")
        dtype = PANDAS_DTYPES[col]
        if dtype == "category":
            s = s.astype("category")
        elif dtype == "object":
            s = _object_with_none(s)
        else:
            s = s.astype(dtype)
        out[col] = s
    return pd.DataFrame(out, index=df.index)


def _object_with_none(s: pd.Series) -> pd.Series:
    """Object column whose missing values are ``None`` (pandas 3 would otherwise use NaN)."""
    values = s.to_numpy(dtype=object, copy=True)
    values[s.isna().to_numpy()] = None
    return pd.Series(values, index=s.index, dtype=object)


def encode_block(df: pd.DataFrame) -> bytes:
    """Serialise a sample table to zstd-compressed Arrow IPC bytes."""
    df = conform(df).reset_index(drop=True)
    arrays = []
    for field in SCHEMA:
        s = df[field.name]
        if pa.types.is_dictionary(field.type):
            arr = pa.array(_object_with_none(s), type=pa.string())
            arr = arr.dictionary_encode().cast(field.type)
        else:
            arr = pa.array(s, type=field.type, from_pandas=True)
        arrays.append(arr)
    table = pa.Table.from_arrays(arrays, schema=SCHEMA)
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, SCHEMA, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def decode_block(data: bytes | memoryview) -> pd.DataFrame:
    """Inverse of :func:`encode_block`."""
    with pa.ipc.open_stream(pa.BufferReader(bytes(data))) as reader:
        table = reader.read_all()
    return _to_pandas(table)


def decode_blocks(blocks: list[bytes | memoryview]) -> pd.DataFrame:
    """Decode and concatenate several blocks in the given order (one Arrow concat, one copy)."""
    if not blocks:
        return empty_frame()
    tables = []
    for data in blocks:
        with pa.ipc.open_stream(pa.BufferReader(bytes(data))) as reader:
            tables.append(reader.read_all())
    table = pa.concat_tables(tables).unify_dictionaries()
    return _to_pandas(table)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas(types_mapper=_types_mapper)
    return conform(df)


def _types_mapper(arrow_type: pa.DataType):
    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return mapping.get(arrow_type)


def stream_summary(df: pd.DataFrame) -> dict[str, dict[str, int | None]]:
    """Per ``signal/frame`` stream: sample count and first/last ``epoch_ms``.

    Stored next to every chunk so the admin can show counts and time spans without decoding.
    """
    out: dict[str, dict[str, int | None]] = {}
    if df.empty:
        return out
    grouped = df.groupby(["signal", "frame"], observed=True)["epoch_ms"]
    for (signal, frame), s in grouped:
        valid = s.dropna()
        out[f"{signal}/{frame}"] = {
            "count": int(len(s)),
            "first_ms": int(valid.min()) if len(valid) else None,
            "last_ms": int(valid.max()) if len(valid) else None,
        }
    return out
