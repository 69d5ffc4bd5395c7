"""Figures of reward-model results for the run pages: accuracy and the difference to length-only,
each with its 95 % worker-bootstrap interval.

Pure: interval rows in (dicts with ``setting``, ``model``, a series key such as ``protocol`` or a
run label, ``accuracy``/``acc_lo``/``acc_hi`` and ``diff``/``diff_lo``/``diff_hi``: the rows of a
run's ``report["intervals"]``), a matplotlib Figure or SVG text out.

Why points with whiskers and not bars: a bar's length reads as the quantity, so a bar axis must
start at 0, where every model looks alike; accuracy is read against chance (0.5) and the
length-only model, so the axis starts at chance (lower only if an interval reaches below it) and
the right-hand panel shows the paired difference to length-only around 0, the verdict itself.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from analysis.reward.verdict import LEAKY, LENGTH_BASELINE, ordered_protocols

#: The length-only model: the baseline every implicit-feedback model must beat.
BASELINE = LENGTH_BASELINE
PROTOCOL_COLOURS = {"grouped": "#1565c0", "transfer": "#1565c0", "ungrouped": "#ef6c00", "paper": "#9e9e9e"}
RUN_COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a")


def _num(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else math.nan


def seed_rows_as_intervals(rows: Sequence[Mapping[str, object]]) -> list[dict]:
    """Table 2 rows (``accuracy_mean``) of a run that stored no worker intervals (text reward
    runs, runs made before intervals existed) in the interval-row shape, without intervals."""
    out = []
    for r in rows:
        acc = r.get("accuracy_mean", r.get("accuracy"))
        out.append({"setting": r.get("setting"), "protocol": r.get("protocol"), "model": r.get("model"),
                    "accuracy": acc, "acc_lo": r.get("acc_lo"), "acc_hi": r.get("acc_hi"),
                    "diff": r.get("diff"), "diff_lo": r.get("diff_lo"), "diff_hi": r.get("diff_hi")})
    return out


def interval_figure(rows: Sequence[Mapping[str, object]], *, series: str = "protocol",
                    colours: Mapping[str, str] | None = None) -> Figure:
    """One row of panels per setting: accuracy with its worker interval (left) and the paired
    difference to the length-only model with its interval (right), one marker per ``series``
    value (protocol, or run when comparing runs) and model.

    The leaky paper protocol is drawn with hollow grey markers and labelled so in the legend.
    """
    settings = list(dict.fromkeys(str(r["setting"]) for r in rows)) or [""]
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    values = list(dict.fromkeys(str(r[series]) for r in rows))
    if series == "protocol":
        values = ordered_protocols(values)
    palette = dict(colours or {})
    for i, v in enumerate(values):
        palette.setdefault(v, PROTOCOL_COLOURS.get(v, RUN_COLOURS[i % len(RUN_COLOURS)]) if series == "protocol"
                           else RUN_COLOURS[i % len(RUN_COLOURS)])
    n_models = max(len(models), 1)
    height = 0.8 / max(len(values), 1)
    fig = Figure(figsize=(11, len(settings) * (0.3 * n_models * max(len(values), 1) ** 0.5 + 1.3) + 0.5))
    axes = fig.subplots(len(settings), 2, squeeze=False, sharey=True)
    accs = [_num(r.get(k)) for r in rows for k in ("accuracy", "acc_lo", "acc_hi")]
    accs = [a for a in accs if not math.isnan(a)] or [0.5]
    left = min(0.5, math.floor((min(accs) - 0.01) * 20) / 20)
    right = min(1.0, math.ceil((max(accs) + 0.01) * 20) / 20) + 0.01  # a point at 1.0 stays whole
    diffs = [abs(_num(r.get(k))) for r in rows for k in ("diff", "diff_lo", "diff_hi")]
    span = max([d for d in diffs if not math.isnan(d)] + [0.05]) * 1.1
    for (ax_acc, ax_diff), setting in zip(axes, settings, strict=True):
        for j, value in enumerate(values):
            leaky = series == "protocol" and value in LEAKY
            style = {"color": palette[value], "markerfacecolor": "white" if leaky else palette[value],
                     "elinewidth": 1.2, "capsize": 3, "markersize": 5, "linestyle": "none"}
            label = f"{value} (leaky)" if leaky else value
            for ax, key, lo_key, hi_key in ((ax_acc, "accuracy", "acc_lo", "acc_hi"),
                                            (ax_diff, "diff", "diff_lo", "diff_hi")):
                ys, xs, err = [], [], [[], []]
                for i, model in enumerate(models):
                    row = next((r for r in rows if str(r["setting"]) == setting and str(r["model"]) == model
                                and str(r[series]) == value), None)
                    if row is None or (ax is ax_diff and model == BASELINE):
                        continue
                    x, lo, hi = _num(row.get(key)), _num(row.get(lo_key)), _num(row.get(hi_key))
                    if math.isnan(x):
                        continue
                    ys.append(i + (j - (len(values) - 1) / 2) * height)
                    xs.append(x)
                    err[0].append(0.0 if math.isnan(lo) else x - lo)
                    err[1].append(0.0 if math.isnan(hi) else hi - x)
                if xs:
                    ax.errorbar(xs, ys, xerr=err, marker="s" if leaky else "o", label=label, **style)
        base = next((r for r in rows if str(r["setting"]) == setting and str(r["model"]) == BASELINE
                     and str(r[series]) == values[0]), None)
        if base is not None and not math.isnan(_num(base.get("accuracy"))):
            ax_acc.axvline(_num(base.get("accuracy")), color="black", linestyle="--", linewidth=0.8,
                           label=f"length-only ({values[0]})")
        ax_acc.axvline(0.5, color="#c62828", linewidth=0.8, alpha=0.7, label="chance")
        ax_acc.set_xlim(left, right)
        ax_acc.set_xlabel("accuracy, 95 % interval over workers", fontsize=8)
        ax_acc.set_title(f"{setting}: accuracy", fontsize=9)
        ax_diff.axvline(0.0, color="black", linewidth=0.9)
        ax_diff.set_xlim(-span, span)
        ax_diff.set_xlabel("accuracy minus length-only, paired 95 % interval over workers", fontsize=8)
        ax_diff.set_title(f"{setting}: difference to length-only (right of 0 = better)", fontsize=9)
        for ax in (ax_acc, ax_diff):
            ax.tick_params(labelsize=7)
            ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(models)), [f"{m} (baseline)" if m == BASELINE else m for m in models])
    axes[0][0].set_ylim(len(models) - 0.5, -0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.06 / len(settings), 1, 1))
    return fig


def accuracy_figure(rows: Sequence[Mapping[str, object]]) -> Figure:
    """:func:`interval_figure` of Table 2 rows (seed means) where a run has no worker intervals."""
    return interval_figure(seed_rows_as_intervals(rows))


def svg_text(fig: Figure) -> str:
    """The figure as an ``<svg>`` element to embed in a page."""
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]
