"""Blend classifiers that each see their own feature groups (forest on behaviour, torch model on
the time course, logistic regression on text embeddings), pure scikit-learn API.

The blend averages the members' logits with fixed weights. Fitting the weights would need an
inner cross-validation grouped by worker, which an estimator cannot do (``fit`` gets no worker
ids), and an ungrouped one rewards the member that memorises the training workers best, the
opposite of what a model for new workers needs. Equal weights are the honest default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from .selection import column_group

_EPS = 1e-4


class GroupBlend(ClassifierMixin, BaseEstimator):
    """Logit average of members fitted on column subsets chosen by feature group.

    Parameters
    ----------
    members : sequence of (estimator, keep_groups or None, drop_groups)
        Each member is fitted on the columns of ``keep_groups`` (None: all) minus ``drop_groups``.
    weights : sequence of float or None
        Logit weights (default equal, summing to 1).
    """

    def __init__(self, members: Sequence[tuple], weights: Sequence[float] | None = None):
        self.members = members
        self.weights = weights

    @staticmethod
    def _columns(X: pd.DataFrame, keep, drop) -> list[str]:
        cols = [c for c in X.columns if (keep is None or column_group(c) in keep) and column_group(c) not in drop]
        if not cols:
            raise ValueError(f"no columns for a blend member (keep={keep}, drop={drop})")
        return cols

    def fit(self, X: pd.DataFrame, y) -> GroupBlend:
        y = np.asarray(y, dtype=np.int64)
        self.fitted_ = []
        for estimator, keep, drop in self.members:
            cols = self._columns(X, keep, drop)
            self.fitted_.append((clone(estimator).fit(X[cols], y), cols))
        w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, dtype=float)
        self.weights_ = w / w.sum()
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def member_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(class 1) of each member, shape (n, n_members)."""
        check_is_fitted(self, "fitted_")
        out = []
        for model, cols in self.fitted_:
            classes = list(model.classes_)
            proba = model.predict_proba(X[cols])
            out.append(proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X)))
        return np.column_stack(out)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.clip(self.member_proba(X), _EPS, 1 - _EPS)
        z = np.log(p / (1 - p)) @ self.weights_
        p1 = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p1, p1])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
