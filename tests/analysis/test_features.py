"""Feature definitions on hand-made samples with known answers, and the table on the mini release."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.features import FeatureConfig, build_feature_table, feature_columns, quality_filter
from analysis.features.cache import data_version, load_cached, samples_fingerprint, save_cached
from analysis.features.extract import side_features
from analysis.features.primitives import eps_ratio, smoothed_time, window_means
from collection.release import reader
from tests.support.paths import MINI


def test_one_second_smoothing() -> None:
    # [0,1] U [0.5,1.5] U [3,4] = 1.5 + 1 = 2.5 s
    assert smoothed_time(np.array([0.0, 0.5, 3.0]), 0.0, 10.0, 1.0) == pytest.approx(2.5)
    # clipped to the span end
    assert smoothed_time(np.array([9.5]), 0.0, 10.0, 1.0) == pytest.approx(0.5)
    assert smoothed_time(np.array([]), 0.0, 10.0, 1.0) == 0.0


def test_empty_windows_are_nan_not_zero() -> None:
    means = window_means(np.array([0.1, 0.2, 9.9]), np.array([0.0, 10.0, 50.0]), 0.0, 10.0, 4)
    assert means[0] == pytest.approx(5.0)
    assert np.isnan(means[1]) and np.isnan(means[2])
    assert means[3] == pytest.approx(50.0)


def test_eps_ratio() -> None:
    assert eps_ratio(0.0, 0.0, 1.0) == pytest.approx(1.0)
    assert eps_ratio(3.0, 1.0, 1.0) == pytest.approx(2.0)


def test_side_features_known_answers() -> None:
    t = np.array([0.0, 0.5, 1.0, 5.0, 6.0])
    in_box = np.array([True, True, False, True, False])
    char = np.array([10.0, 40.0, np.nan, 20.0, np.nan])
    f = side_features(t, in_box, char, 100, (0.0, 6.0), (0.0, 5.0), FeatureConfig(n_windows=2))
    assert f["max_char"] == 40 and f["norm_max_char"] == pytest.approx(0.4)
    assert f["total_records"] == 5 and f["total_points"] == 3 and f["reviewing_points"] == 3
    assert f["total_norm_points"] == pytest.approx(0.6)
    # [0,1.5] and [5,6] -> 2.5 s in the turn (span end + 1 s smoothing)
    assert f["total_time"] == pytest.approx(2.5)
    assert f["reviewing_time"] == pytest.approx(2.5)
    assert f["reviewing_norm_time"] == pytest.approx(2.5 / 6.0)
    assert f["mean_norm_char"] == pytest.approx((0.1 + 0.4 + 0.2) / 3)
    assert f["win_00"] == pytest.approx(25.0) and f["win_01"] == pytest.approx(20.0)


@pytest.fixture(scope="module")
def mini_table():
    tables = reader.read_release_tables(MINI)
    tasks = []
    for worker, task_id, folder in reader.iter_task_dirs(MINI):
        tr = reader.read_task_trajectories(folder)
        tasks.append(((worker, task_id), tr.mode, tr.samples))
    return tables, tasks, build_feature_table(tables.queries, tasks)


def test_feature_table_on_mini(mini_table) -> None:
    tables, tasks, ft = mini_table
    f = ft.features
    assert set(f["query_id"]) == set(tables.queries["query_id"])
    cols = feature_columns(f)
    for name in ("text.query_length", "gaze.max_char.1", "mouse.reviewing_time.2", "gaze.win_19.1",
                 "gaze.reviewing_time.ratio", "both.gaze_mouse_ratio.1", "gaze.max_char.cmp"):
        assert name in cols
    pw = f[f["mode"] == "pairwise"]
    assert pw["gaze.head_ratio"].dropna().between(0, 1).all() and pw["gaze.head_ratio"].notna().any()
    # reviewing features are per turn: not all equal within a task (the original's bug)
    per_task = pw.groupby("task_id")["gaze.reviewing_time.1"].nunique()
    assert (per_task > 1).all()
    # pointwise side 2 is the previous turn's side 1
    pt = f[f["mode"] == "pointwise"].sort_values(["task_id", "turn_index"])
    for _, task in pt.groupby("task_id"):
        assert np.isnan(task["gaze.reviewing_time.2"].iloc[0])
        np.testing.assert_allclose(task["gaze.reviewing_time.2"].iloc[1:], task["gaze.reviewing_time.1"].iloc[:-1])
    q = ft.quality
    assert q["gaze_in_response"].between(0, 1).all() and q["max_index_score"].between(0, 1).all()
    assert quality_filter(q).dtype == bool
    assert ft.match_report["response"] > 0


def test_cache_roundtrip_and_key(mini_table, tmp_path) -> None:
    tables, tasks, ft = mini_table
    prints = [(key, samples_fingerprint(s)) for key, _, s in tasks]
    v1 = data_version(tables.queries, prints)
    assert v1 == data_version(tables.queries, prints)
    assert v1 != data_version(tables.queries, prints, feature_config=FeatureConfig(n_windows=10))
    assert load_cached(tmp_path, v1) is None
    save_cached(ft.features, tmp_path, v1)
    back = load_cached(tmp_path, v1)
    pd.testing.assert_frame_equal(back[feature_columns(back)], ft.features[feature_columns(ft.features)])
