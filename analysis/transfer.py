"""Transfer evaluation: fit the reward models on one set of workers, score them on another.

The lab's question is whether a reward model works on the *next* cohort. Cross-validation
answers it only indirectly; here the models are fitted once on the training workers (IF ranked
on them only, calibrated by an inner worker-grouped CV on them) and scored on test workers they
never saw, with a 95 % interval from a bootstrap over TEST WORKERS and the paired interval of the
accuracy difference to the length-only model on the same rows.

Usage::

    python -m analysis.transfer TRAIN_RELEASE_DIR TEST_RELEASE_DIR [--seeds 0,1,2] [--json OUT]
        [--trees 100]

Pure (no Django): ``manage.py reward_models --train-workers/--test-workers`` calls
:func:`transfer_evaluate` on database frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.reward.evaluate import (
    DEFAULT_EVAL_CONFIG,
    EvalConfig,
    balanced_subsample,
    fit_model,
    inner_calibrated,
    prob_class_1,
    rankable_columns,
)
from analysis.reward.models import ModelSpec, default_specs, rf_specs
from analysis.reward.selection import TopKImportance, default_ranking_forest
from analysis.reward.summary import SUMMARY_COLUMNS, format_interval_table, predictions_summary


def transfer_predictions(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    groups_test: np.ndarray,
    *,
    specs: Sequence[ModelSpec] | None = None,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
    query_ids: Sequence | None = None,
) -> pd.DataFrame:
    """Fit every model on the training workers (once per seed) and predict the test rows.

    Returns out-of-sample rows ``query_id, worker, y, prob_1, prob_1_cal, model, protocol
    ("transfer"), seed`` (the layout of :attr:`EvalResult.oof`).
    """
    specs = list(default_specs() if specs is None else specs)
    y_train, y_test = np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    groups_train, groups_test = np.asarray(groups_train), np.asarray(groups_test)
    qids = np.asarray(X_test.index if query_ids is None else query_ids)
    shared = set(groups_train) & set(groups_test)
    if shared:
        raise ValueError(f"{len(shared)} workers are in both the training and the test set")
    parts = []
    for seed in config.seeds:
        rows = balanced_subsample(y_train, seed) if config.balance else np.arange(len(y_train))
        Xs, ys, gs = X_train.iloc[rows], y_train[rows], groups_train[rows]
        columns = None
        if any(s.use_if for s in specs):
            forest = default_ranking_forest(seed, config.selector_n_jobs)
            forest.set_params(n_estimators=config.selector_n_estimators)
            columns = TopKImportance(config.k, estimator=forest).fit(rankable_columns(Xs), ys).selected_columns_
        for spec in specs:
            model = fit_model(spec, Xs, ys, seed=seed, columns=columns, n_jobs=config.selector_n_jobs)
            p1 = prob_class_1(model, X_test)
            pc = np.full(len(p1), np.nan)
            if config.calibration != "none":
                pc = inner_calibrated(
                    spec, Xs, ys, groups=gs, scores=p1, seed=seed, columns=columns, method=config.calibration,
                    n_splits=config.calibration_splits, n_jobs=config.selector_n_jobs,
                )
            parts.append(pd.DataFrame({"query_id": qids, "worker": groups_test, "y": y_test, "prob_1": p1,
                                       "prob_1_cal": pc, "model": spec.name, "protocol": "transfer",
                                       "seed": seed}))
    return pd.concat(parts, ignore_index=True)


def transfer_evaluate(
    train: dict[str, object],
    test: dict[str, object],
    *,
    specs=None,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
    n_boot: int = 2000,
) -> tuple[dict, pd.DataFrame]:
    """Summary per model of :func:`transfer_predictions`: ``(json_dict, predictions)``.

    ``train``/``test``: ``{"X": DataFrame, "y": array, "groups": array, "query_ids": array}``
    (an :class:`analysis.pipeline.LabelledSet` as ``vars()``). The dict maps model name to
    :data:`~analysis.reward.summary.SUMMARY_COLUMNS` (accuracy, acc_lo/hi, diff/diff_lo/hi vs
    the length-only model, auc, ece, brier, n_test, workers_test).
    """
    columns = [c for c in train["X"].columns if c in set(test["X"].columns)]
    preds = transfer_predictions(
        train["X"][columns], train["y"], train["groups"], test["X"][columns], test["y"], test["groups"],
        specs=specs, config=config, query_ids=test.get("query_ids"),
    )
    summary = predictions_summary(preds, n_boot=n_boot)
    out = {r["model"]: {k: _plain(r[k]) for k in SUMMARY_COLUMNS} for r in summary.to_dict("records")}
    return out, preds


def _plain(v):
    return (
        None
        if v is None or (isinstance(v, float) and np.isnan(v))
        else (float(v) if isinstance(v, float | np.floating) else int(v))
    )


def transfer_settings(
    train_features: pd.DataFrame,
    train_queries: pd.DataFrame,
    test_features: pd.DataFrame,
    test_queries: pd.DataFrame,
    *,
    config: EvalConfig = DEFAULT_EVAL_CONFIG,
    specs=None,
    n_boot: int = 2000,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Pairwise and pointwise transfer from feature tables: ``({setting: {model: metrics}}, summaries)``."""
    from analysis.pipeline import labelled_set

    result, summaries = {}, {}
    for mode in ("pairwise", "pointwise"):
        tr, te = labelled_set(train_features, train_queries, mode), labelled_set(test_features, test_queries, mode)
        if len(tr.y) < 10 or tr.y.nunique() < 2 or len(te.y) == 0:
            continue
        cfg = EvalConfig(**{**config.__dict__, "balance": mode == "pointwise"})
        all_specs = default_specs() if specs is None else list(specs)
        mode_specs = all_specs if mode == "pairwise" else rf_specs(all_specs)
        out, preds = transfer_evaluate(vars(tr), vars(te), specs=mode_specs, config=cfg, n_boot=n_boot)
        result[mode] = out
        summaries[mode.capitalize()] = predictions_summary(preds, n_boot=n_boot)
    return result, summaries


def _features_of(root: str, quality: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    from analysis import pipeline

    release = pipeline.load_release(root)
    table = pipeline.build_features(release, worker_normalise=True)
    feats = pipeline.apply_quality_filter(table.features, table.quality) if quality else table.features
    return feats, release.tables.queries


def main(argv: list[str] | None = None) -> int:
    from analysis.pipeline import reward_run_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_dir")
    parser.add_argument("test_dir")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trees", type=int, default=None)
    parser.add_argument("--no-quality-filter", action="store_true")
    parser.add_argument("--json", dest="json_out", help="write the per-setting, per-model metrics here")
    args = parser.parse_args(argv)
    params = {"seeds": [int(s) for s in args.seeds.split(",")], **({"trees": args.trees} if args.trees else {})}
    config, specs, _ = reward_run_config(params)
    train = _features_of(args.train_dir, not args.no_quality_filter)
    test = _features_of(args.test_dir, not args.no_quality_filter)
    result, summaries = transfer_settings(*train, *test, config=config, specs=specs)
    print(format_interval_table(summaries))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
