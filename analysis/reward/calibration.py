"""Probability calibration fitted inside a training fold (Platt or isotonic).

rDPO turns a reward model's confidence into a flip rate, so "0.8" must mean right 4 times in 5
on workers the model has not seen. Forest votes on ~500 rows are not probabilities in that
sense (they shrink towards 0.5 and carry the training workers' habits). The calibrator is
fitted on out-of-fold scores of an inner cross-validation grouped by worker *within the outer
training fold*, so neither the outer test rows nor the training rows' own fits are seen by it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

METHODS = ("none", "platt", "isotonic")
_EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p)).reshape(-1, 1)


class Calibrator:
    """Maps a raw P(class 1) to a calibrated one; ``method`` is ``platt`` or ``isotonic``.

    Platt scaling is a 2-parameter logistic fit on the logit (stable on a few hundred rows);
    isotonic is monotone and free-form (can fit any shape, needs more rows). Which one the
    default uses was chosen by worker-grouped CV on dev (README, analysis section).
    """

    def __init__(self, method: str = "platt"):
        if method not in METHODS[1:]:
            raise ValueError(f"calibration method {method!r}: expected 'platt' or 'isotonic'")
        self.method = method

    def fit(self, prob_1: np.ndarray, y: np.ndarray) -> Calibrator:
        y = np.asarray(y)
        if len(np.unique(y)) < 2:
            self.model_ = None
            self.constant_ = float(y.mean()) if len(y) else 0.5
            return self
        if self.method == "platt":
            self.model_ = LogisticRegression(C=1.0).fit(_logit(prob_1), y)
        else:
            self.model_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                np.asarray(prob_1, dtype=float), y
            )
        return self

    def transform(self, prob_1: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            return np.full(len(prob_1), self.constant_)
        if self.method == "platt":
            return self.model_.predict_proba(_logit(prob_1))[:, 1]
        return np.clip(self.model_.predict(np.asarray(prob_1, dtype=float)), _EPS, 1 - _EPS)


def inner_oof_scores(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    n_splits: int = 3,
) -> np.ndarray:
    """Out-of-fold P(class 1) on a training fold from an inner CV grouped by worker.

    ``fit_predict(train_idx, test_idx)`` fits the model on ``train_idx`` rows and returns its
    P(class 1) on ``test_idx``. With fewer workers than ``n_splits`` the folds shrink to the
    worker count (at least 2).
    """
    n_groups = len(np.unique(groups))
    out = np.full(len(y), np.nan)
    if n_groups < 2:
        return out
    cv = GroupKFold(n_splits=min(n_splits, n_groups))
    for train, test in cv.split(np.zeros(len(y)), y, groups):
        if len(np.unique(y[train])) < 2:
            out[test] = y[train].mean()
            continue
        out[test] = fit_predict(train, test)
    return out


def clone_fit_predict(model, X, y) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``fit_predict`` for :func:`inner_oof_scores` from an unfitted estimator and a DataFrame."""

    def run(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        fitted = clone(model).fit(X.iloc[train], y[train])
        classes = list(fitted.classes_)
        proba = fitted.predict_proba(X.iloc[test])
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(test))

    return run
