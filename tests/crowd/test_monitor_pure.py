"""The study monitor's figures from hand-built rows (crowd.monitor, no database).

Each figure has a case whose value is asserted and a neighbouring case that must come out
different (one row changed), so a figure that ignored its input would fail.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from crowd import monitor as m
from crowd.monitor import AttemptRow, PaymentRow, SessionRow, TaskRow

H = 3600.0


def _t(task: int, session: str, status: str, **kw) -> TaskRow:
    return TaskRow(task=task, session=session, status=status, **kw)


def _done(task: int, session: str, start: float = 0.0, **kw) -> TaskRow:
    """A completed task: topic at ``start``, chat +60..+360, post-task until +420."""
    return _t(task, session, "completed", started_at=start, chat_started_at=start + 60, chat_ended_at=start + 360,
              finished_at=start + 420, calibrated=True, **kw)


# --- stages -------------------------------------------------------------------------------------


def test_each_session_is_counted_once_in_its_stage() -> None:
    sessions = [SessionRow("a"), SessionRow("b", consented=True), SessionRow("c", consented=True),
                SessionRow("d", consented=True), SessionRow("e", consented=True), SessionRow("f", consented=True),
                SessionRow("g", consented=True), SessionRow("h", consented=True), SessionRow("i", consented=True)]
    tasks = [
        _t(1, "c", "calibrating"),                               # calibrating, no pass: consented
        _t(2, "d", "chosen", calibrated=True),                   # passed, chat not started
        _t(3, "e", "chatting", calibrated=True),
        _t(4, "f", "post_task", calibrated=True),
        _done(5, "g"), _t(6, "g", "chatting", calibrated=True),  # furthest: completed, counted once
        _t(7, "h", "abandoned", calibration_failed=True),
        _t(8, "i", "abandoned", calibrated=True, chat_started_at=5.0),
    ]
    counts = m.stage_counts(sessions, tasks)
    assert list(counts) == list(m.STAGES)
    assert counts == {"entered": 1, "consented": 2, "calibrated": 1, "chatting": 1, "post_task": 1,
                      "completed": 1, "way_out": 1, "abandoned": 1}
    assert sum(counts.values()) == len(sessions)


def test_an_open_task_beats_an_earlier_way_out_and_abandonment() -> None:
    tasks = [_t(1, "a", "abandoned", calibration_failed=True), _t(2, "a", "chatting", calibrated=True)]
    assert m.session_stage(SessionRow("a", consented=True), tasks) == "chatting"
    assert m.session_stage(SessionRow("a", consented=True), tasks[:1]) == "way_out"
    assert m.session_stage(SessionRow("a", consented=True), [_t(1, "a", "abandoned")]) == "abandoned"


def test_a_task_without_a_listed_session_is_its_own_consented_session() -> None:
    counts = m.stage_counts([], [_t(1, "x", "chosen")])
    assert counts["consented"] == 1 and counts["entered"] == 0


# --- funnel -------------------------------------------------------------------------------------


def test_funnel_counts_the_steps_reached_and_converts() -> None:
    sessions = [SessionRow(k, consented=k != "a") for k in "abcd"]
    tasks = [_done(1, "b"), _t(2, "c", "abandoned", calibrated=True, chat_started_at=10.0), _t(3, "d", "calibrating")]
    rows = {r["stage"]: r for r in m.funnel(sessions, tasks)}
    assert [r["reached"] for r in rows.values()] == [4, 3, 2, 2, 1, 1]
    assert rows["consented"]["of_entered"] == pytest.approx(0.75)
    assert rows["calibrated"]["from_previous"] == pytest.approx(2 / 3)
    assert rows["entered"]["from_previous"] is None
    # The abandoned chatter never reached the post-task step; if it had, the step would count it.
    moved = [tasks[0], _t(2, "c", "abandoned", calibrated=True, chat_started_at=10.0, chat_ended_at=20.0), tasks[2]]
    assert {r["stage"]: r for r in m.funnel(sessions, moved)}["post_task"]["reached"] == 2


def test_funnel_of_an_empty_study_has_no_rates() -> None:
    rows = m.funnel([], [])
    assert [r["reached"] for r in rows] == [0] * 6
    assert all(r["of_entered"] is None for r in rows)
    assert all(r["from_previous"] is None for r in rows)


# --- quotas -------------------------------------------------------------------------------------


def test_quota_fill() -> None:
    rows = {r["name"]: r for r in m.quota_fill({"pointwise": 10, "pairwise": 4, "off": 0},
                                               {"pointwise": 5, "pairwise": 4, "off": 2})}
    assert rows["pointwise"]["share"] == pytest.approx(0.5) and not rows["pointwise"]["full"]
    assert rows["pairwise"]["full"] and rows["pairwise"]["share"] == pytest.approx(1.0)
    assert rows["off"]["share"] is None and not rows["off"]["full"]
    assert m.quota_fill({"pointwise": 10}, {})[0]["used"] == 0


# --- times --------------------------------------------------------------------------------------


def test_median_time_per_stage() -> None:
    sessions = [SessionRow("a", consented=True, entered_at=-100.0), SessionRow("b", consented=True, entered_at=0.0)]
    tasks = [_done(1, "a", start=0.0),
             _t(2, "b", "completed", started_at=100.0, chat_started_at=200.0, chat_ended_at=1100.0,
                finished_at=1200.0, calibrated=True)]
    times = {r["name"]: r for r in m.stage_times(sessions, tasks)}
    assert times["calibration"]["median_s"] == pytest.approx((60 + 100) / 2)
    assert times["chat"]["median_s"] == pytest.approx((300 + 900) / 2)
    assert times["post_task"]["median_s"] == pytest.approx(80)
    assert times["task"]["median_s"] == pytest.approx((420 + 1100) / 2)
    assert times["entry"]["median_s"] == pytest.approx(100)
    assert times["session"]["median_s"] == pytest.approx((520 + 1200) / 2) and times["session"]["n"] == 2
    # An open task adds to the calibration span but not to the task or session spans.
    more = [*tasks, _t(3, "c", "chatting", started_at=0.0, chat_started_at=1000.0)]
    times2 = {r["name"]: r for r in m.stage_times(sessions, more)}
    assert times2["calibration"]["median_s"] == pytest.approx(100) and times2["calibration"]["n"] == 3
    assert times2["session"]["n"] == 2


def test_times_of_an_empty_study_are_none() -> None:
    assert all(r["median_s"] is None and r["n"] == 0 for r in m.stage_times([], []))


# --- calibration --------------------------------------------------------------------------------


def test_calibration_pass_rate_and_reasons() -> None:
    attempts = [AttemptRow(True), AttemptRow(False, ("accuracy@1", "accuracy@2", "follows@2")),
                AttemptRow(False, ("no_face",)), AttemptRow(False, ()), AttemptRow(False, ("coverage@0", "spread@4"))]
    out = m.calibration_summary(attempts)
    assert out["n_attempts"] == 5 and out["n_passed"] == 1 and out["pass_rate"] == pytest.approx(0.2)
    reasons = {r["reason"]: r["n"] for r in out["reasons"]}
    assert reasons == {"coverage": 1, "distance": 1, "spread": 1, "follows": 1, "face": 1, "other": 1}
    assert m.calibration_summary([AttemptRow(True), AttemptRow(True)])["pass_rate"] == 1.0
    assert m.calibration_summary([])["pass_rate"] is None


# --- QC -----------------------------------------------------------------------------------------


def test_qc_flag_rate_among_completed_tasks() -> None:
    tasks = [_done(1, "a", qc_flags=()), _done(2, "b", qc_flags=("response_score", "max_log_gap_s")),
             _done(3, "c", qc_flags=("response_score",)), _done(4, "d"),  # QC not computed yet
             _t(5, "e", "chatting", qc_flags=("response_score",))]        # not completed: not counted
    out = m.qc_summary(tasks)
    assert (out["n_completed"], out["n_with_qc"], out["n_pending"], out["n_flagged"]) == (4, 3, 1, 2)
    assert out["flag_rate"] == pytest.approx(2 / 3)
    assert [(f["code"], f["n"]) for f in out["flags"]] == [("response_score", 2), ("max_log_gap_s", 1)]
    assert out["flags"][0]["label"] == "response score (gaze on answer text)"  # words, not the code
    assert m.FLAG_LABELS.get("not_a_flag", "not_a_flag") == "not_a_flag"
    assert m.qc_summary(tasks[:1])["flag_rate"] == 0.0
    assert m.qc_summary(tasks[3:])["flag_rate"] is None


# --- pay ----------------------------------------------------------------------------------------


def test_pay_per_hour_against_the_minimum() -> None:
    ok = m.pay_per_hour(reward=Decimal("2.00"), median_s=15 * 60.0, minimum=Decimal("6.00"))
    assert ok["per_hour"] == "8.00" and ok["below_minimum"] is False
    slow = m.pay_per_hour(reward=Decimal("2.00"), median_s=25 * 60.0, minimum=Decimal("6.00"))
    assert slow["per_hour"] == "4.80" and slow["below_minimum"] is True
    assert m.pay_per_hour(reward=Decimal("2.00"), median_s=None, minimum=Decimal("6.00"))["below_minimum"] is None
    assert m.pay_per_hour(reward=Decimal("2.00"), median_s=H, minimum=None)["below_minimum"] is None


def test_money_committed() -> None:
    pays = [PaymentRow(Decimal("0.50"), "pending"), PaymentRow(Decimal("1.00"), "paid"),
            PaymentRow(Decimal("0.25"), "failed")]
    out = m.money_committed(reward=Decimal("2.00"), n_rewarded=3, payments=pays)
    assert out == {"n_rewarded": 3, "rewards": "6.00", "bonuses_pending": "0.50", "bonuses_paid": "1.00",
                   "bonuses_failed": "0.25", "total": "7.50"}
    assert m.money_committed(reward=Decimal("2.00"), n_rewarded=0, payments=[])["total"] == "0.00"


def test_monitor_of_an_empty_study() -> None:
    out = m.monitor(sessions=[], tasks=[], attempts=[], mode_quotas={"pointwise": 10}, mode_used={},
                    model_quotas={}, model_used={}, reward=Decimal("1.50"), minimum_per_hour=Decimal("6.00"),
                    n_rewarded=0, payments=[])
    assert out["n_sessions"] == 0 and out["pay"]["per_hour"] is None and out["money"]["total"] == "0.00"
    import json

    json.dumps(out)  # the endpoint returns it as is
