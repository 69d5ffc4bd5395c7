"""Figures of reward-model results (Table 2 rows) for the run pages.

Pure: the run's stored result rows (dicts with ``setting``, ``protocol``, ``model``,
``accuracy_mean``/``accuracy_std`` and, when present, ``accuracy_lo``/``accuracy_hi``) in, a
matplotlib Figure or SVG text out.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

#: The length-only model: the baseline every implicit-feedback model must beat.
BASELINE = "RF + Text lengths"
PROTOCOL_COLOURS = {"paper": "#9e9e9e", "grouped": "#1565c0", "ungrouped": "#ef6c00"}


def _num(v: object) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def accuracy_figure(rows: Sequence[Mapping[str, object]], metric: str = "accuracy") -> Figure:
    """Accuracy per model (rows) and protocol (colours), one panel per setting.

    Error bars are the stored interval (``<metric>_lo``/``_hi``) when the run has one, else
    ± the seed-to-seed standard deviation. The length-only baseline is drawn with a hatched
    bar and a dashed line at its grouped accuracy.
    """
    settings = list(dict.fromkeys(str(r["setting"]) for r in rows))
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    protocols = list(dict.fromkeys(str(r["protocol"]) for r in rows))
    fig = Figure(figsize=(5.2 * max(len(settings), 1), 0.42 * len(models) * max(len(protocols), 1) / 2 + 1.6))
    axes = fig.subplots(1, max(len(settings), 1), squeeze=False, sharey=True)[0]
    height = 0.8 / max(len(protocols), 1)
    for ax, setting in zip(axes, settings, strict=False):
        for j, protocol in enumerate(protocols):
            ys, xs, errs = [], [], [[], []]
            for i, model in enumerate(models):
                row = next((r for r in rows if r["setting"] == setting and r["model"] == model
                            and r["protocol"] == protocol), None)
                if row is None:
                    continue
                mean = _num(row.get(f"{metric}_mean"))
                lo, hi = _num(row.get(f"{metric}_lo")), _num(row.get(f"{metric}_hi"))
                if math.isnan(lo) or math.isnan(hi):
                    sd = _num(row.get(f"{metric}_std"))
                    lo, hi = mean - (0 if math.isnan(sd) else sd), mean + (0 if math.isnan(sd) else sd)
                ys.append(i + (j - (len(protocols) - 1) / 2) * height)
                xs.append(mean)
                errs[0].append(mean - lo)
                errs[1].append(hi - mean)
            bars = ax.barh(ys, xs, height=height, xerr=errs, color=PROTOCOL_COLOURS.get(protocol, None),
                           label=protocol, error_kw={"elinewidth": 0.8, "capsize": 2})
            for bar, y in zip(bars, ys, strict=True):
                if models[round(y)] == BASELINE:
                    bar.set_hatch("///")
                    bar.set_edgecolor("black")
        base = next((r for r in rows if r["setting"] == setting and r["model"] == BASELINE
                     and r["protocol"] == "grouped"), None)
        if base is not None:
            ax.axvline(_num(base.get(f"{metric}_mean")), color="black", linestyle="--", linewidth=0.8,
                       label="length-only baseline (grouped)")
        ax.axvline(0.5, color="#c62828", linewidth=0.6, alpha=0.6)
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel(metric, fontsize=8)
        ax.set_xlim(0.3, 1.0)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(models)), [f"{m} (baseline)" if m == BASELINE else m for m in models])
    axes[0].invert_yaxis()
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def svg_text(fig: Figure) -> str:
    """The figure as an ``<svg>`` element to embed in a page."""
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]
