"""Uncertainty of accuracy claims, resampling WORKERS (not rows).

Rows of one worker are not independent (same reading habits, same side bias), so a bootstrap
over rows understates the spread of what a new cohort would give. Every interval here draws
workers with replacement and recomputes the pooled accuracy over their rows; a paired
difference uses the same draws for both models, so it answers "does model A beat model B on
the same workers' rows" with its own interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Bootstrap draws (2,000 keeps the 2.5/97.5 % quantiles stable to ~0.002 for ~60 workers).
N_BOOT = 2000


def _worker_weights(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Worker code of each row, and how often each worker is drawn in each replicate (B x G)."""
    codes, uniques = pd.factorize(pd.Series(groups), sort=True)
    rng = np.random.default_rng(seed)
    n_groups = len(uniques)
    weights = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    return codes, weights


def _per_worker(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=n_groups)


def worker_bootstrap(
    correct: np.ndarray,
    groups: np.ndarray,
    *,
    baseline_correct: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Accuracy with a worker-bootstrap interval, and optionally the paired difference to a baseline.

    Parameters
    ----------
    correct : array of float, shape (n,)
        1 where the prediction was right (a fraction when a row was scored by several seeds).
    groups : array, shape (n,)
        Worker of each row.
    baseline_correct : array, shape (n,), optional
        The baseline's correctness on the SAME rows (length-only model).

    Returns
    -------
    dict
        ``accuracy``, ``acc_lo``, ``acc_hi``; with a baseline also ``diff`` (model - baseline),
        ``diff_lo``, ``diff_hi``. Keys are stable (the run pages and the transfer JSON use them).
    """
    correct = np.asarray(correct, dtype=float)
    codes, weights = _worker_weights(np.asarray(groups), n_boot, seed)
    n_groups = weights.shape[1]
    count = _per_worker(np.ones_like(correct), codes, n_groups)
    alpha = (1.0 - level) / 2
    denom = weights @ count
    denom[denom == 0] = np.nan

    def interval(values: np.ndarray) -> tuple[float, float, float]:
        boot = (weights @ _per_worker(values, codes, n_groups)) / denom
        lo, hi = np.nanquantile(boot, [alpha, 1 - alpha])
        return float(values.mean()), float(lo), float(hi)

    acc, lo, hi = interval(correct)
    out = {"accuracy": acc, "acc_lo": lo, "acc_hi": hi}
    if baseline_correct is not None:
        diff, dlo, dhi = interval(correct - np.asarray(baseline_correct, dtype=float))
        out.update({"diff": diff, "diff_lo": dlo, "diff_hi": dhi})
    return out


def confidence_bins(y: np.ndarray, prob_1: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per bin of top-label confidence (``max(p, 1 - p)`` in ``n_bins`` equal bins over [0.5, 1]):
    ``confidence`` (mean), ``accuracy`` (how often the predicted winner won) and ``n``.
    Shared by :func:`expected_calibration_error` and the reliability diagram, so both bin alike."""
    y = np.asarray(y)
    p = np.asarray(prob_1, dtype=float)
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(float)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": which, "confidence": conf, "correct": correct})
    out = frame.groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("correct", "mean"),
                                   n=("correct", "size"))
    return out.reset_index()


def expected_calibration_error(y: np.ndarray, prob_1: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: |accuracy - confidence| of the predicted winner, weighted over 10 equal bins.

    The confidence is the probability of the predicted class (``max(p, 1 - p)``), the number
    rDPO turns into a flip rate, so this is the calibration that matters downstream.
    """
    bins = confidence_bins(y, prob_1, n_bins)
    if bins.empty:
        return 0.0
    weights = bins["n"] / bins["n"].sum()
    return float((weights * (bins["accuracy"] - bins["confidence"]).abs()).sum())


def reliability_bins(y: np.ndarray, prob_1: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Points of a reliability diagram of P(class 1): mean prediction, observed rate, count per bin."""
    prob_1 = np.asarray(prob_1, dtype=float)
    which = np.clip((prob_1 * n_bins).astype(int), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": which, "p": prob_1, "y": np.asarray(y, dtype=float)})
    out = frame.groupby("bin").agg(mean_predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return out.reset_index()


def brier(y: np.ndarray, prob_1: np.ndarray) -> float:
    """Mean squared error of P(class 1)."""
    return float(np.mean((np.asarray(prob_1, dtype=float) - np.asarray(y, dtype=float)) ** 2))
