"""Every "IF helps" claim with its interval: worker-bootstrap summaries of out-of-fold predictions.

Used for the cross-validation table (pooled over seeds) and the transfer evaluation (one fit on
training workers, scored on other workers). Keys of the rows are stable; the run pages render them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .intervals import brier, expected_calibration_error, worker_bootstrap
from .models import LENGTH_BASELINE

#: Columns of :func:`interval_summary` (stable: HTML pages and JSON use them).
SUMMARY_COLUMNS = ("accuracy", "acc_lo", "acc_hi", "diff", "diff_lo", "diff_hi", "auc", "ece", "brier",
                   "ece_cal", "brier_cal", "n_test", "workers_test")


def predictions_summary(
    oof: pd.DataFrame, *, baseline: str = LENGTH_BASELINE, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """One row per (protocol, model) from out-of-fold rows (``query_id, worker, y, prob_1, model,
    protocol, seed`` and optionally ``prob_1_cal``).

    Rows of all seeds are pooled (a row scored by 3 seeds counts 3 times, its worker once in the
    bootstrap draw), and the difference to ``baseline`` is paired on (seed, query_id).
    """
    from sklearn.metrics import roc_auc_score

    out = []
    for protocol, part in oof.groupby("protocol", sort=False):
        base = part[part["model"] == baseline].set_index(["seed", "query_id"])
        for model, rows in part.groupby("model", sort=False):
            rows = rows.set_index(["seed", "query_id"])
            correct = ((rows["prob_1"] >= 0.5).astype(int) == rows["y"]).to_numpy(float)
            base_correct = None
            if len(base) and model != baseline:
                b = base.reindex(rows.index)
                base_correct = ((b["prob_1"] >= 0.5).astype(int) == b["y"]).to_numpy(float)
            ci = worker_bootstrap(correct, rows["worker"].to_numpy(), baseline_correct=base_correct,
                                  n_boot=n_boot, seed=seed)
            y, p = rows["y"].to_numpy(), rows["prob_1"].to_numpy()
            rec = {"protocol": protocol, "model": model, **ci,
                   "auc": roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan"),
                   "ece": expected_calibration_error(y, p), "brier": brier(y, p),
                   "n_test": int(rows.index.get_level_values("query_id").nunique()),
                   "workers_test": int(rows["worker"].nunique())}
            if "prob_1_cal" in rows and rows["prob_1_cal"].notna().all():
                pc = rows["prob_1_cal"].to_numpy()
                rec.update({"ece_cal": expected_calibration_error(y, pc), "brier_cal": brier(y, pc)})
            if model == baseline:
                rec.update({"diff": 0.0, "diff_lo": 0.0, "diff_hi": 0.0})
            out.append(rec)
    frame = pd.DataFrame(out)
    for col in SUMMARY_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    return frame[["protocol", "model", *SUMMARY_COLUMNS]]


def interval_summary(result, **kwargs) -> pd.DataFrame:
    """:func:`predictions_summary` of an :class:`~analysis.reward.evaluate.EvalResult`."""
    return predictions_summary(result.oof, **kwargs)


def format_interval_table(summaries: Mapping[str, pd.DataFrame]) -> str:
    """Markdown: accuracy [95 % worker-bootstrap CI], increment over length [CI], AUC, ECE, Brier."""
    lines = ["| Method | Accuracy [95% CI, workers] | Δ vs length-only [95% CI] | AUC | ECE | ECE calibrated |",
             "|---|---|---|---|---|---|"]
    for setting, frame in summaries.items():
        for protocol, part in frame.groupby("protocol", sort=False):
            lines.append(f"| **{setting}, {protocol}** ({int(part['n_test'].max())} rows, "
                         f"{int(part['workers_test'].max())} workers) | | | | | |")
            for r in part.itertuples(index=False):
                diff = "-" if pd.isna(r.diff) else f"{r.diff:+.3f} [{r.diff_lo:+.3f}, {r.diff_hi:+.3f}]"
                cal = "-" if pd.isna(r.ece_cal) else f"{r.ece_cal:.3f}"
                lines.append(f"| {r.model} | {r.accuracy:.3f} [{r.acc_lo:.3f}, {r.acc_hi:.3f}] | {diff} | "
                             f"{r.auc:.3f} | {r.ece:.3f} | {cal} |")
    return "\n".join(lines)
