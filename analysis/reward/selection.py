"""Column selectors with the scikit-learn transformer API, so selection can sit inside a
``Pipeline`` and be fitted on the training folds only (nested), or be fixed up front (the
paper's protocol, which ranked features on all the data).

All selectors take and return DataFrames and keep NaN (random forests handle it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import RandomForestClassifier


class EmptyFeatureSet(ValueError):
    """A column filter left no feature to fit on."""


def column_group(name: str) -> str:
    """Group of a feature column (``text``, ``gaze``, ``mouse``, ``both``): the part before the first dot."""
    return name.split(".", 1)[0]


class _ColumnSelector(TransformerMixin, BaseEstimator):
    """Base: subclasses set ``selected_columns_`` in ``fit``; transform keeps those columns."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.loc[:, self.selected_columns_]

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        return np.asarray(self.selected_columns_, dtype=object)


class ColumnFilter(_ColumnSelector):
    """Keep fixed columns and/or feature groups; stateless apart from the column list.

    Parameters
    ----------
    columns : sequence of str or None
        Keep only these (in this order); None keeps all.
    keep_groups : sequence of str or None
        Keep only columns of these groups (e.g. ``("text",)`` for the length baseline).
    drop_groups : sequence of str
        Drop columns of these groups (e.g. ``("gaze", "both")`` for "IF - gaze").
    extra_groups : sequence of str
        With ``columns``: also keep every column of these groups.
    """

    def __init__(self, columns=None, *, keep_groups=None, drop_groups=(), extra_groups=()):
        self.columns = columns
        self.keep_groups = keep_groups
        self.drop_groups = drop_groups
        self.extra_groups = extra_groups

    def fit(self, X: pd.DataFrame, y=None) -> ColumnFilter:
        names = list(X.columns) if self.columns is None else [c for c in self.columns if c in X.columns]
        if self.columns is not None and self.extra_groups:
            names += [c for c in X.columns if column_group(c) in self.extra_groups and c not in names]
        if self.keep_groups is not None:
            names = [c for c in names if column_group(c) in self.keep_groups]
        names = [c for c in names if column_group(c) not in self.drop_groups]
        if not names:
            raise EmptyFeatureSet(
                f"no feature columns left (keep={self.keep_groups}, drop={self.drop_groups})"
            )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.selected_columns_ = names
        return self


def default_ranking_forest(random_state: int | None = 0, n_jobs: int | None = None) -> RandomForestClassifier:
    """The forest that ranks features (appendix B.4: deep trees to capture interactions).

    The paper's numbers are missing from our copy; defaults: 500 trees, no depth limit,
    ``min_samples_split=10``, ``min_samples_leaf=5``.
    """
    return RandomForestClassifier(
        n_estimators=500,
        max_depth=None,
        min_samples_split=10,
        min_samples_leaf=5,
        random_state=random_state,
        n_jobs=n_jobs,
    )


class TopKImportance(_ColumnSelector):
    """Keep the ``k`` columns with the highest impurity importance of a fitted forest ("IF").

    Parameters
    ----------
    k : int
        Columns kept (paper: 50).
    estimator : estimator or None
        Has ``feature_importances_`` after ``fit``; None = :func:`default_ranking_forest`.
    random_state : int or None
        Seed of the default forest.

    Attributes
    ----------
    selected_columns_ : list of str
        The ``k`` columns, most important first.
    importances_ : Series
        Importance of every input column.
    n_fit_rows_ : int
        Rows it was fitted on (lets tests check that it saw only a training fold).

    Other parameters: ``rank_exclude_groups`` are never ranked (text embeddings are not
    implicit feedback); ``always_keep_groups`` are appended to the output unranked (Text + IF).
    """

    def __init__(
        self,
        k: int = 50,
        *,
        estimator=None,
        random_state: int | None = 0,
        n_jobs: int | None = None,
        rank_exclude_groups: tuple[str, ...] = ("emb",),
        always_keep_groups: tuple[str, ...] = (),
    ):
        self.k = k
        self.estimator = estimator
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.rank_exclude_groups = rank_exclude_groups
        self.always_keep_groups = always_keep_groups

    def fit(self, X: pd.DataFrame, y) -> TopKImportance:
        est = (
            default_ranking_forest(self.random_state, self.n_jobs)
            if self.estimator is None
            else clone(self.estimator)
        )
        skip = set(self.rank_exclude_groups) | set(self.always_keep_groups)
        X_all_columns = list(X.columns)
        X_rank = X.loc[:, [c for c in X.columns if column_group(c) not in skip]]
        est.fit(X_rank, y)
        X = X_rank
        importances = pd.Series(est.feature_importances_, index=list(X.columns))
        # stable tie-break by column order, so the same data always gives the same list
        order = np.argsort(-importances.to_numpy(), kind="stable")
        self.importances_ = importances
        self.feature_names_in_ = np.asarray(X_all_columns, dtype=object)
        self.selected_columns_ = [importances.index[i] for i in order[: self.k]]
        self.selected_columns_ += [c for c in self.feature_names_in_ if column_group(c) in self.always_keep_groups]
        self.n_fit_rows_ = len(X)
        return self
