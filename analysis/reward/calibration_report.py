"""Which calibration (none, Platt, isotonic) makes a reward model's confidence mean what it says,
chosen by worker-grouped cross-validation, with ECE intervals from a bootstrap over workers.

Input: out-of-fold rows of the grouped protocol (``y``, ``prob_1``, ``worker`` and, per method,
the calibrated P(class 1)), e.g. :attr:`~analysis.reward.evaluate.EvalResult.oof` of runs with
``calibration="platt"`` and ``"isotonic"`` (the raw ``prob_1`` is the "none" column of both).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .intervals import N_BOOT, _worker_weights, brier, expected_calibration_error


def ece_bootstrap(
    y: np.ndarray, prob_1: np.ndarray, groups: np.ndarray, *, n_bins: int = 10, n_boot: int = N_BOOT,
    seed: int = 0, level: float = 0.95, baseline_prob_1: np.ndarray | None = None,
) -> dict[str, float]:
    """Top-label ECE (as :func:`~analysis.reward.intervals.expected_calibration_error`) with a
    worker-bootstrap interval; with ``baseline_prob_1`` also the paired difference ECE - ECE(baseline).

    Each replicate draws workers with replacement and recomputes the ECE over their rows (rows
    weighted by how often their worker was drawn), with the same draws for the baseline. Binned
    ECE is biased upwards on small samples (noise in a bin never cancels), and a replicate has
    fewer distinct workers, so for a well-calibrated model the interval can lie above the point
    estimate: compare methods by the paired difference, which shares that bias.
    """
    y = np.asarray(y)
    codes, weights = _worker_weights(np.asarray(groups), n_boot, seed)
    n_groups = weights.shape[1]
    alpha = (1.0 - level) / 2

    def per_bin(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(p, dtype=float)
        conf = np.maximum(p, 1 - p)
        correct = ((p >= 0.5).astype(int) == y).astype(float)
        edges = np.linspace(0.5, 1.0, n_bins + 1)
        which = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
        gap = np.zeros((n_groups, n_bins))
        count = np.zeros((n_groups, n_bins))
        np.add.at(gap, (codes, which), correct - conf)
        np.add.at(count, (codes, which), 1.0)
        return gap, count

    def boot(p: np.ndarray) -> np.ndarray:
        gap, count = per_bin(p)
        total = weights @ count.sum(axis=1)
        return np.abs(weights @ gap).sum(axis=1) / np.where(total > 0, total, np.nan)

    b = boot(prob_1)
    lo, hi = np.nanquantile(b, [alpha, 1 - alpha])
    out = {"ece": expected_calibration_error(y, prob_1, n_bins), "ece_lo": float(lo), "ece_hi": float(hi)}
    if baseline_prob_1 is not None:
        d = b - boot(baseline_prob_1)
        dlo, dhi = np.nanquantile(d, [alpha, 1 - alpha])
        out.update({"ece_diff": out["ece"] - expected_calibration_error(y, baseline_prob_1, n_bins),
                    "ece_diff_lo": float(dlo), "ece_diff_hi": float(dhi)})
    return out


def calibration_table(
    oof: pd.DataFrame, method_columns: Mapping[str, str], *, n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """ECE [interval], ECE difference to no calibration [interval] and Brier per model and method.

    Parameters
    ----------
    oof : DataFrame
        One row per (model, seed, query_id): ``model``, ``worker``, ``y`` and the columns named
        in ``method_columns``.
    method_columns : mapping method -> column
        e.g. ``{"none": "prob_1", "platt": "prob_platt", "isotonic": "prob_isotonic"}``; the
        ``none`` column is the paired baseline.
    """
    rows = []
    for model, part in oof.groupby("model", sort=False):
        y, g = part["y"].to_numpy(), part["worker"].to_numpy()
        base = part[method_columns["none"]].to_numpy() if "none" in method_columns else None
        for method, col in method_columns.items():
            p = part[col].to_numpy(dtype=float)
            stats = ece_bootstrap(y, p, g, n_boot=n_boot, seed=seed,
                                  baseline_prob_1=None if method == "none" else base)
            acc = float(((p >= 0.5).astype(int) == y).mean())
            rows.append({"model": model, "method": method, "accuracy": acc, "brier": brier(y, p), **stats})
    return pd.DataFrame(rows)


def choose_method(table: pd.DataFrame, model: str) -> str:
    """The method with the lowest Brier score for ``model`` (Brier rewards calibration and
    sharpness together, and unlike binned ECE does not depend on a bin choice); ``none`` wins
    ties, since a calibrator that does not help is one more thing to fit."""
    part = table[table["model"] == model].set_index("method")
    best = part["brier"].idxmin()
    return "none" if np.isclose(part.loc[best, "brier"], part.loc["none", "brier"]) else str(best)
