"""Transfer evaluation and worker-bootstrap intervals on synthetic workers (fast, no release)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.reward import EvalConfig, ForestParams, ModelSpec
from analysis.reward.intervals import expected_calibration_error, worker_bootstrap
from analysis.transfer import transfer_evaluate

FAST = ForestParams(n_estimators=40, n_jobs=1)
SPECS = [
    ModelSpec("RF + Text lengths", keep_groups=("text",), make_classifier=FAST.classifier),
    ModelSpec("RF + IF", use_if=True, make_classifier=FAST.classifier),
]
CONFIG = EvalConfig(seeds=(0,), k=3, selector_n_jobs=1, selector_n_estimators=40, n_jobs=1, calibration="platt")


def _workers(n_workers: int, per_worker: int, signal: bool, seed: int, offset: int = 0) -> dict:
    """Pairs whose label follows the gaze time difference (``signal``) or is a coin flip."""
    rng = np.random.default_rng(seed)
    n = n_workers * per_worker
    t1, t2 = rng.exponential(30, n), rng.exponential(30, n)
    X = pd.DataFrame({
        "gaze.reviewing_time.1": t1, "gaze.reviewing_time.2": t2, "gaze.reviewing_time.diff": t1 - t2,
        "mouse.noise.1": rng.normal(size=n), "mouse.noise.2": rng.normal(size=n),
        "text.response_length.1": rng.integers(50, 500, n).astype(float),
        "text.response_length.2": rng.integers(50, 500, n).astype(float),
    })
    y = (t1 > t2).astype(int) if signal else rng.integers(0, 2, n)
    groups = np.repeat([f"w{offset + i}" for i in range(n_workers)], per_worker)
    return {"X": X, "y": y, "groups": groups, "query_ids": np.arange(offset * 1000, offset * 1000 + n)}


def test_transfer_recovers_a_planted_signal() -> None:
    train, test = _workers(12, 20, True, 0), _workers(10, 20, True, 1, offset=100)
    out, preds = transfer_evaluate(train, test, specs=SPECS, config=CONFIG, n_boot=500)
    rf = out["RF + IF"]
    assert rf["accuracy"] > 0.8 and rf["acc_lo"] > 0.7
    assert rf["diff_lo"] > 0.15  # clearly better than length on the same test rows
    assert rf["n_test"] == 200 and rf["workers_test"] == 10
    assert set(out["RF + IF"]) >= {"accuracy", "auc", "ece", "brier", "acc_lo", "acc_hi", "diff", "diff_lo", "diff_hi"}
    assert set(preds["worker"]) == set(test["groups"])  # scored only on the test workers
    assert preds["prob_1_cal"].between(0, 1).all()


def test_no_signal_interval_covers_chance() -> None:
    train, test = _workers(12, 20, False, 2), _workers(10, 20, False, 3, offset=100)
    out, _ = transfer_evaluate(train, test, specs=SPECS, config=CONFIG, n_boot=500)
    for metrics in out.values():
        assert metrics["acc_lo"] < 0.5 < metrics["acc_hi"]
    assert out["RF + IF"]["diff_lo"] < 0 < out["RF + IF"]["diff_hi"]


def test_transfer_refuses_shared_workers() -> None:
    data = _workers(6, 10, True, 0)
    with pytest.raises(ValueError, match="both the training and the test"):
        transfer_evaluate(data, data, specs=SPECS, config=CONFIG, n_boot=100)


def test_worker_bootstrap_is_wider_than_a_row_bootstrap_when_workers_differ() -> None:
    # 10 workers, each always right or always wrong: the worker is the unit of evidence
    groups = np.repeat(np.arange(10), 50)
    correct = np.repeat([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], 50).astype(float)
    ci = worker_bootstrap(correct, groups, n_boot=2000)
    assert ci["accuracy"] == pytest.approx(0.6)
    assert ci["acc_hi"] - ci["acc_lo"] > 0.4  # a row bootstrap would give ~0.09
    same = worker_bootstrap(correct, groups, baseline_correct=correct)
    assert same["diff"] == same["diff_lo"] == same["diff_hi"] == 0


def test_ece_is_zero_when_calibrated_and_large_when_overconfident() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.where(p >= 0.5, 0.99, 0.01)) > 0.2
