"""The study planner on planted data: a real signal gives a rising curve and a finite, right-sized
answer; no signal gives no answer. And the vote planner against a resampling simulation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import learning_curve as lc
from analysis.reward.evaluate import EvalConfig
from analysis.reward.models import ForestParams, ModelSpec
from analysis.reward.summary import LENGTH_BASELINE


def planted(workers: int, rows: int, signal: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows whose label shows in answer length a little and in one gaze feature by ``signal``."""
    rng = np.random.default_rng(seed)
    n = workers * rows
    y = rng.integers(0, 2, n)
    s = 2.0 * y - 1.0
    X = pd.DataFrame({
        "text.length_diff": 0.35 * s + rng.normal(0, 1, n),
        "gaze.dwell_diff": signal * s + rng.normal(0, 1, n),
        "mouse.noise": rng.normal(0, 1, n),
        "gaze.noise": rng.normal(0, 1, n),
    }, index=np.arange(n))
    groups = np.repeat([f"w{i:03d}" for i in range(workers)], rows)
    return X, y, groups


def specs() -> list[ModelSpec]:
    rf = ForestParams(n_estimators=30, min_samples_leaf=20).classifier
    return [ModelSpec(LENGTH_BASELINE, keep_groups=("text",), make_classifier=rf),
            ModelSpec(lc.TARGET_MODEL, use_if=True, make_classifier=rf)]


EVAL = EvalConfig(seeds=(0,), k=4, selector_n_estimators=30, n_jobs=1, selector_n_jobs=1, calibration="none")
CONFIG = lc.CurveConfig(repeats=4, test_share=0.4, step=10, n_boot=300, band_draws=60)


def true_study_size(signal: float, rows: int, level: float = 0.95) -> int:
    """What a very large study of these models measures: the increment over length-only and its
    per-worker spread, turned into the study size whose expected lower bound clears 0."""
    X, y, g = planted(400, rows, signal, seed=99)
    train = np.isin(g, np.unique(g)[:300])
    from analysis.transfer import transfer_predictions

    p = transfer_predictions(X[train], y[train], g[train], X[~train], y[~train], g[~train], specs=specs(),
                             config=EVAL)
    correct = {m: ((part["prob_1"] >= 0.5).astype(int) == part["y"]).to_numpy(float)
               for m, part in p.groupby("model")}
    d = pd.Series(correct[lc.TARGET_MODEL] - correct[LENGTH_BASELINE]).groupby(g[~train]).mean()
    delta, sd = float(d.mean()), float(d.std())
    z = lc._z(level)
    return int(np.ceil((z * sd / delta) ** 2 * CONFIG.planned_folds / (CONFIG.planned_folds - 1)))


def test_planted_signal_rises_and_needs_about_the_true_number_of_workers() -> None:
    X, y, g = planted(70, 12, signal=0.30)
    result = lc.plan_study(X, y, g, specs=specs(), eval_config=EVAL, config=CONFIG)
    diff = result.curve[result.curve["model"] == lc.TARGET_MODEL].set_index("n")["diff"]
    assert diff.iloc[-1] > 0.02  # behaviour beats length at the largest size
    needed = result.needed.workers
    truth = true_study_size(0.30, 12)
    assert needed is not None, result.needed.sentence
    assert truth / 2.5 <= needed <= truth * 2.5, (needed, truth)
    assert "workers" in result.needed.sentence and str(needed) in result.needed.sentence
    out = result.as_json()
    json.dumps(out)  # storable as the job's result
    assert out["workers_needed"] == needed and {"n", "model", "diff", "diff_lo", "diff_hi"} <= set(out["curve"][0])


def test_no_signal_says_no_study_size_will_do() -> None:
    X, y, g = planted(70, 12, signal=0.0)
    result = lc.plan_study(X, y, g, specs=specs(), eval_config=EVAL, config=CONFIG)
    assert result.needed.workers is None
    assert "no study" in result.needed.sentence


def test_power_law_fit_recovers_a_known_curve() -> None:
    n = np.repeat([8, 16, 24, 32, 48], 3).astype(float)
    rng = np.random.default_rng(1)
    values = lc.power_law(n, 0.08, 0.3, 0.7) + rng.normal(0, 0.002, len(n))
    draws = pd.DataFrame({"n": n, "diff": values, "repeat": np.tile([0, 1, 2], 5)})
    fit = lc.fit_power_law(draws, n_draws=50)
    assert abs(fit.params[0] - 0.08) < 0.02
    lo, hi = fit.band(np.array([100.0]))
    assert lo[0] <= fit.predict(100.0) <= hi[0]


@pytest.mark.parametrize("gap", [25, 50])
def test_votes_needed_separate_the_gap_about_as_often_as_promised(gap: float) -> None:
    (plan,) = lc.votes_needed([gap], design_effect=1.0, power=0.8)
    at = lc.simulate_separation(gap, plan.votes, workers=plan.votes, sims=120, rounds=150, seed=gap)
    below = lc.simulate_separation(gap, plan.votes // 4, workers=plan.votes // 4, sims=120, rounds=150, seed=gap)
    assert 0.65 <= at <= 0.93, at
    assert below < 0.5, below


def test_clustered_votes_need_more() -> None:
    (indep,) = lc.votes_needed([50], design_effect=1.0)
    (clustered,) = lc.votes_needed([50], design_effect=2.0)
    assert clustered.votes == pytest.approx(2 * indep.votes, rel=0.01)
    # with worker effects of that design effect, the independent count falls short
    power = lc.simulate_separation(50, indep.votes, workers=indep.votes // 20, design_effect=2.0, sims=120,
                                   rounds=150, seed=3)
    assert power < 0.7, power


def test_design_effect_is_about_one_for_independent_votes_and_above_for_clustered() -> None:
    rng = np.random.default_rng(0)
    models = ["a", "b", "c"]
    rows = []
    for w in range(60):
        bias = rng.normal(0, 1.5)
        for _ in range(15):
            i, j = rng.choice(3, 2, replace=False)
            rows.append({"worker": f"w{w}", "model_a": models[i], "model_b": models[j],
                         "outcome": float(rng.random() < 1 / (1 + np.exp(-(0.3 * (j - i) + bias * (i == 0)))))})
    clustered = pd.DataFrame(rows)
    independent = clustered.assign(worker=[f"v{i}" for i in range(len(clustered))])
    assert lc.vote_design_effect(independent) == pytest.approx(1.0, abs=0.25)
    assert lc.vote_design_effect(clustered) > 1.3
