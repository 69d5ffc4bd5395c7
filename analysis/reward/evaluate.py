"""Cross-validated evaluation of the reward models under three protocols, and Table 2.

Protocols (5 folds, stratified, repeated over seeds):

``paper``
    ungrouped folds, important features (IF) ranked ONCE on all rows, as published. Leaky: the
    test rows took part in choosing the features. Reported only to reproduce the paper.
``grouped``
    folds grouped by worker (``StratifiedGroupKFold``): no worker is in both train and test;
    IF re-ranked inside every training fold. This is the honest estimate for new users.
``ungrouped``
    ungrouped folds with IF ranked inside every training fold: isolates the selection leak from
    the worker leak.

Metrics are computed per seed on the pooled out-of-fold predictions, then reported as mean and
standard deviation over seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from .labels import winner_from_prob
from .models import UNRANKED_GROUPS, ModelSpec, default_specs
from .selection import EmptyFeatureSet, TopKImportance, column_group, default_ranking_forest

PROTOCOLS: dict[str, str] = {
    "paper": "stratified 5-fold, IF ranked once on all data (leaky, as published)",
    "grouped": "stratified 5-fold grouped by worker, IF ranked inside each training fold",
    "ungrouped": "stratified 5-fold, IF ranked inside each training fold",
}
METRICS = ("accuracy", "f1_1", "f1_0", "auc")
METRIC_LABELS = {"accuracy": "Accuracy", "f1_1": "F1 Class 1", "f1_0": "F1 Class 0", "auc": "AUC"}


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings.

    Parameters
    ----------
    n_splits : int
        Folds (paper: 5).
    seeds : tuple of int
        Repetitions; each seed reshuffles folds, reseeds the forests and (``balance``) redraws
        the subsample.
    protocols : tuple of str
        Keys of :data:`PROTOCOLS`.
    k : int
        Important features kept (paper: 50).
    balance : bool
        Subsample the majority class to the minority's size, per seed (the paper's pointwise
        setting: 70 % of answers were rated better than the previous one).
    selector_n_jobs : int or None
        Threads of the ranking forest.
    selector_n_estimators : int
        Trees of the ranking forest (appendix B.4 default 500; fewer for quick runs).
    regression_n_estimators : int
        Trees of the Likert regressor.
    """

    n_splits: int = 5
    seeds: tuple[int, ...] = (0, 1, 2)
    protocols: tuple[str, ...] = ("paper", "grouped", "ungrouped")
    k: int = 50
    balance: bool = False
    selector_n_jobs: int | None = 2
    selector_n_estimators: int = 500
    regression_n_estimators: int = 300


DEFAULT_EVAL_CONFIG = EvalConfig()


@dataclass
class EvalResult:
    """Output of :func:`evaluate_table`.

    Attributes
    ----------
    scores : DataFrame
        One row per (protocol, model, seed): :data:`METRICS` and ``n`` (rows evaluated).
    oof : DataFrame
        Out-of-fold predictions: ``query_id``, ``y``, ``prob_1`` (P(response 1 preferred)),
        ``winner`` (1 or 2, coded like ``preferred``), ``p_winner`` (probability of the
        predicted winner, >= 0.5), ``fold``, ``protocol``, ``model``, ``seed``.
    importances : DataFrame
        Ranking importances of the selector fits: ``protocol``, ``seed``, ``fold`` (-1 = all
        data), ``feature``, ``importance``.
    timings : dict
        Seconds per protocol.
    """

    scores: pd.DataFrame
    oof: pd.DataFrame
    importances: pd.DataFrame
    timings: dict = field(default_factory=dict)


def make_splits(
    protocol: str, y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test indices of one protocol and seed (grouped protocol: by ``groups``)."""
    X_dummy = np.zeros((len(y), 1))
    if protocol == "grouped":
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(cv.split(X_dummy, y, groups))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(X_dummy, y))


def balanced_subsample(y: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices keeping every minority row and as many random majority rows."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n = counts.min()
    keep = [
        idx if len(idx) == n else rng.choice(idx, size=n, replace=False)
        for idx in (np.flatnonzero(y == c) for c in classes)
    ]
    return np.sort(np.concatenate(keep))


def classification_scores(y: np.ndarray, prob_1: np.ndarray) -> dict[str, float]:
    """Accuracy, F1 of each class and ROC AUC of P(class 1) at threshold 0.5."""
    pred = (prob_1 >= 0.5).astype(int)
    return {
        "accuracy": accuracy_score(y, pred),
        "f1_1": f1_score(y, pred, pos_label=1, zero_division=0.0),
        "f1_0": f1_score(y, pred, pos_label=0, zero_division=0.0),
        "auc": roc_auc_score(y, prob_1) if len(np.unique(y)) == 2 else float("nan"),
    }


def _rankable(X: pd.DataFrame) -> pd.DataFrame:
    return X.loc[:, [c for c in X.columns if column_group(c) not in UNRANKED_GROUPS]]


def evaluate_table(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    groups: pd.Series | np.ndarray,
    *,
    query_ids: Sequence[int] | None = None,
    specs: Sequence[ModelSpec] | None = None,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
    make_selector: Callable[[int], TopKImportance] | None = None,
    on_fold: Callable[[int, int, str], None] | None = None,
) -> EvalResult:
    """Cross-validate every model under every protocol.

    Parameters
    ----------
    X : DataFrame, shape (n_samples, n_features)
        Feature columns only (``group.feature.side``).
    y : array-like of {0, 1}, shape (n_samples,)
        Pairwise: 1 = response 1 (left) preferred. Pointwise: 1 = current better.
    groups : array-like, shape (n_samples,)
        Worker of each row (grouped protocol).
    query_ids : sequence of int, optional
        Identifies rows in the out-of-fold table (default: ``X.index``).
    specs : sequence of ModelSpec, optional
        Default :func:`~analysis.reward.models.default_specs`.
    make_selector : callable(seed) -> TopKImportance, optional
        Builds the IF selector (tests inject a counting one). One selector is fitted per
        training fold (nested protocols) or once per seed on all rows (``paper``) and its
        columns are shared by every IF model of that fold, which is the same as nesting it in
        each pipeline but fits it once instead of once per model.
    on_fold : callable(done, total, label), optional
        Called after every fold: where a job reports progress and notices a cancellation (an
        exception raised here stops the evaluation before anything is returned).

    Returns
    -------
    EvalResult
    """
    specs = list(default_specs() if specs is None else specs)
    y = np.asarray(y, dtype=np.int64)
    groups = np.asarray(groups)
    qids = np.asarray(X.index if query_ids is None else query_ids)
    if make_selector is None:

        def make_selector(seed: int) -> TopKImportance:
            forest = default_ranking_forest(seed, config.selector_n_jobs)
            forest.set_params(n_estimators=config.selector_n_estimators)
            return TopKImportance(config.k, estimator=forest, random_state=seed)

    need_if = any(s.use_if for s in specs)
    score_rows, oof_parts, imp_parts, timings = [], [], [], {}
    folds_total, folds_done = len(config.protocols) * len(config.seeds) * config.n_splits, 0
    for protocol in config.protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
        started = time.perf_counter()
        for seed in config.seeds:
            rows = balanced_subsample(y, seed) if config.balance else np.arange(len(y))
            Xs, ys, gs, qs = X.iloc[rows], y[rows], groups[rows], qids[rows]
            splits = make_splits(protocol, ys, gs, config.n_splits, seed)
            fixed = None
            if protocol == "paper" and need_if:
                selector = make_selector(seed).fit(_rankable(Xs), ys)
                fixed = selector.selected_columns_
                imp_parts.append(_importances(selector, protocol, seed, -1))
            prob = {s.name: np.full(len(ys), np.nan) for s in specs}
            fold_of = np.full(len(ys), -1)
            for fold, (train, test) in enumerate(splits):
                fold_of[test] = fold
                X_train, X_test = Xs.iloc[train], Xs.iloc[test]
                columns = fixed
                if columns is None and need_if:
                    selector = make_selector(seed).fit(_rankable(X_train), ys[train])
                    columns = selector.selected_columns_
                    imp_parts.append(_importances(selector, protocol, seed, fold))
                for spec in specs:
                    model = spec.pipeline(seed, fixed_columns=columns if spec.use_if else None)
                    try:
                        model.fit(X_train, ys[train])
                    except EmptyFeatureSet:
                        # e.g. "IF - gaze" when every important feature is a gaze feature: the
                        # honest prediction from no features is the training prior.
                        model = DummyClassifier(strategy="prior").fit(X_train, ys[train])
                    prob[spec.name][test] = _prob_class_1(model, X_test)
                folds_done += 1
                if on_fold is not None:
                    on_fold(folds_done, folds_total, f"{protocol}, seed {seed}, fold {fold + 1} of {len(splits)}")
            for spec in specs:
                p1 = prob[spec.name]
                score_rows.append(
                    {"protocol": protocol, "model": spec.name, "seed": seed, "n": len(ys),
                     **classification_scores(ys, p1)}
                )  # fmt: skip
                winner, p_winner = winner_from_prob(p1)
                oof_parts.append(
                    pd.DataFrame(
                        {"query_id": qs, "y": ys, "prob_1": p1, "winner": winner, "p_winner": p_winner,
                         "fold": fold_of, "protocol": protocol, "model": spec.name, "seed": seed}
                    )  # fmt: skip
                )
        timings[protocol] = time.perf_counter() - started
    return EvalResult(
        scores=pd.DataFrame(score_rows),
        oof=pd.concat(oof_parts, ignore_index=True) if oof_parts else pd.DataFrame(),
        importances=pd.concat(imp_parts, ignore_index=True) if imp_parts else pd.DataFrame(),
        timings=timings,
    )


def _prob_class_1(model, X: pd.DataFrame) -> np.ndarray:
    """P(y = 1) whatever the order of ``classes_``."""
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    if 1 not in classes:
        return np.zeros(len(X))
    return proba[:, classes.index(1)]


def _importances(selector: TopKImportance, protocol: str, seed: int, fold: int) -> pd.DataFrame:
    imp = selector.importances_
    return pd.DataFrame(
        {"protocol": protocol, "seed": seed, "fold": fold, "feature": imp.index, "importance": imp.to_numpy()}
    )


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds: index (protocol, model), columns ``<metric>_mean``/``_std``."""
    grouped = scores.groupby(["protocol", "model"], sort=False)[list(METRICS)]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{m}_{stat}" for stat, m in out.columns]
    return out


def format_table(results: Mapping[str, EvalResult], *, metrics: Sequence[str] = METRICS) -> str:
    """Table 2 layout: one section per (setting, protocol), one row per method, ``mean±std``.

    Parameters
    ----------
    results : mapping of setting name -> EvalResult
        e.g. ``{"Pairwise": ..., "Pointwise": ...}``; the sample count is added to the header.
    """
    header = "| Method | " + " | ".join(METRIC_LABELS[m] for m in metrics) + " |"
    lines = [header, "|---|" + "---|" * len(metrics)]
    for setting, result in results.items():
        summary = summarize(result.scores)
        n = int(result.scores["n"].iloc[0]) if len(result.scores) else 0
        for protocol in summary.index.get_level_values(0).unique():
            lines.append(f"| **{setting} ({n} samples), {protocol}**: {PROTOCOLS[protocol]} |" + " |" * len(metrics))
            for model, row in summary.loc[protocol].iterrows():
                cells = [f"{row[f'{m}_mean']:.4f}±{row[f'{m}_std']:.4f}" for m in metrics]
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_regression(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    groups: pd.Series | np.ndarray,
    *,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
) -> pd.DataFrame:
    """Out-of-fold R² of a random-forest regressor (pointwise Likert score, appendix B.3).

    Uses the implicit-feedback and text features (no selection); ``paper`` and ``ungrouped``
    are the same here (no selection to leak), so protocols map to grouped / ungrouped folds.

    Returns
    -------
    DataFrame
        One row per (protocol, seed) with ``r2`` and ``n``.
    """
    y = np.asarray(y, dtype=float)
    groups = np.asarray(groups)
    X = _rankable(X)
    rows = []
    for protocol in config.protocols:
        for seed in config.seeds:
            if protocol == "grouped":
                splits = GroupKFold(n_splits=config.n_splits, shuffle=True, random_state=seed).split(X, y, groups)
            else:
                splits = KFold(n_splits=config.n_splits, shuffle=True, random_state=seed).split(X)
            pred = np.full(len(y), np.nan)
            model = RandomForestRegressor(
                n_estimators=config.regression_n_estimators, max_depth=10, min_samples_split=10, min_samples_leaf=5,
                random_state=seed, n_jobs=config.selector_n_jobs,
            )  # fmt: skip
            for train, test in splits:
                fitted = clone(model).fit(X.iloc[train], y[train])
                pred[test] = fitted.predict(X.iloc[test])
            rows.append({"protocol": protocol, "seed": seed, "r2": r2_score(y, pred), "n": len(y)})
    return pd.DataFrame(rows)
