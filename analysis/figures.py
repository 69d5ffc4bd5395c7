"""The behaviour and feature-importance figures of paper section 4 / appendix A.3, without Django.

``analysis.services.figures_render`` feeds these from the database and stores the result; a
notebook feeds them from a release folder (``analysis.pipeline.load_release``). Each function
returns ``(name, title, matplotlib figure)`` triples; :func:`png_svg` renders one figure.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from analysis.pipeline import labelled_set
from analysis.plots import behaviour, importance

#: (name, title, figure) of one rendered figure.
Figure = tuple[str, str, Any]


def png_svg(fig: Any) -> tuple[bytes, str]:
    """PNG bytes and SVG text of a matplotlib figure (the admin shows PNG, offers SVG)."""
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    return png.getvalue(), svg.getvalue()


def behaviour_figures(matches: list, turns: pd.DataFrame) -> list[Figure]:
    """Reading position, heatmaps, position distributions, clusters and gaze-mouse correlation."""
    points = behaviour.trajectory_points(matches, turns)
    figures: list[Figure] = []
    if points.empty:
        return figures
    for signal in ("gaze", "mouse"):
        figures.append((f"reading_position_length_{signal}", f"Reading position by length ({signal})",
                        behaviour.reading_position(points, "length", signal=signal)))
        figures.append((f"reading_position_side_{signal}", f"Reading position by side ({signal})",
                        behaviour.reading_position(points, "side", signal=signal)))
        figures.append((f"heatmap_{signal}", f"Per-character heatmap ({signal})",
                        behaviour.reading_heatmap(points, signal=signal)))
        figures.append((f"positions_{signal}", f"Position distributions ({signal})",
                        behaviour.position_distributions(points, "length", signal=signal)))
    matrix = behaviour.trajectory_matrix(points)
    if len(matrix) >= 6:
        _, _, fig = behaviour.cluster_trajectories(matrix, n_clusters=min(6, len(matrix) // 2))
        figures.append(("clusters", "Trajectory clusters (BisectingKMeans centres)", fig))
    _, fig = behaviour.gaze_mouse_correlation(points)
    figures.append(("gaze_mouse_correlation", "Gaze-mouse correlation", fig))
    return figures


def importance_figures(features: pd.DataFrame, queries: pd.DataFrame) -> list[Figure]:
    """Random-forest importances over every pairwise row, per-length-group signal weights and the
    partial dependence of the top three features.

    Fitted on all labelled pairs (no held-out fold): these figures describe the data, they do not
    estimate accuracy. Fewer than 20 labelled pairs make no figure.
    """
    pairs = labelled_set(features, queries, "pairwise")
    if len(pairs.y) < 20:
        return []
    X, y = pairs.X.fillna(-1.0), pairs.y
    forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=5, random_state=0, n_jobs=2).fit(X, y)
    imp = pd.Series(forest.feature_importances_, index=X.columns)
    figures: list[Figure] = [
        ("importances", "Feature importances (RF, all features)", importance.importance_figure(imp))
    ]
    lengths = pairs.X.filter(like="text.response_length").sum(axis=1)
    cuts = np.nanquantile(lengths, [1 / 3, 2 / 3])
    by_group = {}
    for name, mask in (("short", lengths <= cuts[0]), ("medium", (lengths > cuts[0]) & (lengths <= cuts[1])),
                       ("long", lengths > cuts[1])):
        if mask.sum() >= 10 and y[mask].nunique() == 2:
            f = RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=0, n_jobs=2)
            by_group[name] = pd.Series(f.fit(X[mask], y[mask]).feature_importances_, index=X.columns)
    if by_group:
        figures.append(("signal_weight", "Weight per feature of each signal by length group (mean, not sum)",
                        importance.signal_weight_figure(by_group)))
    top = list(imp.sort_values(ascending=False).index[:3])
    figures.append(("partial_dependence", "Partial dependence of the top features",
                    importance.partial_dependence_figure(forest, X, top)))
    return figures
