"""Feature importances, weight per signal and partial dependence (Figs. 9-12)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure
from sklearn.inspection import PartialDependenceDisplay


def importance_figure(importances: pd.Series, top: int = 25) -> Figure:
    """Horizontal bars of the ``top`` largest importances (Figs. 10-11)."""
    imp = importances.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7, 0.25 * len(imp) + 1))
    ax = fig.subplots()
    ax.barh(imp.index, imp.to_numpy())
    ax.set_xlabel("importance")
    ax.tick_params(axis="y", labelsize=7)
    return fig


def signal_weight_figure(importances_by_group: Mapping[str, pd.Series]) -> Figure:
    """Total importance per feature group (text/gaze/mouse/both) for each length group (Fig. 9).

    Parameters
    ----------
    importances_by_group : mapping of group label -> importances (index = feature names)
    """
    totals = pd.DataFrame(
        {label: imp.groupby(imp.index.str.split(".").str[0]).sum() for label, imp in importances_by_group.items()}
    ).fillna(0.0)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    totals.T.plot.bar(ax=ax)
    ax.set_ylabel("total importance")
    ax.set_xlabel("")
    return fig


def partial_dependence_figure(model, X: pd.DataFrame, features: Sequence[str]) -> Figure:
    """Partial dependence of P(response 1 preferred) on each feature (Fig. 12)."""
    fig = Figure(figsize=(4 * len(features), 3.5))
    axes = fig.subplots(1, len(features), squeeze=False)[0]
    PartialDependenceDisplay.from_estimator(model, X, list(features), ax=axes)
    return fig
