"""How far one leaderboard ranks models like another: Kendall's τ with a bootstrap interval, and
the pairs of models whose order swaps."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.stats import kendalltau

from .bradley_terry import BradleyTerryFit


@dataclass
class Agreement:
    """τ between two fits over their common models; ``swaps`` lists the pairs ordered differently."""

    tau: float
    lower: float
    upper: float
    n_models: int
    n_pairs: int
    swaps: list[tuple[str, str]]

    def as_dict(self) -> dict:
        return {"tau": self.tau, "lower": self.lower, "upper": self.upper, "n_models": self.n_models,
                "n_pairs": self.n_pairs, "swaps": [list(s) for s in self.swaps]}


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0  # both constant: nothing to disagree on
    tau = kendalltau(a, b).statistic
    return float(tau) if np.isfinite(tau) else 0.0


def agreement(reference: BradleyTerryFit, other: BradleyTerryFit, alpha: float = 0.05) -> Agreement:
    """Kendall's τ-b of the strengths of ``other`` against ``reference``.

    The interval pairs bootstrap round r of one fit with round r of the other, so both fits must
    come from the same draws (same worker universe, seed and number of rounds; see
    :func:`~analysis.leaderboard.bradley_terry.bootstrap_weights`): it then shows how stable the
    agreement is when the same workers are redrawn for both sources.
    """
    common = [m for m in reference.models if m in other.models]
    if len(common) < 2:
        raise ValueError("the two leaderboards share fewer than two models")
    ri = [reference.models.index(m) for m in common]
    oi = [other.models.index(m) for m in common]
    ref, oth = reference.scores[ri], other.scores[oi]
    swaps = [
        (common[i], common[j]) for i, j in combinations(range(len(common)), 2)
        if np.sign(ref[i] - ref[j]) != np.sign(oth[i] - oth[j])
    ]
    if reference.boot.shape[0] != other.boot.shape[0]:
        raise ValueError("the two fits have different numbers of bootstrap rounds")
    taus = np.array([_tau(a, b) for a, b in zip(reference.boot[:, ri], other.boot[:, oi], strict=True)])
    lower, upper = np.percentile(taus, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    n = len(common)
    return Agreement(_tau(ref, oth), float(lower), float(upper), n, n * (n - 1) // 2, swaps)
