"""Label direction, nested selection, grouped folds, out-of-fold predictions and Table 2 layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from analysis.reward import (
    EvalConfig,
    ForestParams,
    ModelSpec,
    TopKImportance,
    evaluate_table,
    format_table,
    pairwise_labels,
    pointwise_labels,
    swap_sides,
    winner_from_prob,
)
from analysis.reward.evaluate import balanced_subsample, make_splits

FAST = ForestParams(n_estimators=30, n_jobs=1)


def _synthetic(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Side 1 preferred (y=1) when it was read longer; 8 workers; noise columns."""
    rng = np.random.default_rng(seed)
    t1, t2 = rng.exponential(30, n), rng.exponential(30, n)
    X = pd.DataFrame({
        "gaze.reviewing_time.1": t1, "gaze.reviewing_time.2": t2,
        "gaze.reviewing_time.diff": t1 - t2, "gaze.reviewing_time.ratio": (t1 + 1) / (t2 + 1),
        "mouse.noise.1": rng.normal(size=n), "mouse.noise.2": rng.normal(size=n),
        "text.query_length": rng.integers(5, 100, n).astype(float),
    })
    y = (t1 > t2).astype(int)
    groups = np.repeat(np.arange(8), n // 8 + 1)[:n]
    return X, y, groups


def test_pairwise_labels_parse_float_strings() -> None:
    q = pd.DataFrame({"query_id": [1, 2, 3, 4, 5], "preferred": ["1.0", "2.0", None, 1.0, 2]})
    y = pairwise_labels(q)
    assert y.to_dict() == {1: 1, 2: 0, 4: 1, 5: 0}


def test_pointwise_labels() -> None:
    q = pd.DataFrame({"query_id": [1, 2, 3], "better_than_previous": [None, True, False]})
    assert pointwise_labels(q).to_dict() == {2: 1, 3: 0}


def test_winner_probability_is_of_the_predicted_winner() -> None:
    winner, p = winner_from_prob(np.array([0.9, 0.2, 0.5]))
    assert list(winner) == [1, 2, 1]
    np.testing.assert_allclose(p, [0.9, 0.8, 0.5])


def test_swapping_sides_flips_the_prediction() -> None:
    X, y, _ = _synthetic(300)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    clear = (X["gaze.reviewing_time.ratio"] > 3) | (X["gaze.reviewing_time.ratio"] < 1 / 3)
    p = model.predict_proba(X[clear])[:, 1]
    p_swapped = model.predict_proba(swap_sides(X[clear]))[:, 1]
    assert ((p > 0.5) != (p_swapped > 0.5)).mean() > 0.9
    swapped = swap_sides(X)
    np.testing.assert_allclose(swapped["gaze.reviewing_time.1"], X["gaze.reviewing_time.2"])
    np.testing.assert_allclose(swapped["gaze.reviewing_time.diff"], -X["gaze.reviewing_time.diff"])


class CountingSelector(TopKImportance):
    fits: list[int] = []

    def fit(self, X, y):
        CountingSelector.fits.append(len(X))
        return super().fit(X, y)


@pytest.mark.parametrize("protocol", ["grouped", "ungrouped", "paper"])
def test_selection_is_nested_in_folds_except_paper(protocol: str) -> None:
    X, y, groups = _synthetic()
    CountingSelector.fits = []
    config = EvalConfig(seeds=(0, 1), protocols=(protocol,), k=3, selector_n_jobs=1)
    specs = [ModelSpec("RF + IF", use_if=True, make_classifier=FAST.classifier)]

    def make_selector(seed: int) -> CountingSelector:
        return CountingSelector(3, random_state=seed, estimator=RandomForestClassifier(20, random_state=seed))

    evaluate_table(X, y, groups=groups, specs=specs, config=config, make_selector=make_selector)
    if protocol == "paper":
        assert CountingSelector.fits == [len(X)] * 2  # once per seed, on all rows (leaky)
    else:
        assert len(CountingSelector.fits) == 2 * config.n_splits
        assert all(n < len(X) for n in CountingSelector.fits)  # training folds only


def test_grouped_folds_never_share_a_worker() -> None:
    _, y, groups = _synthetic()
    for train, test in make_splits("grouped", y, groups, 5, seed=3):
        assert not set(groups[train]) & set(groups[test])


def test_balanced_subsample() -> None:
    y = np.array([1] * 70 + [0] * 30)
    idx = balanced_subsample(y, 0)
    assert (y[idx] == 1).sum() == 30 and (y[idx] == 0).sum() == 30
    assert not np.array_equal(idx, balanced_subsample(y, 1))


def test_out_of_fold_predictions_and_table_layout() -> None:
    X, y, groups = _synthetic()
    specs = [
        ModelSpec("RF + Text lengths", keep_groups=("text",), make_classifier=FAST.classifier),
        ModelSpec("RF + IF", use_if=True, make_classifier=FAST.classifier),
    ]
    config = EvalConfig(seeds=(0,), k=3, selector_n_jobs=1)
    result = evaluate_table(X, y, groups=groups, query_ids=np.arange(100, 100 + len(y)), specs=specs, config=config)
    oof = result.oof
    assert set(oof["protocol"]) == {"paper", "grouped", "ungrouped"}
    one = oof[(oof["protocol"] == "grouped") & (oof["model"] == "RF + IF")]
    assert sorted(one["query_id"]) == list(range(100, 100 + len(y)))  # every labelled pair once
    assert (oof["p_winner"] >= 0.5).all()
    np.testing.assert_array_equal(oof["winner"], np.where(oof["prob_1"] >= 0.5, 1, 2))
    assert set(one["fold"]) == set(range(5))
    # the signal is learnable: IF beats chance clearly on this synthetic data
    acc = result.scores.set_index(["protocol", "model"]).loc[("grouped", "RF + IF"), "accuracy"]
    assert acc > 0.8
    table = format_table({"Pairwise": result})
    lines = table.splitlines()
    assert lines[0] == "| Method | Accuracy | F1 Class 1 | F1 Class 0 | AUC |"
    assert sum("**Pairwise (120 samples)" in line for line in lines) == 3
    assert any(line.startswith("| RF + IF | ") and "±" in line for line in lines)


def test_crossfit_calibration_never_sees_the_calibrated_folds_labels() -> None:
    from analysis.reward.evaluate import crossfit_calibrated

    rng = np.random.default_rng(0)
    prob = rng.uniform(0.3, 0.7, 200)
    y = (rng.uniform(size=200) < prob ** 3 / (prob ** 3 + (1 - prob) ** 3)).astype(int)  # raw scores too timid
    fold = np.repeat(np.arange(5), 40)
    cal = crossfit_calibrated(prob, y, fold, "platt")
    flipped = y.copy()
    flipped[fold == 2] = 1 - flipped[fold == 2]
    cal_flipped = crossfit_calibrated(prob, flipped, fold, "platt")
    np.testing.assert_array_equal(cal[fold == 2], cal_flipped[fold == 2])  # fold 2 mapped without its labels
    assert not np.allclose(cal[fold != 2], cal_flipped[fold != 2])  # the others did learn from fold 2
    assert np.ptp(cal) > np.ptp(prob)  # the timid scores are stretched
    unscored = prob.copy()
    unscored[:3] = np.nan
    assert np.isnan(crossfit_calibrated(unscored, y, fold, "platt")[:3]).all()


class CountingForest(RandomForestClassifier):
    fits: list[int] = []

    def fit(self, X, y, sample_weight=None):
        CountingForest.fits.append(len(X))
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("fit", ["crossfit", "inner"])
def test_grouped_calibration_costs_refits_only_when_inner(fit: str) -> None:
    X, y, groups = _synthetic()
    specs = [ModelSpec("RF", make_classifier=lambda seed: CountingForest(20, random_state=seed))]
    config = EvalConfig(seeds=(0,), protocols=("grouped",), k=3, selector_n_jobs=1, n_jobs=1,
                        calibration="platt", calibration_fit=fit)
    CountingForest.fits = []
    result = evaluate_table(X, y, groups=groups, specs=specs, config=config)
    inner = 3  # calibration_splits
    assert len(CountingForest.fits) == config.n_splits * (1 if fit == "crossfit" else 1 + inner)
    assert result.oof["prob_1_cal"].notna().all()
    assert {"accuracy_cal", "ece_cal"} <= set(result.scores.columns)


def test_the_admin_default_run_is_the_library_default() -> None:
    """``EvalConfig()`` and ``default_specs()`` are what the admin's default run fits, so a notebook
    following the pipeline's docstring fits the same models."""
    from analysis.pipeline import DEFAULT_REWARD_PARAMS, reward_run_config
    from analysis.reward import ForestParams, default_specs
    from analysis.reward.models import rf_specs

    def fitted(specs) -> list:  # bound methods compare by identity: compare what they build
        return [(s.name, s.use_if, s.keep_groups, s.drop_groups, repr(s.make_classifier(0))) for s in specs]

    config, specs, point = reward_run_config({})
    assert config == EvalConfig()
    assert fitted(specs) == fitted(default_specs()) and fitted(point) == fitted(rf_specs(default_specs()))
    assert DEFAULT_REWARD_PARAMS["trees"] == ForestParams().n_estimators
    # and a run that changes a setting does not fit the default models
    config, specs, _ = reward_run_config({"trees": 100, "calibration": "platt"})
    assert config != EvalConfig() and fitted(specs) != fitted(default_specs())
