"""Forest plot of a leaderboard: every model's score with its 95 % interval, per vote source."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from analysis.leaderboard import Leaderboard

_COLOURS = {"explicit": "#1f77b4", "implicit": "#d62728", "mixed": "#2ca02c"}


def forest_figure(board: Leaderboard) -> Figure:
    """Left: scores with intervals, one row per model (best explicit first), one marker per source
    (hollow = style-controlled). Right: style coefficients with intervals, when fitted."""
    series = []
    for name, b in board.boards.items():
        series.append((f"{name}", b.raw, "o", _COLOURS.get(name, "k")))
        if b.styled is not None:
            series.append((f"{name}, style-controlled", b.styled, "s", _COLOURS.get(name, "k")))
    order = board.boards["explicit"].raw.table()["model"].tolist() if "explicit" in board.boards else []
    for _, fit, _, _ in series:
        order += [m for m in fit.models if m not in order]
    styled = [(n, b.styled) for n, b in board.boards.items() if b.styled is not None and not b.styled.style.empty]
    ncols = 2 if styled else 1
    fig = Figure(figsize=(10 if styled else 7, 0.22 * len(order) * len(series) + 1.6))
    axes = fig.subplots(1, ncols, squeeze=False, width_ratios=[3, 2][:ncols])[0]
    ax = axes[0]
    step = 0.8 / max(len(series), 1)
    for k, (label, fit, marker, colour) in enumerate(series):
        y, x, lo, hi = [], [], [], []
        for i, m in enumerate(order):
            if m in fit.models:
                j = fit.models.index(m)
                y.append(i - 0.4 + step * (k + 0.5))
                x.append(fit.scores[j])
                lo.append(fit.scores[j] - fit.lower[j])
                hi.append(fit.upper[j] - fit.scores[j])
        hollow = "style" in label
        ax.errorbar(x, y, xerr=[lo, hi], fmt=marker, color=colour, mfc="white" if hollow else colour,
                    capsize=3, label=label)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.invert_yaxis()
    anchor = next(iter(board.boards.values())).raw.anchor
    ax.axvline(board.params.get("anchor_score", 1000), color="0.7", lw=0.8, ls="--")
    ax.set_xlabel(f"score (Elo scale, {anchor} = {board.params.get('anchor_score', 1000):g}); 95% interval")
    ax.legend(fontsize=7, loc="best")
    if styled:
        ax2 = axes[1]
        names = list(styled[0][1].style["covariate"])
        sstep = 0.8 / len(styled)
        for k, (name, fit) in enumerate(styled):
            s = fit.style.set_index("covariate").reindex(names)
            yy = np.arange(len(names)) - 0.4 + sstep * (k + 0.5)
            ax2.errorbar(s["coef"], yy, xerr=[s["coef"] - s["lower"], s["upper"] - s["coef"]], fmt="s",
                         color=_COLOURS.get(name, "k"), mfc="white", capsize=3, label=name)
        ax2.axvline(0, color="0.7", lw=0.8, ls="--")
        ax2.set_yticks(range(len(names)), names, fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("style coefficient (logit, a minus b)")
        ax2.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
