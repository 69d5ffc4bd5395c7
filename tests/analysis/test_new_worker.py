"""Models aimed at new workers, on planted data (fast, no release): each estimator recovers a
planted signal, keeps its promise (symmetry, label-free scaling, length removed), and the
calibration choice / few-shot / reliability helpers behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from analysis.features.time_course import cascade_names, seq_names, time_course_features
from analysis.plots.calibration import confidence_bins, reliability_diagram
from analysis.reward import EvalConfig, ForestParams, evaluate_table
from analysis.reward.blend import GroupBlend
from analysis.reward.calibration_report import calibration_table, choose_method, ece_bootstrap
from analysis.reward.few_shot import few_shot_predictions, map_offset
from analysis.reward.new_worker import (
    LengthResidualiser,
    SideSymmetricClassifier,
    standardise_within,
    swap_sides_partial,
    swappable_columns,
)
from analysis.reward.selection import TopKImportance
from analysis.reward.sequence import DwellSequenceClassifier
from analysis.reward.summary import predictions_summary
from analysis.reward.variants import cascade_specs, new_worker_specs, sequence_specs

FAST = ForestParams(n_estimators=20, n_jobs=1)


def _pairs(n: int = 240, seed: int = 0, left_bias: float = 0.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """y = 1 when side 1 was read longer (flipped with prob. ``left_bias`` towards 1); 12 workers."""
    rng = np.random.default_rng(seed)
    t1, t2 = rng.exponential(30, n), rng.exponential(30, n)
    X = pd.DataFrame({
        "gaze.reviewing_time.1": t1, "gaze.reviewing_time.2": t2, "gaze.reviewing_time.diff": t1 - t2,
        "mouse.noise.1": rng.normal(size=n), "mouse.noise.2": rng.normal(size=n),
        "text.response_length.1": rng.integers(50, 500, n).astype(float),
        "text.response_length.2": rng.integers(50, 500, n).astype(float),
    })
    y = (t1 > t2).astype(int)
    y[rng.random(n) < left_bias] = 1
    return X, y, np.repeat(np.arange(12), n // 12 + 1)[:n]


# ----------------------------------------------------------------------------- side symmetry
def test_symmetric_model_without_prior_is_exactly_antisymmetric() -> None:
    X, y, _ = _pairs()
    model = SideSymmetricClassifier(RandomForestClassifier(20, random_state=0), position_prior=False).fit(X, y)
    p, p_swapped = model.predict_proba(X)[:, 1], model.predict_proba(swap_sides_partial(X))[:, 1]
    np.testing.assert_allclose(p, 1 - p_swapped, atol=1e-9)
    X_test, y_test, _ = _pairs(seed=1)
    assert (model.predict(X_test) == y_test).mean() > 0.85  # the planted signal survives


def test_symmetric_model_keeps_the_position_prior_explicit() -> None:
    X, y, _ = _pairs(left_bias=0.5)  # ~75 % of pairs say "left"
    model = SideSymmetricClassifier(LogisticRegression(), position_prior=True).fit(X, y)
    assert model.prior_logit_ == pytest.approx(np.log(y.mean() / (1 - y.mean())), abs=0.05)
    tie = X.iloc[:1].copy()
    tie.loc[:, :] = [30.0, 30.0, 0.0, 0.0, 0.0, 200.0, 200.0]  # identical sides: only the prior speaks
    assert model.predict_proba(tie)[0, 1] == pytest.approx(y.mean(), abs=0.03)


def test_unpaired_side_columns_are_dropped_and_cmp_flips() -> None:
    cols = ["gaze.a.1", "gaze.a.2", "gaze.b.1", "gaze.max_char.cmp", "gaze.head_ratio"]
    assert swappable_columns(cols) == ["gaze.a.1", "gaze.a.2", "gaze.max_char.cmp", "gaze.head_ratio"]
    X = pd.DataFrame({"gaze.a.1": [1.0], "gaze.a.2": [2.0], "gaze.max_char.cmp": [1.0]})
    assert swap_sides_partial(X).iloc[0].tolist() == [2.0, 1.0, 0.0]


# ----------------------------------------------------------------------------- relative features
def test_within_worker_z_scores_are_label_free_and_scale_free() -> None:
    features = pd.DataFrame({
        "worker": ["a"] * 4 + ["b"] * 4, "mode": "pairwise",
        "gaze.time.1": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
        "gaze.time.2": [4.0, 3.0, 2.0, 1.0, 40.0, 30.0, 20.0, 10.0],
        "text.response_length.1": [100.0] * 8,
    })
    z = standardise_within(features, ("worker", "mode"))
    # worker b reads 10x slower: relative to their own habits it is the same behaviour
    np.testing.assert_allclose(z.loc[:3, "gaze.time.1"].to_numpy(), z.loc[4:, "gaze.time.1"].to_numpy())
    # both sides share one scale, so the side comparison survives
    same_order = (z["gaze.time.1"] > z["gaze.time.2"]) == (features["gaze.time.1"] > features["gaze.time.2"])
    assert same_order.all()
    assert (z["text.response_length.1"] == 100.0).all()  # lengths are not behaviour


def test_length_residualiser_removes_what_length_explains() -> None:
    rng = np.random.default_rng(0)
    L1, L2 = rng.integers(50, 2000, 300).astype(float), rng.integers(50, 2000, 300).astype(float)
    signal = rng.normal(size=300)
    X = pd.DataFrame({"text.response_length.1": L1, "text.response_length.2": L2,
                      "gaze.time.1": 5 * np.log1p(L1) + signal, "gaze.time.2": 5 * np.log1p(L2)})
    out = LengthResidualiser().fit(X).transform(X)
    assert abs(np.corrcoef(out["gaze.time.1"], np.log1p(L1))[0, 1]) < 0.05
    assert np.corrcoef(out["gaze.time.1"], signal)[0, 1] > 0.95  # what length does not explain stays
    pd.testing.assert_series_equal(out["text.response_length.1"], X["text.response_length.1"])


# ----------------------------------------------------------------------------- time course
def _instants(turn: int, t0: float, box_by_time: list[tuple[float, int]]) -> pd.DataFrame:
    rows = []
    for t, box in box_by_time:
        rows.append({"epoch_ms": (t0 + t) * 1000, "turn": turn, "rule": "response", "signal": "gaze",
                     "b1_x": 1.0 if box == 1 else -1.0, "b1_char_index": 50.0 if box == 1 else np.nan,
                     "b2_x": 1.0 if box == 2 else -1.0, "b2_char_index": 10.0 if box == 2 else np.nan})
    return pd.DataFrame(rows)


def test_cascade_sees_the_last_seconds_before_the_decision() -> None:
    # 10 s on the right answer, then the last 2 s on the left one
    course = [(i * 0.1, 2) for i in range(100)] + [(10 + i * 0.1, 1) for i in range(21)]
    inst = _instants(7, 0.0, course)
    turns = pd.DataFrame({"query_id": [7], "response_1": ["x" * 100], "response_2": ["y" * 100]})
    row = time_course_features(inst, turns, "pairwise").iloc[0]
    assert row["cascade.gaze_last1s.1"] == 1.0 and row["cascade.gaze_last1s.2"] == 0.0
    assert 0.3 < row["cascade.gaze_last4s.1"] < 0.7  # longer window: mixed
    assert row["cascade.gaze_last_box.1"] == 1.0
    dwell = row[[c for c in seq_names() if c.startswith("seq.dwell") and c.endswith(".1")]]
    assert dwell.sum() == pytest.approx(1.0) and dwell["seq.dwell_c04.1"] == 1.0  # char 50 of 100
    assert row["seq.gin_t15.1"] == 1.0 and row["seq.gin_t00.2"] == 1.0
    pointwise = time_course_features(inst, turns, "pointwise").iloc[0]
    assert pointwise[cascade_names()].isna().all()


# ----------------------------------------------------------------------------- sequence model
def _course_pairs(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """The chosen answer is the one looked at in the last quarter of the time course."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    cols = {}
    for side in (1, 2):
        chosen = (y == 1) if side == 1 else (y == 0)
        for i in range(16):
            late = i >= 12
            base = rng.uniform(0, 0.6, n)
            cols[f"seq.gin_t{i:02d}.{side}"] = np.where(late & chosen, 0.9, base if not late else 0.1 * base)
            cols[f"seq.gchar_t{i:02d}.{side}"] = rng.uniform(0, 1, n)
            cols[f"seq.min_t{i:02d}.{side}"] = rng.uniform(0, 0.3, n)
        for c in range(8):
            cols[f"seq.dwell_c{c:02d}.{side}"] = np.full(n, 1 / 8)
        cols[f"text.response_length.{side}"] = rng.integers(50, 500, n).astype(float)
    return pd.DataFrame(cols), y


def test_sequence_model_learns_a_planted_time_course_and_is_antisymmetric() -> None:
    X, y = _course_pairs(150)
    model = DwellSequenceClassifier(epochs=80).fit(X, y)
    X_test, y_test = _course_pairs(seed=1)
    assert (model.predict(X_test) == y_test).mean() > 0.85
    bias = float(model.net_.bias.detach())
    swapped = swap_sides_partial(X_test)
    np.testing.assert_allclose(model.decision_function(X_test) + model.decision_function(swapped), 2 * bias,
                               atol=1e-4)


# ----------------------------------------------------------------------------- blend
def test_blend_routes_groups_and_averages_logits() -> None:
    X, y, _ = _pairs()
    blend = GroupBlend([(LogisticRegression(), ("gaze",), ()), (LogisticRegression(), ("mouse",), ())]).fit(X, y)
    members = np.clip(blend.member_proba(X), 1e-4, 1 - 1e-4)  # the blend clips like this
    assert blend.fitted_[0][1] == ["gaze.reviewing_time.1", "gaze.reviewing_time.2", "gaze.reviewing_time.diff"]
    z = np.log(members / (1 - members)).mean(axis=1)
    np.testing.assert_allclose(blend.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)))
    with pytest.raises(ValueError, match="no columns"):
        GroupBlend([(LogisticRegression(), ("emb",), ())]).fit(X, y)


# ----------------------------------------------------------------------------- specs under grouped CV
def test_new_worker_specs_run_under_grouped_cv_and_find_the_signal() -> None:
    X, y, groups = _pairs(240)
    X_course, y_course = _course_pairs(240)
    X = pd.concat([X, X_course.drop(columns=["text.response_length.1", "text.response_length.2"])], axis=1)
    cascade = pd.DataFrame({"cascade.gaze_last2s.1": (y == 1).astype(float), "cascade.gaze_last2s.2": (y == 0)})
    X = pd.concat([X, cascade.astype(float)], axis=1)
    specs = new_worker_specs(FAST) + cascade_specs(FAST)
    config = EvalConfig(seeds=(0,), protocols=("grouped",), k=4, n_jobs=1, selector_n_jobs=1,
                        selector_n_estimators=20, calibration="none")
    selector = lambda seed: TopKImportance(4, estimator=RandomForestClassifier(20, random_state=seed))  # noqa: E731
    result = evaluate_table(X, y, groups=groups, specs=specs, config=config, make_selector=selector)
    acc = result.scores.set_index("model")["accuracy"]
    assert set(acc.index) == {s.name for s in specs}
    assert acc["Sym RF + IF"] > 0.8 and acc["RF + lengths + cascade"] > 0.9
    assert acc["Sym RF + Text lengths"] < 0.65  # lengths carry nothing here


def test_sequence_specs_fit_their_own_columns() -> None:
    X, y = _course_pairs(120)
    X["gaze.reviewing_time.1"], X["gaze.reviewing_time.2"] = np.where(y == 1, 40.0, 10.0), 20.0
    for spec in sequence_specs(FAST):
        columns = ["gaze.reviewing_time.1", "gaze.reviewing_time.2"] if spec.use_if else None
        model = spec.pipeline(0, fixed_columns=columns)
        model.set_params(**{k: 40 for k in model.get_params() if k.endswith("epochs")})
        assert (model.fit(X, y).predict(X) == y).mean() > 0.8, spec.name


# ----------------------------------------------------------------------------- few-shot
def test_map_offset_follows_the_labels_and_is_shrunk() -> None:
    assert map_offset(np.array([]), np.array([])) == 0.0
    one = map_offset(np.zeros(1), np.ones(1), prior_sd=1.0)
    four = map_offset(np.zeros(4), np.ones(4), prior_sd=1.0)
    assert 0 < one < four < 10


def test_few_shot_labels_recover_a_planted_worker_habit() -> None:
    """Half the workers always pick left, half always right; features carry nothing."""
    rng = np.random.default_rng(0)
    n_workers, per = 20, 10
    groups = np.repeat(np.arange(n_workers), per)
    y = (groups % 2 == 0).astype(int)
    X = pd.DataFrame({"gaze.noise.1": rng.normal(size=len(y)), "gaze.noise.2": rng.normal(size=len(y))})
    preds = few_shot_predictions(X, y, groups, np.tile(np.arange(per), n_workers),
                                 {"LogReg": lambda seed: LogisticRegression()}, ks=(0, 1, 4))
    acc = preds.assign(ok=(preds["prob_1"] >= 0.5) == preds["y"]).groupby("protocol")["ok"].mean()
    assert acc["k=0"] < 0.7 and acc["k=4"] > 0.95
    assert preds.groupby("protocol").size().nunique() == 1  # same rows scored for every k
    summary = predictions_summary(preds.assign(model="LogReg"), baseline="LogReg", n_boot=200)
    assert set(summary["protocol"]) == {"k=0", "k=1", "k=4"}


# ----------------------------------------------------------------------------- calibration
def test_calibration_choice_and_ece_interval() -> None:
    rng = np.random.default_rng(0)
    n = 600
    groups = np.repeat(np.arange(30), n // 30)
    truth = rng.uniform(0.2, 0.8, n)
    y = (rng.random(n) < truth).astype(int)
    overconfident = np.clip(0.5 + 2.0 * (truth - 0.5), 0.01, 0.99)
    rows = pd.DataFrame({"model": "m", "worker": groups, "y": y, "raw": overconfident, "good": truth})
    table = calibration_table(rows, {"none": "raw", "platt": "good"}, n_boot=300)
    none, platt = table.set_index("method").loc["none"], table.set_index("method").loc["platt"]
    assert none["ece_lo"] <= none["ece"] <= none["ece_hi"]
    assert platt["ece"] < none["ece"] and platt["ece_diff_hi"] < 0  # clearly better, paired
    assert choose_method(table, "m") == "platt"
    same = calibration_table(rows, {"none": "raw", "platt": "raw"}, n_boot=50)
    assert choose_method(same, "m") == "none"
    assert ece_bootstrap(y, truth, groups, n_boot=200)["ece"] < 0.08


def test_reliability_diagram_plots_confidence_against_accuracy() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.3, 0.45, 0.55, 0.6])
    bins = confidence_bins(y, p, n_bins=5)
    assert bins["n"].sum() == 6 and bins["confidence"].between(0.5, 1).all()
    fig = reliability_diagram({"model": (y, p), "empty": (np.array([]), np.array([]))})
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "calibrated" and labels[1].startswith("model (ECE ")
