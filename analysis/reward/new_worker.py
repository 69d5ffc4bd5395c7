"""Reward models aimed at workers the model has not seen (scikit-learn estimators, pure).

What a forest learns from ~60 workers is partly *those workers*: who prefers the left answer,
who reads slowly, which tasks had long answers. Each piece here removes one such shortcut:

:class:`SideSymmetricClassifier`
    fits on each pair and its side-swapped copy (labels flipped), predicts the average of
    P(left wins | pair) and 1 - P(left wins | swapped pair), so no left/right habit of the
    training workers can enter the model, and then adds back one explicit number: the training
    rows' position prior (log-odds of "left wins").
:func:`standardise_within`
    behaviour features as z-scores within each worker (or task): label-free, so a new worker's
    own unlabelled turns are enough to compute them at prediction time.
:class:`LengthResidualiser`
    replaces each behaviour feature by what a linear fit on the answers' lengths does not
    explain, fitted on the training rows: what reading behaviour says beyond what length says.

Whether any of this helps is measured under worker-grouped CV (``benchmarks/reward_new_workers.py``
and the README's analysis section); the defaults stay the paper's models unless it does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted

from .labels import swap_sides
from .selection import column_group

_EPS = 1e-4
#: Groups that are not behaviour (never standardised or residualised).
NON_BEHAVIOUR_GROUPS = ("text", "emb")
LENGTH_COLUMNS = ("text.response_length.1", "text.response_length.2")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _prob_1(model, X: pd.DataFrame) -> np.ndarray:
    classes = list(model.classes_)
    proba = model.predict_proba(X)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))


class SideSymmetricClassifier(ClassifierMixin, BaseEstimator):
    """Pairwise classifier that cannot learn position, plus an explicit position prior.

    Parameters
    ----------
    estimator : classifier
        Fitted on ``X`` stacked with ``swap_sides(X)`` (labels ``y`` and ``1 - y``).
    position_prior : bool
        Add the training rows' log-odds of class 1 (left wins) to the symmetric logit. False
        gives a model that is exactly antisymmetric: P(x) = 1 - P(swap(x)).

    Columns must follow the ``group.feature.side`` naming (``.1``/``.2``, ``.diff``,
    ``.ratio``, ``.cmp``): that is what :func:`~analysis.reward.labels.swap_sides` swaps.
    """

    def __init__(self, estimator, *, position_prior: bool = True):
        self.estimator = estimator
        self.position_prior = position_prior

    def fit(self, X: pd.DataFrame, y) -> SideSymmetricClassifier:
        y = np.asarray(y, dtype=np.int64)
        self.columns_ = swappable_columns(X.columns)
        X = X[self.columns_]
        X2 = pd.concat([X, swap_sides_partial(X)], ignore_index=True)
        self.estimator_ = clone(self.estimator).fit(X2, np.concatenate([y, 1 - y]))
        self.classes_ = np.array([0, 1])
        rate = (y.sum() + 1.0) / (len(y) + 2.0)  # Laplace: one-class folds stay finite
        self.prior_logit_ = float(_logit(rate)) if self.position_prior else 0.0
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        X = X[self.columns_]
        p = 0.5 * (_prob_1(self.estimator_, X) + 1.0 - _prob_1(self.estimator_, swap_sides_partial(X)))
        p1 = 1.0 / (1.0 + np.exp(-(_logit(p) + self.prior_logit_)))
        return np.column_stack([1 - p1, p1])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def swappable_columns(columns: Sequence[str]) -> list[str]:
    """Columns whose side-swapped value is known from the same columns: side columns whose
    partner is present (a ranked top-k can keep ``x.1`` without ``x.2``), and every side-free
    column (``.diff``, ``.ratio``, ``.cmp`` and turn features such as ``gaze.head_ratio``)."""
    cols = set(columns)
    out = []
    for c in columns:
        stem, _, side = c.rpartition(".")
        if side in ("1", "2") and stem and f"{stem}.{3 - int(side)}" not in cols:
            continue
        out.append(c)
    return out


def swap_sides_partial(X: pd.DataFrame) -> pd.DataFrame:
    """:func:`~analysis.reward.labels.swap_sides` for a column subset: a ``.cmp`` column whose
    ``.1``/``.2`` inputs are absent becomes ``1 - cmp`` (exact except for ties)."""
    missing = [c for c in X.columns if c.endswith(".cmp")
               and not {c[:-4] + ".1", c[:-4] + ".2"} <= set(X.columns)]
    out = swap_sides(X.drop(columns=missing))
    for c in missing:
        out[c] = 1.0 - X[c]
    return out[list(X.columns)]


def behaviour_columns(columns: Sequence[str]) -> list[str]:
    """Columns that describe behaviour (not text lengths or embeddings)."""
    return [c for c in columns if column_group(c) not in NON_BEHAVIOUR_GROUPS and "." in c]


def standardise_within(
    features: pd.DataFrame, by: Sequence[str] = ("worker",), columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Behaviour features as z-scores within each group of ``by`` (e.g. worker, or worker+task).

    Label-free: uses only the features of the group's own turns, so it is available for a new
    worker as soon as they have a few turns. Groups of one row (std 0 or NaN) get 0; side
    columns of one feature (``.1`` and ``.2``) are scaled by the same pooled mean/std, so the
    comparison of sides (what the label is about) survives the scaling.

    Returns a copy with the same columns.
    """
    out = features.copy()
    cols = behaviour_columns(features.columns) if columns is None else list(columns)
    keys = [features[k] for k in by]
    done = set()
    for col in cols:
        if col in done:
            continue
        stem, _, side = col.rpartition(".")
        pair = [f"{stem}.1", f"{stem}.2"] if side in ("1", "2") else [col]
        pair = [c for c in pair if c in features.columns]
        done.update(pair)
        stacked = pd.concat([features[c] for c in pair], axis=0)
        skeys = [pd.concat([k] * len(pair), axis=0) for k in keys]
        grouped = stacked.groupby(skeys, dropna=False)
        mean = grouped.transform("mean")
        std = grouped.transform("std").replace(0.0, np.nan)
        z = ((stacked - mean) / std).fillna(0.0).where(stacked.notna())
        n = len(features)
        for i, c in enumerate(pair):
            out[c] = z.iloc[i * n : (i + 1) * n].to_numpy()
    return out


class LengthResidualiser(TransformerMixin, BaseEstimator):
    """Behaviour features minus their linear prediction from the two answers' lengths.

    Fitted on the training rows (one least-squares fit per column on ``log1p`` of both lengths
    and their difference); length columns pass through unchanged, so a model that follows
    still sees the length. Missing behaviour values stay missing; missing lengths count as 0.

    Parameters
    ----------
    length_columns : sequence of str
        The regressors (default: both response lengths).
    """

    def __init__(self, length_columns: Sequence[str] = LENGTH_COLUMNS):
        self.length_columns = length_columns

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        L = np.log1p(X.reindex(columns=list(self.length_columns)).fillna(0.0).to_numpy(dtype=float))
        return np.column_stack([L, L[:, :1] - L[:, 1:2]]) if L.shape[1] == 2 else L

    def fit(self, X: pd.DataFrame, y=None) -> LengthResidualiser:
        design = self._design(X)
        self.coef_ = {}
        for col in behaviour_columns(X.columns):
            if col in self.length_columns:
                continue
            v = X[col].to_numpy(dtype=float)
            ok = np.isfinite(v)
            if ok.sum() >= design.shape[1] + 2:
                fit = LinearRegression().fit(design[ok], v[ok])
                self.coef_[col] = (fit.coef_, float(fit.intercept_))
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "coef_")
        design = self._design(X)
        out = X.copy()
        for col, (coef, intercept) in self.coef_.items():
            if col in out.columns:
                out[col] = X[col].to_numpy(dtype=float) - (design @ coef + intercept)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_in_, dtype=object)
