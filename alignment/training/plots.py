"""Figures of alignment runs as inline SVG strings (matplotlib's object API, no pyplot state).

Pure: lists of dicts in, SVG text out, so the admin embeds them without files or a figure job.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

#: Panels drawn when present in the stored history: (training key, validation key, title). The
#: validation points (``valid/...``, once per epoch on the dataset's validation split) sit on the
#: panel of the training curve they are compared with.
CURVES = (
    ("loss/train", None, "loss"),
    ("loss_nll/train", "valid/nll", "NLL of chosen answers (per token)"),
    ("rewards_train/margins", "valid/reward_margin", "reward margin (chosen − rejected)"),
    ("rewards_train/accuracies", "valid/reward_accuracy", "reward accuracy"),
    ("lr", None, "learning rate"),
)


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: embedded in HTML


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _points(history: Sequence[Mapping[str, float | None]], key: str | None) -> list[tuple[float, float]]:
    return [(row["step"], row[key]) for row in history if key and _finite(row.get(key))]


def training_curves_svg(history: Sequence[Mapping[str, float | None]]) -> str:
    """One small panel per stored curve (loss, NLL, reward margin, reward accuracy, lr) against
    step, with the validation points of each epoch on their panel."""
    return training_overlay_svg({"": history})


def training_overlay_svg(histories: Mapping[str, Sequence[Mapping[str, float | None]]]) -> str:
    """The panels of :func:`training_curves_svg` with several runs overlaid, one colour per run
    (training: line; validation: circles). ``histories`` maps a run's label to its history."""
    panels = [(train, valid, title) for train, valid, title in CURVES
              if any(_points(h, train) or _points(h, valid) for h in histories.values())]
    n = max(len(panels), 1)
    fig = Figure(figsize=(min(3.0 * n, 15), 2.7))
    axes = fig.subplots(1, n, squeeze=False)[0]
    colours = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a"]
    legend = False
    for ax, (train, valid, title) in zip(axes, panels, strict=False):
        for i, (label, history) in enumerate(histories.items()):
            colour = colours[i % len(colours)]
            points = _points(history, train)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colour,
                        marker="." if len(points) < 40 else None, label=f"{label} train".strip())
            checks = _points(history, valid)
            if checks:
                legend = True
                ax.plot([p[0] for p in checks], [p[1] for p in checks], "o", color=colour, markerfacecolor="white",
                        label=f"{label} validation".strip())
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if legend or len(histories) > 1:
        handles, labels = [], []
        for ax in axes:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, fontsize=7, ncols=min(len(labels), 4), loc="lower center",
                   bbox_to_anchor=(0.5, 1.0), frameon=False)
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
