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
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from .calibration import Calibrator, inner_oof_scores
from .intervals import brier, expected_calibration_error
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
    """Evaluation settings. ``EvalConfig()`` with :func:`~analysis.reward.models.default_specs` is
    the admin's default run (``analysis.pipeline.DEFAULT_REWARD_PARAMS`` is read from it), so a
    notebook and the admin fit the same models.

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
        Threads of the ranking forest when folds run one after another (``n_jobs=1``).
    selector_n_estimators : int
        Trees of the ranking forest (appendix B.4: 500). Default 100: at 50 its importances got
        noisy enough to move the pointwise IF rows by more than their spread, for a few CPU
        seconds (``benchmarks/reward_trees.py`` for the accuracy/trees curve).
    regression_n_estimators : int
        Trees of the Likert regressor (a run's ``max(50, trees // 2)``).
    n_jobs : int
        Folds fitted in parallel (joblib). Parallelism over folds beats threads inside forests
        of a few hundred rows, where thread start-up costs about as much as the trees.
    backend : str
        joblib backend: ``threading`` (default: tree building releases the GIL, and threads work
        inside daemonic Celery workers) or ``loky`` (processes).
    calibration : str
        ``none`` (default: on dev, Platt and isotonic both raised the Brier score and neither
        lowered ECE, README), ``platt`` or ``isotonic``: calibrate every model's P(class 1) inside
        the training folds of the ``grouped`` protocol (see :mod:`analysis.reward.calibration`).
    calibration_splits : int
        Inner worker-grouped folds whose out-of-fold scores fit the calibrator (``inner`` fit).
    calibration_fit : str
        Where the calibrator of a test fold gets its (score, label) pairs. ``crossfit`` (default):
        the out-of-fold scores of the *other* outer folds of the same seed, so no model is fitted
        again and the calibrator never sees the test fold's labels; the scores it learns from
        come from models of the same size as the one being calibrated (4/5 of the rows), which
        the inner CV's smaller models are not. ``inner``: a worker-grouped inner CV inside each
        training fold (refits every model ``calibration_splits`` times; tripled the cost of the
        grouped protocol and was 70 % of a default run on dev, README analysis section).
    """

    n_splits: int = 5
    seeds: tuple[int, ...] = (0, 1, 2)
    protocols: tuple[str, ...] = ("paper", "grouped", "ungrouped")
    k: int = 50
    balance: bool = False
    selector_n_jobs: int | None = 2
    selector_n_estimators: int = 100
    regression_n_estimators: int = 50
    n_jobs: int = 2
    backend: str = "threading"
    calibration: str = "none"
    calibration_splits: int = 3
    calibration_fit: str = "crossfit"


DEFAULT_EVAL_CONFIG = EvalConfig()


class EvaluationCancelled(RuntimeError):
    """``should_stop()`` returned True between folds: nothing half-made is returned."""


@dataclass
class EvalResult:
    """Output of :func:`evaluate_table`.

    Attributes
    ----------
    scores : DataFrame
        One row per (protocol, model, seed): :data:`METRICS`, ``ece``, ``brier`` and ``n`` (rows
        evaluated); where calibrated, also ``accuracy_cal``, ``ece_cal``, ``brier_cal``.
    oof : DataFrame
        Out-of-fold predictions: ``query_id``, ``worker``, ``y``, ``prob_1`` (P(response 1
        preferred)), ``winner`` (1 or 2, coded like ``preferred``), ``p_winner`` (probability of
        the predicted winner, >= 0.5), ``prob_1_cal`` (calibrated P(class 1); NaN where the
        protocol is not calibrated), ``fold``, ``protocol``, ``model``, ``seed``.
    importances : DataFrame
        Ranking importances of the selector fits: ``protocol``, ``seed``, ``fold`` (-1 = all
        data), ``feature``, ``importance``.
    timings : dict
        ``wall_s`` and the summed seconds per stage over all folds: ``selector_s``, ``models_s``
        (per model under ``model:<name>``) and ``calibration_s``; with ``n_jobs > 1`` the stage
        sums exceed the wall time.
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
    """Accuracy, F1 of each class and ROC AUC of P(class 1) at threshold 0.5, plus ECE and Brier."""
    pred = (prob_1 >= 0.5).astype(int)
    return {
        "accuracy": accuracy_score(y, pred),
        "f1_1": f1_score(y, pred, pos_label=1, zero_division=0.0),
        "f1_0": f1_score(y, pred, pos_label=0, zero_division=0.0),
        "auc": roc_auc_score(y, prob_1) if len(np.unique(y)) == 2 else float("nan"),
        "ece": expected_calibration_error(y, prob_1),
        "brier": brier(y, prob_1),
    }


def rankable_columns(X: pd.DataFrame) -> pd.DataFrame:
    """The columns the IF ranking may choose from (every group but :data:`UNRANKED_GROUPS`)."""
    return X.loc[:, [c for c in X.columns if column_group(c) not in UNRANKED_GROUPS]]


def _limit_threads(estimator, n_jobs: int | None):
    """Set every ``*n_jobs`` parameter (pipeline steps, nested forests) to ``n_jobs``."""
    # only where a value was set: LogisticRegression's n_jobs is deprecated (and unused)
    params = {k: n_jobs for k, v in estimator.get_params(deep=True).items()
              if (k == "n_jobs" or k.endswith("__n_jobs")) and v is not None}
    return estimator.set_params(**params) if params else estimator


def _fit_selector(selector: TopKImportance, X: pd.DataFrame, y: np.ndarray, n_jobs: int | None) -> tuple:
    started = time.perf_counter()
    _limit_threads(selector, n_jobs).fit(X, y)
    return selector, time.perf_counter() - started


def fit_model(
    spec: ModelSpec, X: pd.DataFrame, y: np.ndarray, *, seed: int, columns: Sequence[str] | None,
    n_jobs: int | None,
):
    """Fit one model of ``spec`` (IF models on ``columns``) with at most ``n_jobs`` threads."""
    model = _limit_threads(spec.pipeline(seed, fixed_columns=columns if spec.use_if else None), n_jobs)
    try:
        return model.fit(X, y)
    except EmptyFeatureSet:
        # e.g. "IF - gaze" when every important feature is a gaze feature: the honest
        # prediction from no features is the training prior.
        return DummyClassifier(strategy="prior").fit(X, y)


@dataclass
class _Plan:
    """One (protocol, seed) of an evaluation: its rows, folds and, as folds end, its predictions.

    ``fixed_columns`` are the IF columns ranked once on all rows (``paper``); ``prob`` and
    ``prob_cal`` map model name -> P(class 1) per row (NaN until its fold is done); ``fold_of``
    is each row's test fold (-1 until then).
    """

    protocol: str
    seed: int
    rows: np.ndarray
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    fixed_columns: Sequence[str] | None = None
    prob: dict[str, np.ndarray] = field(default_factory=dict)
    prob_cal: dict[str, np.ndarray] = field(default_factory=dict)
    fold_of: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))

    def start(self, specs: Sequence[ModelSpec]) -> None:
        n = len(self.y)
        self.prob = {s.name: np.full(n, np.nan) for s in specs}
        self.prob_cal = {s.name: np.full(n, np.nan) for s in specs}
        self.fold_of = np.full(n, -1)


def _make_plans(X: pd.DataFrame, y: np.ndarray, *, groups: np.ndarray, config: EvalConfig) -> list[_Plan]:
    """One plan per (protocol, seed), protocols outermost (the order of the score rows)."""
    plans = []
    for protocol in config.protocols:
        for seed in config.seeds:
            rows = balanced_subsample(y, seed) if config.balance else np.arange(len(y))
            ys, gs = y[rows], groups[rows]
            plans.append(_Plan(protocol=protocol, seed=seed, rows=rows, X=X.iloc[rows], y=ys, groups=gs,
                               splits=make_splits(protocol, ys, gs, config.n_splits, seed)))
    return plans


def _selector_factory(config: EvalConfig, n_jobs: int | None) -> Callable[[int], TopKImportance]:
    """The IF selector of a seed: ``config.k`` columns ranked by a ``config.selector_n_estimators`` forest."""

    def make_selector(seed: int) -> TopKImportance:
        forest = default_ranking_forest(seed, n_jobs)
        forest.set_params(n_estimators=config.selector_n_estimators)
        return TopKImportance(config.k, estimator=forest, random_state=seed)

    return make_selector


def _rank_once(
    plans: Sequence[_Plan], *, make_selector: Callable[[int], TopKImportance], config: EvalConfig,
    n_jobs: int | None, should_stop, timings: dict, importances: list,
) -> None:
    """The ``paper`` protocol's leak: rank IF once per seed on all rows, before any fold."""
    paper = [p for p in plans if p.protocol == "paper"]
    fitted = _run_parallel(
        [delayed(_fit_selector)(make_selector(p.seed), rankable_columns(p.X), p.y, n_jobs) for p in paper],
        config, should_stop, None,
    )
    for plan, (selector, seconds) in zip(paper, fitted, strict=True):
        plan.fixed_columns = selector.selected_columns_
        timings["selector_s"] += seconds
        importances.append(_importances(selector.importances_, "paper", plan.seed, -1))


def _fold_calls(
    plans: Sequence[_Plan], *, specs: Sequence[ModelSpec], make_selector: Callable[[int], TopKImportance],
    config: EvalConfig, n_jobs: int | None, share_paper_folds: bool,
) -> tuple[list, list[tuple[int, int]]]:
    """The joblib calls of every training fold, and the (plan index, fold) each one fills."""
    need_if = any(s.use_if for s in specs)
    calls, keys = [], []
    for i, plan in enumerate(plans):
        task_specs = [s for s in specs if s.use_if] if share_paper_folds and plan.protocol == "ungrouped" else specs
        if not task_specs:
            continue
        calibrated = plan.protocol == "grouped" and config.calibration != "none"
        calibration = config.calibration if calibrated and config.calibration_fit == "inner" else "none"
        for fold, (train, test) in enumerate(plan.splits):
            selector = make_selector(plan.seed) if need_if and plan.fixed_columns is None else None
            calls.append(delayed(_fold_task)(
                plan.X, plan.y, groups=plan.groups, train=train, test=test, specs=task_specs,
                fixed_columns=plan.fixed_columns, selector=selector, seed=plan.seed, calibration=calibration,
                calibration_splits=config.calibration_splits, n_jobs=n_jobs,
            ))
            keys.append((i, fold))
    return calls, keys


def _fold_task(X: pd.DataFrame, y: np.ndarray, **kwargs) -> dict:
    """Everything one training fold needs: the IF ranking (once, shared by every IF model),
    each model's test-fold P(class 1), and (grouped protocol) its calibrated copy.

    OpenMP (histogram boosting) is held to ``n_jobs`` threads: on a busy 2-core machine its
    spinning threads made HGB + IF 60 % of a whole run (323 of 536 model seconds).
    """
    with threadpool_limits(limits=kwargs["n_jobs"] or 1, user_api="openmp"):
        return _fit_fold(X, y, **kwargs)


def _fit_fold(
    X: pd.DataFrame, y: np.ndarray, *, groups: np.ndarray, train: np.ndarray, test: np.ndarray,
    specs: Sequence[ModelSpec], fixed_columns: Sequence[str] | None, selector: TopKImportance | None,
    seed: int, calibration: str, calibration_splits: int, n_jobs: int | None,
) -> dict:
    timings = {"selector_s": 0.0, "calibration_s": 0.0}
    X_train, X_test, y_train = X.iloc[train], X.iloc[test], y[train]
    columns, importances = fixed_columns, None
    if columns is None and selector is not None:
        selector, timings["selector_s"] = _fit_selector(selector, rankable_columns(X_train), y_train, n_jobs)
        columns, importances = selector.selected_columns_, selector.importances_
    prob, prob_cal = {}, {}
    for spec in specs:
        started = time.perf_counter()
        model = fit_model(spec, X_train, y_train, seed=seed, columns=columns, n_jobs=n_jobs)
        prob[spec.name] = prob_class_1(model, X_test)
        timings[f"model:{spec.name}"] = time.perf_counter() - started
        if calibration != "none":
            started = time.perf_counter()
            prob_cal[spec.name] = inner_calibrated(
                spec, X_train, y_train, groups=groups[train], scores=prob[spec.name], seed=seed, columns=columns,
                method=calibration, n_splits=calibration_splits, n_jobs=n_jobs,
            )
            timings["calibration_s"] += time.perf_counter() - started
    return {"prob": prob, "prob_cal": prob_cal, "importances": importances, "timings": timings}


def inner_calibrated(
    spec: ModelSpec, X: pd.DataFrame, y: np.ndarray, *, groups: np.ndarray, scores: np.ndarray, seed: int,
    columns: Sequence[str] | None, method: str, n_splits: int, n_jobs: int | None,
) -> np.ndarray:
    """``scores`` mapped by a calibrator fitted on a worker-grouped inner CV of the training fold
    (``calibration_fit="inner"``)."""

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        inner = fit_model(spec, X.iloc[tr], y[tr], seed=seed, columns=columns, n_jobs=n_jobs)
        return prob_class_1(inner, X.iloc[te])

    # The inner folds reuse this fold's IF columns (ranked on the whole training fold):
    # re-ranking per inner fold would triple the cost for a small optimism in the scores.
    inner_scores = inner_oof_scores(fit_predict, y, groups, n_splits)
    ok = ~np.isnan(inner_scores)
    return Calibrator(method).fit(inner_scores[ok], y[ok]).transform(scores)


def crossfit_calibrated(prob_1: np.ndarray, y: np.ndarray, fold: np.ndarray, method: str) -> np.ndarray:
    """Calibrated out-of-fold P(class 1): each fold's scores mapped by a calibrator fitted on the
    other folds' out-of-fold scores and labels (``calibration_fit="crossfit"``).

    Rows without a fold (``fold < 0``) or a score stay NaN; a fold whose other folds have no
    score keeps NaN too, so a half-made calibration is never reported as one.
    """
    out = np.full(len(prob_1), np.nan)
    scored = ~np.isnan(prob_1) & (fold >= 0)
    for k in np.unique(fold[scored]):
        test, train = scored & (fold == k), scored & (fold != k)
        if train.any():
            out[test] = Calibrator(method).fit(prob_1[train], y[train]).transform(prob_1[test])
    return out


def _run_parallel(calls: list, config: EvalConfig, should_stop, on_done) -> list:
    """Run joblib ``delayed`` calls; check ``should_stop`` and report progress as each ends."""
    out = []
    # sklearn's Parallel also for n_jobs=1 (runs in this thread): calling its ``delayed``
    # functions directly warns once per call.
    results = Parallel(n_jobs=config.n_jobs, backend=config.backend, return_as="generator")(calls)
    for result in results:
        if should_stop is not None and should_stop():
            raise EvaluationCancelled("evaluation cancelled between folds")
        out.append(result)
        if on_done is not None:
            on_done(len(out), len(calls))
    return out


def _collect_folds(
    plans: Sequence[_Plan], keys: Sequence[tuple[int, int]], outputs: Sequence[dict], *, timings: dict,
    importances: list,
) -> None:
    """Put each fold's test predictions, timings and ranking into its plan."""
    for (i, fold), out in zip(keys, outputs, strict=True):
        plan = plans[i]
        test = plan.splits[fold][1]
        plan.fold_of[test] = fold
        for name, p in out["prob"].items():
            plan.prob[name][test] = p
        for name, p in out["prob_cal"].items():
            plan.prob_cal[name][test] = p
        for key, seconds in out["timings"].items():
            timings[key] = timings.get(key, 0.0) + seconds
        if out["importances"] is not None:
            importances.append(_importances(out["importances"], plan.protocol, plan.seed, fold))


def _share_paper_folds(plans: Sequence[_Plan], specs: Sequence[ModelSpec]) -> None:
    """Models without IF: the ``ungrouped`` folds of a seed are its ``paper`` folds, so they were
    fitted once (under ``paper``) and their predictions are copied."""
    paper_of_seed = {p.seed: p for p in plans if p.protocol == "paper"}
    for plan in plans:
        if plan.protocol == "ungrouped":
            paper = paper_of_seed[plan.seed]
            plan.fold_of = paper.fold_of if (plan.fold_of < 0).all() else plan.fold_of
            for spec in specs:
                if not spec.use_if:
                    plan.prob[spec.name] = paper.prob[spec.name]


def _crossfit_calibrate(plans: Sequence[_Plan], specs: Sequence[ModelSpec], *, method: str) -> None:
    for plan in plans:
        if plan.protocol == "grouped":
            for spec in specs:
                plan.prob_cal[spec.name] = crossfit_calibrated(plan.prob[spec.name], plan.y, plan.fold_of, method)


def _scores_and_oof(
    plans: Sequence[_Plan], specs: Sequence[ModelSpec], *, query_ids: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One score row per (plan, model), from the pooled out-of-fold predictions; and those predictions."""
    score_rows, oof_parts = [], []
    for plan in plans:
        for spec in specs:
            p1, pc = plan.prob[spec.name], plan.prob_cal[spec.name]
            row = {"protocol": plan.protocol, "model": spec.name, "seed": plan.seed, "n": len(plan.rows),
                   **classification_scores(plan.y, p1)}
            if not np.isnan(pc).any():
                cal = classification_scores(plan.y, pc)
                row.update({"accuracy_cal": cal["accuracy"], "ece_cal": cal["ece"], "brier_cal": cal["brier"]})
            score_rows.append(row)
            winner, p_winner = winner_from_prob(p1)
            oof_parts.append(pd.DataFrame(
                {"query_id": query_ids[plan.rows], "worker": plan.groups, "y": plan.y, "prob_1": p1,
                 "winner": winner, "p_winner": p_winner, "prob_1_cal": pc, "fold": plan.fold_of,
                 "protocol": plan.protocol, "model": spec.name, "seed": plan.seed}
            ))
    oof = pd.concat(oof_parts, ignore_index=True) if oof_parts else pd.DataFrame()
    return pd.DataFrame(score_rows), oof


def evaluate_table(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    groups: pd.Series | np.ndarray,
    query_ids: Sequence[int] | None = None,
    specs: Sequence[ModelSpec] | None = None,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
    make_selector: Callable[[int], TopKImportance] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Cross-validate every model under every protocol (shaped like ``sklearn.model_selection.cross_validate``:
    data positional, everything else by keyword).

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
    should_stop : callable() -> bool, optional
        Polled after every fold; True raises :class:`EvaluationCancelled` (job cancellation).
    on_progress : callable(done, total), optional
        Called after every fold.

    Notes
    -----
    ``paper`` and ``ungrouped`` use the same stratified folds for a seed, so the models without
    IF (which do not depend on the ranking) are fitted once and shared by both protocols.
    Folds of all protocols and seeds run in one joblib pool (``config.n_jobs``).

    Returns
    -------
    EvalResult
    """
    wall = time.perf_counter()
    specs = list(default_specs() if specs is None else specs)
    y = np.asarray(y, dtype=np.int64)
    qids = np.asarray(X.index if query_ids is None else query_ids)
    for protocol in config.protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    inner_jobs = config.selector_n_jobs if config.n_jobs == 1 else 1
    make_selector = make_selector or _selector_factory(config, inner_jobs)
    plans = _make_plans(X, y, groups=np.asarray(groups), config=config)
    timings: dict[str, float] = {"selector_s": 0.0, "calibration_s": 0.0}
    importances: list[pd.DataFrame] = []
    if any(s.use_if for s in specs):
        _rank_once(plans, make_selector=make_selector, config=config, n_jobs=inner_jobs, should_stop=should_stop,
                   timings=timings, importances=importances)
    share = "paper" in config.protocols and "ungrouped" in config.protocols
    calls, keys = _fold_calls(plans, specs=specs, make_selector=make_selector, config=config, n_jobs=inner_jobs,
                              share_paper_folds=share)
    outputs = _run_parallel(calls, config, should_stop, on_progress)
    for plan in plans:
        plan.start(specs)
    _collect_folds(plans, keys, outputs, timings=timings, importances=importances)
    if share:
        _share_paper_folds(plans, specs)
    if config.calibration != "none" and config.calibration_fit == "crossfit":
        started = time.perf_counter()
        _crossfit_calibrate(plans, specs, method=config.calibration)
        timings["calibration_s"] += time.perf_counter() - started
    timings["models_s"] = sum(v for k, v in timings.items() if k.startswith("model:"))
    scores, oof = _scores_and_oof(plans, specs, query_ids=qids)
    timings["wall_s"] = time.perf_counter() - wall
    return EvalResult(
        scores=scores, oof=oof,
        importances=pd.concat(importances, ignore_index=True) if importances else pd.DataFrame(),
        timings=timings,
    )


def prob_class_1(model, X: pd.DataFrame) -> np.ndarray:
    """P(y = 1) whatever the order of ``classes_``."""
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    if 1 not in classes:
        return np.zeros(len(X))
    return proba[:, classes.index(1)]


def _importances(imp: pd.Series, protocol: str, seed: int, fold: int) -> pd.DataFrame:
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


def _fit_regressor(model, X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    return clone(model).fit(X.iloc[train], y[train]).predict(X.iloc[test])


def evaluate_regression(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    groups: pd.Series | np.ndarray,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
) -> pd.DataFrame:
    """Out-of-fold R² of a random-forest regressor (pointwise Likert score, appendix B.3).

    Uses the implicit-feedback and text features (no selection); ``paper`` and ``ungrouped``
    are the same here (no selection to leak), so protocols map to grouped / ungrouped folds.
    Folds run in parallel like :func:`evaluate_table` (``config.n_jobs``).

    Returns
    -------
    DataFrame
        One row per (protocol, seed) with ``r2`` and ``n``.
    """
    y = np.asarray(y, dtype=float)
    groups = np.asarray(groups)
    X = rankable_columns(X)
    inner_jobs = config.selector_n_jobs if config.n_jobs == 1 else 1
    calls, keys = [], []
    for protocol in config.protocols:
        for seed in config.seeds:
            if protocol == "grouped":
                splits = GroupKFold(n_splits=config.n_splits, shuffle=True, random_state=seed).split(X, y, groups)
            else:
                splits = KFold(n_splits=config.n_splits, shuffle=True, random_state=seed).split(X)
            model = RandomForestRegressor(
                n_estimators=config.regression_n_estimators, max_depth=10, min_samples_split=10, min_samples_leaf=5,
                random_state=seed, n_jobs=inner_jobs,
            )
            for train, test in splits:
                calls.append(delayed(_fit_regressor)(model, X, y, train, test))
                keys.append((protocol, seed, test))
    outputs = _run_parallel(calls, config, None, None)
    pred: dict[tuple[str, int], np.ndarray] = {}
    for (protocol, seed, test), out in zip(keys, outputs, strict=True):
        pred.setdefault((protocol, seed), np.full(len(y), np.nan))[test] = out
    return pd.DataFrame(
        [{"protocol": p, "seed": s, "r2": r2_score(y, v), "n": len(y)} for (p, s), v in pred.items()]
    )
