"""Reliability diagram of reward-model confidences (pure: arrays in, matplotlib Figure out).

rDPO turns each pair's confidence into a flip rate, so the diagram plots what matters
downstream: for the predicted winner, stated confidence (x) against how often it was right (y),
in equal bins over [0.5, 1], with the number of pairs per bin as marker area. A calibrated
model lies on the diagonal.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from analysis.reward.intervals import confidence_bins, expected_calibration_error


def reliability_diagram(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, n_bins: int = 10, title: str = ""
) -> Figure:
    """One line per curve (label -> ``(y, prob_1)``), its ECE in the legend.

    Parameters
    ----------
    curves : mapping label -> (y, prob_1)
        Labels (1 = response 1 preferred) and P(response 1), e.g. ``"RF + IF, Platt"``.
    """
    fig = Figure(figsize=(4.8, 4.6))
    ax = fig.subplots()
    ax.plot([0.5, 1.0], [0.5, 1.0], ls="--", color="#888", lw=1, label="calibrated")
    for label, (y, p) in curves.items():
        if not len(y):
            continue
        bins = confidence_bins(y, p, n_bins)
        ece = expected_calibration_error(np.asarray(y), np.asarray(p, dtype=float), n_bins)
        line = ax.plot(bins["confidence"], bins["accuracy"], marker=None, lw=1.2, label=f"{label} (ECE {ece:.3f})")
        ax.scatter(bins["confidence"], bins["accuracy"], s=8 + 120 * bins["n"] / bins["n"].max(),
                   color=line[0].get_color(), alpha=0.8)
    ax.set_xlim(0.48, 1.02)
    ax.set_ylim(0.25, 1.02)
    ax.set_xlabel("confidence of the predicted winner")
    ax.set_ylabel("share of pairs where it won")
    ax.set_title(title or "Reliability (worker-grouped out-of-fold)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
