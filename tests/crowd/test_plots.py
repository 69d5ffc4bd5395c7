"""QC histograms draw whatever the figures look like (pure: no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowd import qc
from crowd.plots import bin_edges, qc_histograms


@pytest.mark.parametrize(
    "values",
    [[0.3, 0.1 + 0.2, 0.3], [0.0] * 5, [7.5], [1e12, 1e12 + 1e-3], [0.2, 0.2000000000000001, 0.2]],
    ids=["rounding", "zeros", "single", "huge", "tiny-spread"],
)
def test_same_value_gets_one_bin_around_it(values: list[float]) -> None:
    edges = bin_edges(np.array(values))
    assert len(edges) == 2 and edges[0] < min(values) <= max(values) < edges[1]


def test_spread_values_get_ordinary_bins() -> None:
    values = np.linspace(0, 1, 40)
    edges = bin_edges(values)
    assert len(edges) == 21 and edges[0] == 0 and edges[-1] == 1


def test_histograms_of_constant_nan_and_missing_columns_draw() -> None:
    table = pd.DataFrame({r.metric: [0.3, 0.1 + 0.2, 0.3, 0.3] for r in qc.RULES})
    table["response_score"] = [np.nan, np.inf, None, -np.inf]
    thresholds = {**qc.DEFAULT_THRESHOLDS, "min_response_score": float("inf"), "max_log_gap_s": float("nan")}
    fig = qc_histograms(table, thresholds)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == len(qc.RULES)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no data" in texts and texts.count("no data") == 1  # only the all-missing response score
    assert "all 4 equal 0.3" in texts
