"""The study planner's figure: the learning curve over workers and the votes a leaderboard needs.

Drawn from the JSON of :meth:`analysis.learning_curve.PlanResult.as_json` (what the job stores),
so the page, the dashboard and ``manage.py analysis_figures`` draw the same picture.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure


def plan_figure(plan: Mapping) -> Figure:
    """Left: the difference to length-only against training workers (observed points with their
    worker-bootstrap intervals, the fitted curve and its band, 0 marked), with both accuracies on
    a second panel. Right: votes needed against the Elo gap. The answer is printed under it."""
    curve = [r for r in plan["curve"] if r["model"] == plan["model"]]
    base = [r for r in plan["curve"] if r["model"] == plan["baseline"]]
    votes = plan.get("votes_needed") or []
    ncols = 3 if votes else 2
    fig = Figure(figsize=(5.2 * ncols, 4.6))
    axes = fig.subplots(1, ncols, squeeze=False)[0]

    ax = axes[0]
    n = [r["n"] for r in curve]
    fit = plan.get("fit", {}).get("diff")
    n_fit = np.asarray(fit["n"] if fit else n, dtype=float)
    if fit:
        ax.fill_between(n_fit, fit["lo"], fit["hi"], color="#1f77b4", alpha=0.15, label="fit, 95 % band")
        ax.plot(n_fit, fit["value"], color="#1f77b4", lw=1.5, label="fit: a − b·n^−c")
    d = np.array([r["diff"] for r in curve])
    ax.errorbar(n, d, yerr=[d - [r["diff_lo"] for r in curve], [r["diff_hi"] for r in curve] - d], fmt="o",
                color="k", capsize=3, label="held-out workers (95 % CI)")
    ax.axhline(0, color="#888", lw=1, ls="--")
    needed = plan.get("workers_needed")
    if needed:
        ax.axvline(needed, color="#2ca02c", lw=1, ls=":", label=f"{needed} workers")
    # the band widens without bound below the observed sizes: scale the axis to the data instead
    lo = min(0.0, min((r["diff_lo"] for r in curve), default=0.0))
    hi = max(0.0, max((r["diff_hi"] for r in curve), default=0.0))
    pad = max(0.02, 0.25 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(max(1.0, min(n) / 2), max(n_fit.max(), 1.3 * (needed or 0)))
    ax.set_xscale("log")
    ax.set_xlabel("training workers")
    ax.set_ylabel(f"accuracy difference, {plan['model']} − length-only")
    ax.set_title("Does behaviour beat answer length?")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[1]
    for rows, name, colour in ((base, plan["baseline"], "#ff7f0e"), (curve, plan["model"], "#1f77b4")):
        acc = np.array([r["accuracy"] for r in rows])
        ax.errorbar([r["n"] for r in rows], acc,
                    yerr=[acc - [r["acc_lo"] for r in rows], [r["acc_hi"] for r in rows] - acc],
                    fmt="o-", color=colour, capsize=3, label=name)
        key = f"{name}:accuracy"
        if key in plan.get("fit", {}):
            f = plan["fit"][key]
            ax.plot(f["n"], f["value"], color=colour, lw=1, ls="--", alpha=0.7)
    ax.axhline(0.5, color="#888", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_ylim(0.45, max(0.75, max((r["acc_hi"] for r in plan["curve"]), default=0.75) + 0.02))
    ax.set_xlabel("training workers")
    ax.set_ylabel("accuracy on held-out workers")
    ax.set_title("Accuracy (dashed: fitted curves)")
    ax.legend(fontsize=8, loc="lower right")

    if votes:
        ax = axes[2]
        gaps = [v["gap"] for v in votes]
        ax.plot(gaps, [v["votes"] for v in votes], "o-", label="votes between the two models")
        ax.plot(gaps, [v["workers"] for v in votes], "s--", label="workers (all models, as observed)")
        ax.set_yscale("log")
        ax.set_xlabel("true Elo gap")
        ax.set_ylabel("needed for 95 % intervals apart (80 % power)")
        ax.set_title("Leaderboard: votes needed")
        ax.legend(fontsize=8)
    sentence = plan.get("workers_needed_detail", {}).get("sentence", "")
    fig.text(0.01, 0.01, textwrap.fill(sentence, 40 * ncols), fontsize=9, va="bottom")
    fig.subplots_adjust(bottom=0.28, wspace=0.3, left=0.07, right=0.98)
    return fig
