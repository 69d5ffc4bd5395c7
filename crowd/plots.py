"""QC distribution figures (pure: no Django, no I/O): one histogram per metric, thresholds drawn."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .qc import RULES


def is_constant(values: np.ndarray) -> bool:
    """Every value the same up to float rounding."""
    lo, hi = float(values.min()), float(values.max())
    return hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi))


def bin_edges(values: np.ndarray, *, max_bins: int = 30) -> np.ndarray:
    """Histogram bin edges of finite ``values`` that exist whatever the spread.

    Why not ``bins=n``: numpy refuses to split a range narrower than ``n`` float steps ("Too many
    bins for data range"), which happens when every task has the same value up to rounding (0.3
    and 0.1 + 0.2, or means of equal figures). A range that small is one value: it gets one
    narrow bin around it (5 % of the value, at least 0.05), so it reads as one value.
    """
    lo, hi = float(values.min()), float(values.max())
    if is_constant(values):
        centre, half = (lo + hi) / 2, 0.05 * max(abs(lo), abs(hi), 1.0)
        return np.array([centre - half, centre + half])
    n = min(max_bins, max(5, len(values) // 2))
    return np.linspace(lo, hi, n + 1)


def qc_histograms(table: pd.DataFrame, thresholds: Mapping[str, float | None], *, title: str = "") -> Figure:
    """Histograms of every QC metric of ``table`` (one row per task or worker).

    A dashed red line marks each active threshold; the panel title says how many rows fail it.
    Missing, NaN and infinite values are left out (the title counts only measured rows).
    """
    rules = [r for r in RULES if r.metric in table.columns]
    ncols = 3
    nrows = max(1, int(np.ceil(len(rules) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, rule in zip(axes.flat, rules, strict=False):
        values = pd.to_numeric(table[rule.metric], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        values = values[np.isfinite(values)]
        limit = thresholds.get(rule.name)
        label = rule.label
        if len(values):
            constant = is_constant(values)
            # A lone narrow bar far from the threshold would vanish under a white edge.
            ax.hist(values, bins=bin_edges(values), color="#4c72b0", edgecolor="#4c72b0" if constant else "white")
            if constant and len(values) > 1:
                ax.text(0.5, 0.92, f"all {len(values)} equal {values[0]:.4g}", ha="center", va="top",
                        transform=ax.transAxes, fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        if limit is not None and np.isfinite(limit):
            ax.axvline(limit, color="#c44e52", linestyle="--", linewidth=2)
            fails = int((values < limit).sum() if rule.op == "min" else (values > limit).sum())
            label += f"\n{fails} of {len(values)} fail ({'≥' if rule.op == 'min' else '≤'} {limit:g} needed)"
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(rules) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
