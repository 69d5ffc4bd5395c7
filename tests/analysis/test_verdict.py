"""The verdict rule (helps / hurts / not shown to help) and the figures of the run pages (pure)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.reward.verdict import (
    HELPS,
    HURTS,
    NOT_SHOWN,
    interval_text,
    ordered_protocols,
    setting_verdicts,
    verdict,
    verdict_sentence,
)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.007, 0.094, HELPS),          # wholly above 0
        (0.0001, 0.2, HELPS),
        (-0.071, -0.002, HURTS),        # wholly below 0
        (-0.029, 0.068, NOT_SHOWN),     # contains 0 (the issue's RF + IF, pairwise)
        (-0.098, 0.050, NOT_SHOWN),     # contains 0 (pointwise)
        (0.0, 0.05, NOT_SHOWN),         # touching 0 is not a claim
        (-0.05, 0.0, NOT_SHOWN),
        (None, 0.05, NOT_SHOWN),        # no interval: no claim
        (float("nan"), float("nan"), NOT_SHOWN),
    ],
)
def test_verdict_from_the_difference_interval(lo, hi, expected) -> None:
    assert verdict(lo, hi) == expected


def test_helps_needs_the_whole_interval_above_zero() -> None:
    # must pass: a positive interval is "helps"; must fail: a bigger point estimate whose interval
    # reaches below 0 is not.
    assert verdict(0.001, 0.02) == HELPS
    assert verdict(-0.001, 0.30) != HELPS
    assert verdict(-0.30, 0.001) != HURTS


def test_sentence_is_the_issue_s_wording() -> None:
    assert verdict_sentence("RF + IF", 0.011, -0.029, 0.068) == (
        "RF + IF: +0.011 [−0.029, +0.068] over length on new workers: not shown to help")
    assert verdict_sentence("RF + (IF - Gaze)", 0.040, 0.007, 0.094) == (
        "RF + (IF - Gaze): +0.040 [+0.007, +0.094] over length on new workers: helps")
    assert verdict_sentence("RF + IF", -0.04, -0.07, -0.01, "transfer").endswith("on the test workers: hurts")
    assert interval_text(0.6221, 0.58, 0.661) == "0.622 [0.580, 0.661]"
    assert interval_text(None, 0.1, 0.2) == "–"


def test_new_worker_protocols_come_first_and_the_leaky_one_last() -> None:
    assert ordered_protocols(["paper", "grouped", "ungrouped"]) == ["grouped", "ungrouped", "paper"]
    assert ordered_protocols(["transfer"]) == ["transfer"]


def _rows(protocol: str, diff: tuple[float, float, float]) -> list[dict]:
    base = {"protocol": protocol, "model": "RF + Text lengths", "accuracy": 0.6, "acc_lo": 0.55, "acc_hi": 0.65,
            "diff": 0.0, "diff_lo": 0.0, "diff_hi": 0.0}
    model = {**base, "model": "RF + IF", "diff": diff[0], "diff_lo": diff[1], "diff_hi": diff[2]}
    return [base, model]


def test_setting_verdict_reads_the_grouped_protocol_not_the_leaky_one() -> None:
    intervals = {"Pairwise": _rows("paper", (0.058, 0.013, 0.127)) + _rows("grouped", (0.011, -0.029, 0.068)),
                 "Pointwise": _rows("grouped", (-0.035, -0.098, 0.050))}
    found = {v["setting"]: v for v in setting_verdicts(intervals)}
    assert found["Pairwise"]["protocol"] == "grouped" and found["Pairwise"]["verdict"] == NOT_SHOWN
    assert "+0.011 [−0.029, +0.068]" in found["Pairwise"]["sentence"]
    assert found["Pointwise"]["verdict"] == NOT_SHOWN
    only_leaky = {"Pairwise": _rows("paper", (0.058, 0.013, 0.127))}
    assert setting_verdicts(only_leaky) == []  # the leaky protocol alone gives no verdict
    transfer = {"pairwise": _rows("transfer", (0.05, 0.01, 0.09))}
    assert setting_verdicts(transfer)[0]["verdict"] == HELPS


def test_interval_figure_draws_worker_intervals_and_starts_at_chance() -> None:
    from analysis.plots.results import accuracy_figure, interval_figure

    rows = [{"setting": "Pairwise", **r} for r in _rows("grouped", (0.011, -0.029, 0.068))
            + _rows("paper", (0.058, 0.013, 0.127))]
    fig = interval_figure(rows)
    acc_ax, diff_ax = fig.axes[0], fig.axes[1]
    assert acc_ax.get_xlim()[0] == pytest.approx(0.5)   # chance, not 0.3
    lo, hi = diff_ax.get_xlim()
    assert lo < 0 < hi and math.isclose(-lo, hi)
    # the whiskers are the stored worker interval: 0.55..0.65 around 0.6
    segments = [seg for coll in acc_ax.collections for seg in coll.get_segments()]
    assert any(np.allclose([seg[0][0], seg[1][0]], [0.55, 0.65]) for seg in segments)
    assert "paper (leaky)" in [t.get_text() for t in fig.legends[0].get_texts()]
    # an interval below chance moves the axis start down to include it
    low = [dict(rows[0], acc_lo=0.42)]
    assert interval_figure(low).axes[0].get_xlim()[0] == pytest.approx(0.4)
    # runs without worker intervals still plot their seed means (no interval)
    old = [{"setting": "Pairwise", "protocol": "grouped", "model": "RF + IF", "accuracy_mean": 0.61,
            "accuracy_std": 0.01}]
    assert accuracy_figure(old).axes[0].collections


def test_signal_weight_is_per_feature_not_summed() -> None:
    from analysis.plots.importance import signal_weight_figure, signal_weight_table

    # 20 gaze features of 0.03 each against 2 text features of 0.2 each: the sum says gaze (0.6 vs
    # 0.4), the mean per feature says text (0.2 vs 0.03).
    imp = pd.Series([0.03] * 20 + [0.2] * 2, index=[f"gaze.f{i}" for i in range(20)] + ["text.a", "text.b"])
    table = signal_weight_table({"short": imp})
    assert table.loc["text", "short"] == pytest.approx(0.2)
    assert table.loc["gaze", "short"] == pytest.approx(0.03)
    assert table.loc["gaze", "n_features"] == 20
    fig = signal_weight_figure({"short": imp, "long": imp})
    ax = fig.axes[0]
    assert "per feature" in ax.get_ylabel()
    assert any("(20 features)" in t.get_text() for t in ax.get_xticklabels())


def test_other_models_whose_interval_excludes_zero_are_listed_with_their_count() -> None:
    from analysis.reward.verdict import other_claims

    rows = _rows("grouped", (0.011, -0.029, 0.068))
    rows += [{**rows[1], "model": "RF + (IF - Gaze)", "diff": 0.040, "diff_lo": 0.007, "diff_hi": 0.094},
             {**rows[1], "model": "LogReg + IF", "diff": -0.021, "diff_lo": -0.058, "diff_hi": 0.030}]
    rows += [{**r, "protocol": "paper", "diff_lo": 0.01} for r in rows if r["model"] == "LogReg + IF"]
    found = other_claims({"Pairwise": rows})
    assert [(o["model"], o["verdict"], o["compared"]) for o in found] == [("RF + (IF - Gaze)", HELPS, 3)]
    assert found[0]["text"] == "+0.040 [+0.007, +0.094]"
    assert other_claims({"Pairwise": _rows("grouped", (0.011, -0.029, 0.068))}) == []
