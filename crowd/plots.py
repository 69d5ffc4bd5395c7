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


def qc_histograms(table: pd.DataFrame, thresholds: Mapping[str, float | None], *, title: str = "") -> Figure:
    """Histograms of every QC metric of ``table`` (one row per task or worker).

    A dashed red line marks each active threshold; the panel title says how many rows fail it.
    """
    rules = [r for r in RULES if r.metric in table.columns]
    ncols = 3
    nrows = max(1, int(np.ceil(len(rules) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, rule in zip(axes.flat, rules, strict=False):
        values = pd.to_numeric(table[rule.metric], errors="coerce").dropna().to_numpy()
        limit = thresholds.get(rule.name)
        label = rule.label
        if len(values):
            ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="#4c72b0", edgecolor="white")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        if limit is not None and not (isinstance(limit, float) and np.isnan(limit)):
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
