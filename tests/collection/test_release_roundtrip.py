"""The pure release reader/writer: quirks, and read -> write gives the input back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from collection.release import reader, schema, writer
from tests.support.paths import MINI

from .release_compare import table_differences, trajectory_differences


@pytest.fixture(scope="module")
def mini() -> Path:
    assert MINI.is_dir(), f"release sample not found at {MINI}"
    return MINI


def test_tables_are_typed_and_labels_explicit(mini: Path) -> None:
    tables = reader.read_release_tables(mini)
    q = tables.queries
    assert len(q) == 28
    pairwise = q[q["mode"] == "pairwise"]
    pointwise = q[q["mode"] == "pointwise"]
    assert len(pairwise) == 16 and len(pointwise) == 12
    # "1.0"/"2.0" must become 1/2, never 0 (the original pipeline's int("1.0") bug)
    raw = pd.read_csv(mini / "query_logs_table.csv", dtype=str, keep_default_na=False)
    raw = raw.set_index("query_ID")
    for _, row in pairwise.iterrows():
        value = raw.loc[str(row["query_id"]), "preference"]
        assert (pd.isna(row["preferred"]) and value == "") or row["preferred"] == int(float(value))
    assert set(pairwise["preferred"].dropna()) == {1, 2}
    assert pointwise["preferred"].isna().all()
    assert pairwise["better_than_previous"].isna().all()


def test_value_parsers() -> None:
    assert reader.parse_int("4.0") == 4
    assert reader.parse_int("") is None
    with pytest.raises(ValueError):
        reader.parse_int("4.5")
    assert reader.parse_timestamp("0000-00-00 00:00:00") is None
    assert reader.split_error("AI Error. Please report ...") == ("", "AI Error. Please report ...")
    assert reader.split_error("Fine answer") == ("Fine answer", "")


def test_rel_line_with_commas_and_quotes_in_snippet(tmp_path: Path) -> None:
    path = tmp_path / "rel_gaze.csv"
    path.write_text(
        '1.5,2,"a, b "c", d",12,100.5,1,1700000000000\n'
        "-1,-1,,,101,0,1700000000100\n"
        '3,4,"",7,102,1,1700000000200\n'
        "3,4,9,8,103,1,1700000000300\n"
        "oops,4,,,104,1,1700000000400\n"
    )
    problems: list[reader.Problem] = []
    df, ncols = reader.read_rel_file(path, problems)
    assert ncols == 7
    assert list(df["snippet"]) == ['a, b "c", d', None, "", "9"]
    assert list(df["char_index"].astype(object)) == [12, pd.NA, 7, 8]
    assert len(problems) == 1 and problems[0].line == 5 and "rel_gaze.csv" in problems[0].path


def test_unquoted_snippets_are_recorded_and_written_back_unquoted(tmp_path: Path) -> None:
    """A snippet the release wrote without quotes (``9``) is remembered by line and the writer
    writes that line the same way, so read -> write gives the file back byte for byte."""
    text = (
        '1.5,2,"a b",12,100.5,1,1700000000000\n'
        "3,4,9,8,103,1,1700000000300\n"
        '5,6,"9",8,104,1,1700000000400\n'
    )
    src = tmp_path / "rel_gaze.csv"
    src.write_text(text)
    unquoted: list[int] = []
    df, ncols = reader.read_rel_file(src, [], unquoted)
    assert unquoted == [1]
    assert list(df["snippet"]) == ["a b", "9", "9"]
    name = "rel_gaze.csv"
    signal, frame = reader.POINTWISE_FILES[name]
    samples = df.assign(signal=signal, frame=frame)
    out = tmp_path / "out"
    writer.write_task_trajectories(out, samples, mode="pointwise", rel_columns={name: ncols},
                                  unquoted={name: unquoted})
    assert (out / name).read_text() == text


def test_six_column_rel_files_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "rel_mouse.csv"
    path.write_text('10,20,"abc",3,55.5,1700000000000\n-1,-1,,,56,1700000000001\n')
    df, ncols = reader.read_rel_file(path, [])
    assert ncols == 6
    assert df["head_in_box"].isna().all()
    assert list(df["epoch_ms"]) == [1700000000000, 1700000000001]


def test_block_codec_roundtrip(mini: Path) -> None:
    folder = next(d for _, _, d in reader.iter_task_dirs(mini))
    samples = reader.read_task_trajectories(folder).samples
    back = schema.decode_block(schema.encode_block(samples))
    pd.testing.assert_frame_equal(back, samples, check_categorical=False)
    half = len(samples) // 2
    two = schema.decode_blocks(
        [schema.encode_block(samples.iloc[:half]), schema.encode_block(samples.iloc[half:])]
    )
    pd.testing.assert_frame_equal(two, samples, check_categorical=False)


def test_pairwise_abs_gaze_duplicates_dropped(mini: Path) -> None:
    for _, _, folder in reader.iter_task_dirs(mini):
        if reader.task_mode(folder) != "pairwise":
            continue
        tt = reader.read_task_trajectories(folder)
        n_abs = ((tt.samples["signal"] == "gaze") & (tt.samples["frame"] == "abs")).sum()
        n_rel = ((tt.samples["signal"] == "gaze") & (tt.samples["frame"] == "box1")).sum()
        lines = (folder / "abs_gaze.csv").read_text().splitlines()
        assert tt.duplicates_dropped == len(lines) - len(set(lines)) > 0
        assert n_abs == n_rel


def test_read_then_write_reproduces_release(mini: Path, tmp_path: Path) -> None:
    tables = reader.read_release_tables(mini)
    writer.write_tables(tmp_path, workers=tables.workers, tasks=tables.tasks, queries=tables.queries)
    for worker, task_id, folder in reader.iter_task_dirs(mini):
        tt = reader.read_task_trajectories(folder)
        writer.write_task_trajectories(
            tmp_path / "user_behavior" / worker / str(task_id),
            tt.samples,
            mode=tt.mode,
            rel_columns=tt.rel_columns,
            unquoted=tt.unquoted,
        )
    assert table_differences(mini, tmp_path) == []
    assert trajectory_differences(mini, tmp_path) == []
