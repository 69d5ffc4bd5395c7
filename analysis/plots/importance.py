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


def signal_weight_table(importances_by_group: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Mean importance PER FEATURE of each signal (rows: text/gaze/mouse/...; columns: length
    groups), and ``n_features`` per signal.

    Why the mean and not the sum: the signals have very different numbers of features (dozens of
    gaze features against a handful of text ones), so a sum ranks signals by how many features
    they have, and read "gaze matters most" beside a table where behaviour barely beats length.
    """
    frames = {}
    sizes = None
    for label, imp in importances_by_group.items():
        signal = imp.index.str.split(".").str[0]
        frames[label] = imp.groupby(signal).mean()
        sizes = imp.groupby(signal).size() if sizes is None else sizes
    table = pd.DataFrame(frames).fillna(0.0)
    table["n_features"] = (sizes if sizes is not None else pd.Series(dtype=int)).reindex(table.index).fillna(0)
    return table


def signal_weight_figure(importances_by_group: Mapping[str, pd.Series]) -> Figure:
    """Mean impurity importance per feature of each signal (text/gaze/mouse/both), for each
    length group (Fig. 9, normalised by the number of features of the signal; see
    :func:`signal_weight_table`)."""
    table = signal_weight_table(importances_by_group)
    sizes = table.pop("n_features").astype(int)
    table.index = [f"{signal}\n({n} features)" for signal, n in sizes.items()]
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    table.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("mean importance per feature (MDI)")
    ax.set_xlabel("")
    ax.set_title("Weight per feature of each signal, by answer-length group\n"
                 "(sum of impurity importances ÷ features in the signal; all labelled pairs, in-sample)",
                 fontsize=9)
    ax.legend(title="length group", fontsize=8)
    return fig


def partial_dependence_figure(model, X: pd.DataFrame, features: Sequence[str]) -> Figure:
    """Partial dependence of P(response 1 preferred) on each feature (Fig. 12)."""
    fig = Figure(figsize=(4 * len(features), 3.5))
    axes = fig.subplots(1, len(features), squeeze=False)[0]
    PartialDependenceDisplay.from_estimator(model, X, list(features), ax=axes)
    return fig
