"""The eye-tracking report's computations on synthetic data with known answers (pure module)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pandas as pd
import pytest

from collection.release import schema
from crowd import eyetracking as et
from crowd.trajectory import CHAT_BOX_STYLE, box_layout


# --------------------------------------------------------------------------- sampling rate
def test_samples_at_exactly_10_hz_give_10_hz() -> None:
    t = 1_700_000_000_000 + 100.0 * np.arange(600)
    assert et.sampling_rate_hz(t) == pytest.approx(10.0)


def test_a_pause_is_missing_data_not_a_slower_clock() -> None:
    t = np.concatenate([100.0 * np.arange(100), 30_000 + 100.0 * np.arange(100)])
    assert et.sampling_rate_hz(t, gap_s=2.0) == pytest.approx(10.0)
    # the naive (n - 1) / span would say about 5.6 Hz
    assert (len(t) - 1) / ((t[-1] - t[0]) / 1000) < 6


def test_a_4_hz_stream_is_not_reported_as_10_hz() -> None:
    t = 250.0 * np.arange(100) + np.random.default_rng(0).uniform(-20, 20, 100)
    rate = et.sampling_rate_hz(np.sort(t))
    assert rate == pytest.approx(4.0, abs=0.05)
    assert abs(rate - 10.0) > 1


def test_a_frame_logged_twice_counts_once_and_too_few_frames_give_none() -> None:
    t = np.repeat(100.0 * np.arange(50), 2)
    assert et.sampling_rate_hz(t) == pytest.approx(10.0)
    assert et.sampling_rate_hz([5.0]) is None
    assert et.sampling_rate_hz([0.0, 5000.0]) is None  # the only interval is a pause


def test_gap_share_is_the_time_in_pauses() -> None:
    t = np.concatenate([100.0 * np.arange(101), 15_000 + 100.0 * np.arange(51)])  # 10 s, 5 s pause, 5 s
    assert et.gap_share(t, gap_s=2.0) == pytest.approx(5_000 / 20_000)
    assert et.gap_share(100.0 * np.arange(10)) == 0.0
    assert et.gap_share([1.0]) is None


# --------------------------------------------------------------------------- precision and accuracy
def test_rms_s2s_of_a_known_jitter() -> None:
    # alternating +-d on x: every step is 2d, so RMS-S2S is exactly 2d
    d = 3.0
    xs = 500 + d * np.array([1, -1] * 50)
    ys = np.full(100, 300.0)
    assert et.rms_s2s(xs, ys) == pytest.approx(2 * d)
    # Gaussian jitter of sd s on each axis: E[dx^2 + dy^2] = 4 s^2, RMS-S2S -> 2 s
    rng = np.random.default_rng(1)
    s = 5.0
    x, y = 500 + rng.normal(0, s, 200_000), 300 + rng.normal(0, s, 200_000)
    assert et.rms_s2s(x, y) == pytest.approx(2 * s, rel=0.01)


def test_rms_s2s_is_zero_for_a_still_fixation_and_none_for_one_sample() -> None:
    assert et.rms_s2s([10.0] * 20, [20.0] * 20) == 0.0
    assert et.rms_s2s([1.0], [1.0]) is None
    # a slow drift is not jitter: RMS-S2S sees only the step, unlike the spread around the mean
    assert et.rms_s2s(np.arange(100.0), np.zeros(100)) == pytest.approx(1.0)


def test_target_metrics_from_raw_predictions() -> None:
    w, h = 1366, 768
    offset = [{"x": 683 + 3.0, "y": 384 + 4.0, "t": 10.0 * i} for i in range(50)]
    far = [{"x": 341.5 + 30.0 * (-1) ** i, "y": 192.0, "t": 10.0 * i} for i in range(20)]
    rows = et.target_metrics(
        [{"x": 683, "y": 384, "centre": True, "samples": offset},
         {"x": 341.5, "y": 192, "centre": False, "samples": far},
         {"x": 1024.5, "y": 576, "centre": False, "samples": []}],
        viewport_w=w, viewport_h=h,
    )
    assert [r["target"] for r in rows] == ["centre", "top left", "bottom right"]
    assert rows[0]["accuracy_px"] == pytest.approx(5.0) and rows[0]["precision_px"] == 0.0
    assert rows[1]["accuracy_px"] == pytest.approx(30.0) and rows[1]["precision_px"] == pytest.approx(60.0)
    assert rows[2]["accuracy_px"] is None and rows[2]["n_samples"] == 0  # no prediction: not 0 px


@pytest.mark.parametrize(("x", "y", "label"), [
    (50, 50, "top left"), (683, 50, "top centre"), (1300, 700, "bottom right"), (683, 384, "centre"),
    (50, 384, "middle left"),
])
def test_target_label(x: float, y: float, label: str) -> None:
    assert et.target_label(x, y, 1366, 768) == label


def test_pick_attempt_prefers_the_one_that_admitted_the_task() -> None:
    a, b, c = {"passed": False, "id": 1}, {"passed": True, "id": 2}, {"passed": False, "id": 3}
    assert et.pick_attempt([a, b, c])["id"] == 2
    assert et.pick_attempt([a, c])["id"] == 3
    assert et.pick_attempt([]) is None


# --------------------------------------------------------------------------- degrees
def test_degrees_from_known_geometry() -> None:
    # a 300 x 400 px screen with a 50 cm diagonal: exactly 0.1 cm per CSS pixel
    k = et.cm_per_css_px(300, 400, diagonal_in=50 / 2.54)
    assert k == pytest.approx(0.1)
    # 1 cm seen from 57.2958 cm is one degree (to 1e-4); a size equal to 2D subtends 90 degrees
    assert et.px_to_deg(10, cm_per_px=k, distance_cm=180 / math.pi) == pytest.approx(1.0, abs=1e-4)
    assert et.px_to_deg(1000, cm_per_px=k, distance_cm=50) == pytest.approx(90.0)


def test_degrees_of_the_issue_laptop() -> None:
    # 15.6 inch 1366 x 768 laptop at 60 cm: 105-135 px are about 2.5-3.3 degrees
    k = et.cm_per_css_px(1366, 768, diagonal_in=15.6)
    assert 2.4 < et.px_to_deg(105, cm_per_px=k, distance_cm=60) < 2.7
    assert 3.1 < et.px_to_deg(135, cm_per_px=k, distance_cm=60) < 3.4


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="viewing_distance_cm"):
        et.ReportParams(viewing_distance_cm=0)
    with pytest.raises(ValueError, match="screen_diagonal_in"):
        et.ReportParams(screen_diagonal_in=float("nan"))
    with pytest.raises(ValueError):
        et.cm_per_css_px(0, 768, diagonal_in=15.6)
    with pytest.raises(ValueError):
        et.px_to_deg(10, cm_per_px=0.02, distance_cm=-5)


def test_in_degrees_keeps_missing_values_missing() -> None:
    params = et.ReportParams(viewing_distance_cm=50, screen_diagonal_in=50 / 2.54)
    rows = et.in_degrees([{"target": "centre", "accuracy_px": 100.0, "precision_px": None}], screen=(300, 400),
                         params=params)
    assert rows[0]["accuracy_deg"] == pytest.approx(math.degrees(2 * math.atan(10 / 100)))
    assert rows[0]["precision_deg"] is None


# --------------------------------------------------------------------------- data loss
def _frame(n: int, *, no_face: list[bool] | None, x_missing: tuple[int, ...] = ()) -> pd.DataFrame:
    rows = []
    for i in range(n):
        for signal in ("gaze", "mouse"):
            rows.append({"signal": signal, "frame": "abs", "x": None if (signal == "gaze" and i in x_missing) else 10.0,
                         "y": 10.0, "page_timer_ms": 100.0 * i, "epoch_ms": 1_000 + 100 * i,
                         "no_face": None if no_face is None else no_face[i]})
    return schema.conform(pd.DataFrame(rows))


def test_data_loss_counts_frames_without_face_or_prediction() -> None:
    faces = [False] * 10
    faces[2] = faces[5] = True
    out = et.stream_stats(_frame(10, no_face=faces, x_missing=(7,)))
    assert out["no_face_share"] == pytest.approx(0.2)
    assert out["loss_share"] == pytest.approx(0.3)
    assert out["gaze_rate_hz"] == pytest.approx(10.0) and out["mouse_rate_hz"] == pytest.approx(10.0)
    assert out["gaze_frames"] == 10


def test_report_rate_is_the_qc_rate_and_the_recording_rate_leaves_pauses_out() -> None:
    from collection.sampling import achieved_rates

    frame = _frame(40, no_face=[False] * 40)
    late = frame[frame["epoch_ms"] >= 1_000 + 100 * 20].copy()
    late["epoch_ms"] += 30_000  # a 30 s pause after 20 frames
    paused = schema.conform(pd.concat([frame[frame["epoch_ms"] < 1_000 + 100 * 20], late]))
    out = et.stream_stats(paused)
    assert out["gaze_rate_hz"] == pytest.approx(achieved_rates(paused)["gaze_rate_hz"])
    assert out["gaze_rate_hz"] < 2.0  # 40 frames over ~34 s
    assert out["gaze_rate_recording_hz"] == pytest.approx(10.0)


def test_data_loss_is_unknown_where_frames_without_prediction_were_never_logged() -> None:
    out = et.stream_stats(_frame(10, no_face=None))  # the release: no no_face column values
    assert out["loss_share"] is None and out["no_face_share"] is None
    assert out["gap_share"] == 0.0


# --------------------------------------------------------------------------- the report
def _inputs() -> list[et.TaskInput]:
    params = et.ReportParams()
    site_targets = et.in_degrees([{"target": "centre", "n_samples": 50, "accuracy_px": 40.0, "precision_px": 4.0},
                                  {"target": "top left", "n_samples": 20, "accuracy_px": 120.0, "precision_px": 8.0}],
                                 screen=(1366, 768), params=params)
    env = {"webgazer": "3.5.3", "face_mesh": "0.4.1633559619", "camera_w": 640, "camera_h": 480,
           "screen_w": 1366, "screen_h": 768, "device_pixel_ratio": 1}
    return [
        et.TaskInput(task=1, worker="w1", group=et.SITE, stream={"gaze_rate_hz": 10.0, "loss_share": 0.1},
                     targets=site_targets, screen_source="screen", centre_score=80, environment=env,
                     qc_codes=["time_on_task_s"]),
        et.TaskInput(task=2, worker="w2", group=et.SITE, stream={"gaze_rate_hz": 4.0, "loss_share": 0.3},
                     targets=[], qc_codes=[], calibration_failed=True),
        et.TaskInput(task=3, worker="r1", group=et.RELEASE, stream={"gaze_rate_hz": 13.0, "gap_share": 0.05},
                     centre_score=77, qc_codes=["response_score", "max_index_score"]),
        et.TaskInput(task=4, worker="r1", group=et.RELEASE, stream={"gaze_rate_hz": 11.0, "gap_share": 0.0},
                     centre_score=90, qc_codes=["response_score"]),
    ]


RULES = [("validation", "validation failed"), ("response_score", "response score"),
         ("max_index_score", "max-index score"), ("time_on_task_s", "time on task (s)")]


def _cell(report: dict, section: str, metric: str, unit: str | None = None) -> dict:
    row = next(r for r in report["rows"] if r.section == section and r.metric == metric
               and (unit is None or r.unit == unit))
    return row.cells


def test_report_figures_per_group() -> None:
    report = et.build_report(_inputs(), params=et.ReportParams(), installed={"webgazer": "9.9.9"}, rules=RULES)
    assert report["groups"] == [et.SITE, et.RELEASE]
    rate = _cell(report, "Sampling rate", "gaze sampling rate")
    assert rate[et.SITE] == {"n": 2, "median": 7.0, "min": 4.0, "max": 10.0}
    assert rate[et.RELEASE]["median"] == 12.0
    assert _cell(report, "Tracker", "WebGazer version")[et.SITE]["value"] == "3.5.3 (1 task)"
    assert _cell(report, "Tracker", "camera resolution")[et.SITE]["value"] == "640×480 (1 task)"
    for metric, section in (("WebGazer version", "Tracker"), ("camera resolution", "Tracker"),
                            ("centre", "Validation accuracy"), ("all targets", "Precision (RMS-S2S)")):
        assert _cell(report, section, metric, None)[et.RELEASE] == {"note": et.NOT_IN_RELEASE}
    acc = _cell(report, "Validation accuracy", "top left", "px")[et.SITE]
    assert acc["median"] == 120.0 and acc["n"] == 1
    deg = _cell(report, "Validation accuracy", "all targets", "°")[et.SITE]
    k = et.cm_per_css_px(1366, 768, diagonal_in=15.6)
    expected = np.mean([et.px_to_deg(40, cm_per_px=k, distance_cm=60), et.px_to_deg(120, cm_per_px=k, distance_cm=60)])
    assert deg["median"] == pytest.approx(expected)
    loss = _cell(report, "Data loss", "frames without a face or a prediction")
    assert loss[et.SITE]["median"] == pytest.approx(0.2)
    assert loss[et.RELEASE]["note"].startswith(et.NOT_IN_RELEASE)
    assert _cell(report, "Data loss", "recording time in pauses ≥ 2 s")[et.RELEASE]["max"] == 0.05
    excl = _cell(report, "Exclusions", "QC rule: response score")
    assert (excl[et.RELEASE]["tasks"], excl[et.RELEASE]["workers"]) == (2, 1)
    assert excl[et.SITE]["tasks"] == 0
    assert _cell(report, "Exclusions", "QC rule: time on task (s)")[et.SITE]["tasks"] == 1
    assert _cell(report, "Exclusions", "ended at calibration (every attempt failed)")[et.SITE]["tasks"] == 1
    assert _cell(report, "Exclusions", "ended at calibration (every attempt failed)")[et.RELEASE] == {
        "note": et.NOT_IN_RELEASE}


def test_versions_fall_back_to_the_installed_ones_and_say_so() -> None:
    tasks = [et.TaskInput(task=1, worker="w", group=et.SITE)]
    report = et.build_report(tasks, params=et.ReportParams(), installed={"webgazer": "3.5.3", "face_mesh": None},
                             rules=RULES)
    assert "installed now" in _cell(report, "Tracker", "WebGazer version")[et.SITE]["value"]
    assert _cell(report, "Tracker", "MediaPipe face_mesh version")[et.SITE] == {"note": et.NOT_RECORDED}
    not_computed = {"note": "QC not computed for these tasks"}
    assert _cell(report, "Exclusions", "QC rule: response score")[et.SITE] == not_computed


def test_markdown_and_csv_carry_the_same_figures_and_the_assumptions() -> None:
    params = et.ReportParams(viewing_distance_cm=55, screen_diagonal_in=14)
    report = et.build_report(_inputs(), params=params, installed={}, rules=RULES)
    md = et.to_markdown(report)
    assert "Viewing distance assumed: 55 cm" in md and "14 inches" in md
    assert "| gaze sampling rate | Hz | 7.0 (4.0–10.0; n=2) | 12.0 (11.0–13.0; n=2) |" in md
    assert md.count(et.NOT_IN_RELEASE) >= 8
    rows = list(csv.DictReader(io.StringIO(et.to_csv(report))))
    assert {"section": "Parameters", "metric": "viewing_distance_cm", "value": "55"}.items() <= rows[0].items()
    rate = next(r for r in rows if r["metric"] == "gaze sampling rate" and r["group"] == et.RELEASE)
    assert (float(rate["median"]), float(rate["min"]), float(rate["max"]), rate["n"]) == (12.0, 11.0, 13.0, "2")
    centre = next(r for r in rows if r["metric"] == "centre" and r["group"] == et.RELEASE and r["unit"] == "px")
    assert centre["note"] == et.NOT_IN_RELEASE and centre["median"] == ""


# --------------------------------------------------------------------------- replay layout
def test_replay_layout_prefers_the_recorded_one_then_the_samples_then_an_estimate() -> None:
    recorded = {"width": 640.0, "height": 396.0, "client_width": 623.0, "client_height": 394.0,
                "font_family": "Georgia", "font_size_px": 24.3, "line_height_px": 42.5,
                "padding": [18, 21.6, 18, 21.6], "border": [1, 1, 1, 1]}
    site = schema.conform(pd.DataFrame({"signal": ["gaze"] * 3, "frame": ["box1"] * 3, "x": [5.0, 6.0, 7.0],
                                        "y": [5.0] * 3, "box_width": [1310.0, 1310.0, 900.0],
                                        "box_height": [396.0] * 3}))
    release = schema.conform(pd.DataFrame({"signal": ["gaze"] * 3, "frame": ["box1"] * 3,
                                           "x": [-1.0, 480.0, 612.3], "y": [-1.0, 5.0, 9.0]}))
    assert box_layout(recorded, site, frame="box1")["source"] == "recorded"
    assert box_layout(recorded, site, frame="box1")["width"] == 640.0
    assert box_layout(recorded, site, frame="box1")["other_width_samples"] == 3  # logged at 1310 and 900 px
    from_samples = box_layout({}, site, frame="box1")
    assert (from_samples["source"], from_samples["width"]) == ("samples", 1310.0)
    assert from_samples["other_width_samples"] == 1
    assert from_samples["font_family"] == CHAT_BOX_STYLE["font_family"]
    estimated = box_layout(None, release, frame="box1")
    assert (estimated["source"], estimated["width"]) == ("estimated", 630.0)
    assert box_layout(None, release, frame="box2")["width"] == 560.0  # nothing seen in that box
