"""End to end on the mini release: load, match, features, plots (no I/O)."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from analysis import pipeline, plots
from tests.support.paths import MINI


@pytest.fixture(scope="module")
def release():
    return pipeline.load_release(MINI, n_jobs=1)


def test_load_match_and_features(release) -> None:
    assert len(release.tasks) == 8
    matches, report = pipeline.match_all(release.tables.queries, release.samples_by_task())
    assert len(matches) == 8 and report["response"] > 0
    table = pipeline.build_features(release)
    assert len(table.features) == len(release.tables.queries)
    kept = pipeline.apply_quality_filter(table.features, table.quality)
    assert len(kept) <= len(table.features)
    data = pipeline.labelled_set(table.features, release.tables.queries, "pairwise")
    assert set(data.y) <= {0, 1} and len(data.y) == 12  # 16 pairwise queries, 4 unrated


def test_behaviour_plots_return_figures(release) -> None:
    matches, _ = pipeline.match_all(release.tables.queries, release.samples_by_task())
    points = plots.trajectory_points(matches, release.tables.queries)
    assert points["t_norm"].between(0, 1).all()
    assert isinstance(plots.reading_position(points, "length"), Figure)
    assert isinstance(plots.reading_position(points, "side"), Figure)
    assert isinstance(plots.reading_heatmap(points), Figure)
    assert isinstance(plots.position_distributions(points), Figure)
    matrix = plots.trajectory_matrix(points)
    labels, centers, fig = plots.cluster_trajectories(matrix, n_clusters=3)
    assert centers.shape == (3, 20) and len(labels) == len(matrix) and isinstance(fig, Figure)
    per_query, fig = plots.gaze_mouse_correlation(points)
    assert per_query["r"].dropna().between(-1, 1).all() and isinstance(fig, Figure)
