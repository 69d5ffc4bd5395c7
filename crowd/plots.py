"""QC distribution figures (pure: no Django, no I/O): one histogram per metric, thresholds drawn."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - backend first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .qc import RULES  # noqa: E402


def bin_edges(values: np.ndarray, *, max_bins: int = 30) -> np.ndarray:
    """Histogram bin edges of finite ``values`` that exist whatever the spread.

    Why not ``bins=n``: numpy refuses to split a range narrower than ``n`` float steps ("Too many
    bins for data range"), which happens when every task has the same value up to rounding (0.3
    and 0.1 + 0.2, or means of equal figures). A range that small is one value: it gets one bin
    around it, as wide as numpy gives an exactly constant series.
    """
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):
        centre = (lo + hi) / 2
        return np.array([centre - 0.5, centre + 0.5])
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
            ax.hist(values, bins=bin_edges(values), color="#4c72b0", edgecolor="white")
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
