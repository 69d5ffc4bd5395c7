"""Figures of alignment runs as inline SVG strings (matplotlib's object API, no pyplot state).

Pure: lists of dicts in, SVG text out, so the admin embeds them without files or a figure job.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

#: Curves drawn when present in the stored history, (key, panel title).
CURVES = (
    ("loss/train", "loss"),
    ("rewards_train/margins", "reward margin (chosen − rejected)"),
    ("rewards_train/accuracies", "reward accuracy"),
    ("lr", "learning rate"),
)


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: embedded in HTML


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def training_curves_svg(history: Sequence[Mapping[str, float | None]]) -> str:
    """One small panel per stored curve (loss, reward margin, reward accuracy, lr) against step."""
    panels = [(key, title) for key, title in CURVES if any(_finite(row.get(key)) for row in history)]
    fig = Figure(figsize=(3.4 * max(len(panels), 1), 2.6))
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, (key, title) in zip(axes, panels, strict=False):
        points = [(row["step"], row[key]) for row in history if _finite(row.get(key))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 40 else None)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def win_tie_loss_svg(table: Sequence[Mapping[str, object]]) -> str:
    """Stacked horizontal bars of aligned-win / tie / SFT-win shares, one bar per Table 3 row."""
    rows = [r for r in table if _finite(r.get("dpo_win_share"))]
    labels = [f"{r.get('breakdown')}: {r.get('group')} (n={r.get('n')})" for r in rows]
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.1))
    ax = fig.subplots()
    left = [0.0] * len(rows)
    for key, name, color in (("dpo_win_share", "aligned wins", "#2e7d32"), ("tie_share", "tie", "#9e9e9e"),
                             ("sft_win_share", "SFT wins", "#c62828")):
        values = [float(r.get(key) or 0.0) for r in rows]
        ax.barh(labels, values, left=left, color=color, label=name)
        for i, v in enumerate(values):
            if v >= 0.08:
                ax.text(left[i] + v / 2, i, f"{v:.0%}", ha="center", va="center", fontsize=7, color="white")
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of test queries", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return _svg(fig)
