"""QC figures: on hand-made samples (exact values), and on the imported mini release."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.matching import DEFAULT_INSTRUCTION_TEXTS
from collection.release import reader, schema
from collection.release.chunks import parse_task_folder
from crowd import qc, trajectory

from .conftest import MINI

TEXT = "Gaze tracking measures where people look while they read an answer on screen."
T0 = 1_700_000_000_000


def _samples(points: list[tuple], *, t0: int = T0, step: int = 100, head: int = 1):
    """Pointwise gaze + mouse samples: one instant per point ``(x, y, char[, text])`` (x < 0 =
    outside); the snippet is cut from ``text`` (default: the answer) around ``char``."""
    rows = []
    for i, (x, y, char, *text) in enumerate(points):
        t = t0 + i * step
        source = text[0] if text else TEXT
        snippet = source[max(0, char - 10) : char + 10] if char is not None else None
        for signal in ("gaze", "mouse"):
            rows.append(
                {
                    "signal": signal,
                    "frame": "abs",
                    "x": x + 100,
                    "y": y + 100,
                    "page_timer_ms": float(i * step),
                    "epoch_ms": t,
                    "row": i,
                }
            )
            rows.append(
                {
                    "signal": signal,
                    "frame": "box1",
                    "x": x,
                    "y": y if x >= 0 else -1.0,
                    "snippet": snippet if x >= 0 else None,
                    "char_index": char if x >= 0 else None,
                    "page_timer_ms": float(i * step),
                    "head_in_box": head,
                    "epoch_ms": t,
                    "row": i,
                }
            )
    return schema.conform(pd.DataFrame(rows))


def _turns(asked_ms: int = T0 - 500) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": [11],
            "response_1": [TEXT],
            "response_2": [""],
            "error_1": [""],
            "error_2": [""],
            "asked_at": [pd.Timestamp(asked_ms, unit="ms", tz="UTC")],
        }
    )


def test_scores_on_hand_made_samples() -> None:
    """Response score (analysis.features.quality): share of on-text gaze that is on an answer's
    text: 8 instants on the answer, 2 on the waiting message, 2 off the box (not counted)."""
    waiting = DEFAULT_INSTRUCTION_TEXTS[0]
    on_waiting = [(40.0, 10.0, 30, waiting), (41.0, 10.0, 60, waiting)]
    inside = [(50.0 + i, 20.0, c) for i, c in enumerate([0, 5, 10, 20, 30, 39, 35, 25])]
    outside = [(-1.0, -1.0, None)] * 2
    samples = _samples(on_waiting + inside + outside)
    m = qc.task_metrics(samples, _turns(), mode="pointwise", summary="I learned a lot about eye tracking.")
    assert m["response_score"] == pytest.approx(8 / 10)
    assert m["max_index_score"] == pytest.approx(39 / len(TEXT))
    assert m["n_gaze_samples"] == 12 and m["n_mouse_samples"] == 12
    assert m["sampling_rate_hz"] == pytest.approx(10.0)
    assert m["median_interval_ms"] == pytest.approx(100.0)
    assert m["head_in_box_share"] == pytest.approx(1.0)
    assert m["max_log_gap_s"] == pytest.approx(0.1) and m["n_gaps"] == 0
    assert m["summary_words"] == 7
    assert m["time_on_task_s"] == pytest.approx(1.1) and m["time_on_task_source"] == "samples"


def test_gaps_head_and_tail() -> None:
    pts = [(10.0, 10.0, 3)] * 6
    samples = _samples(pts, head=0)
    # a 5 s hole between the 3rd and 4th instant
    late = samples["row"] >= 3
    samples.loc[late, "epoch_ms"] = samples.loc[late, "epoch_ms"] + 5000
    gaps = qc.log_gaps(samples, end_ms=float(T0 + 5000 + 500 + 20_000))
    assert gaps["n_gaps"] == 2  # the hole and the 20 s of data missing at the end
    assert gaps["tail_gap_s"] == pytest.approx(20.0)
    assert gaps["max_log_gap_s"] == pytest.approx(20.0)
    assert gaps["total_gap_s"] == pytest.approx(25.1)
    assert qc.head_in_box_share(samples) == 0.0


def test_no_samples_is_not_measured_and_flags() -> None:
    m = qc.task_metrics(schema.empty_frame(), _turns(), mode="pointwise")
    assert m["response_score"] is None and m["sampling_rate_hz"] is None
    codes = [r["code"] for r in qc.flag_reasons(m, qc.DEFAULT_THRESHOLDS)]
    assert codes == ["response_score", "max_index_score", "sampling_rate_hz", "summary_words"]
    assert "not measured" in qc.flag_reasons(m, qc.DEFAULT_THRESHOLDS)[0]["message"]


def test_flag_reasons_use_min_and_max_rules_and_skip_unset() -> None:
    metrics = {
        "calibration_score": 65.0,
        "response_score": 0.9,
        "max_index_score": 0.2,
        "sampling_rate_hz": 8.0,
        "max_log_gap_s": 45.0,
        "summary_words": 12,
        "time_on_task_s": 100.0,
        "validation_passed": False,
    }
    reasons = qc.flag_reasons(metrics, qc.DEFAULT_THRESHOLDS)
    assert [r["code"] for r in reasons] == [
        "validation",
        "calibration_score",
        "max_index_score",
        "time_on_task_s",
        "max_log_gap_s",
    ]
    assert reasons[4]["message"] == "longest gap in the logs (s) 45 > 30"
    assert qc.flag_reasons(metrics, qc.PAPER_THRESHOLDS)[-1]["code"] == "max_index_score"
    off = dict.fromkeys(qc.THRESHOLD_NAMES)
    assert qc.flag_reasons({**metrics, "validation_passed": None}, off) == []


def test_worker_table_means_over_tasks() -> None:
    tasks = pd.DataFrame(
        {
            "worker": ["a", "a", "b", "c"],
            "response_score": [0.9, 0.7, 0.5, np.nan],
            "max_index_score": [0.5, 0.3, 0.9, np.nan],
        }
    )
    table = qc.worker_table(tasks, qc.PAPER_THRESHOLDS)
    assert table.loc["a", "response_score"] == pytest.approx(0.8) and not table.loc["a", "excluded"]
    assert table.loc["b", "excluded"] and table.loc["b", "reasons"][0].startswith("response score")
    assert table.loc["c", "excluded"]  # nothing measurable
    assert list(table["n_tasks"]) == [2, 1, 1]


def test_char_dwell_caps_pauses_and_ignores_off_text() -> None:
    t = np.array([0, 100, 300, 2300, 2400], dtype=float)
    c = np.array([0, 0, 2, np.nan, 1])
    dwell = trajectory.char_dwell(t, c, 3, cap_ms=1000)
    # gaps 100, 200, 2000 (capped at 1000), 100; the last sample counts for the median gap, 150
    assert dwell.tolist() == [300.0, 150.0, 1000.0]


@pytest.mark.parametrize("task_id", [163, 200])
def test_release_files_give_plausible_figures(task_id: int) -> None:
    tables = reader.read_release_tables(MINI)
    folder = next(d for _, t, d in reader.iter_task_dirs(MINI) if t == task_id)
    parsed = parse_task_folder(folder)
    samples = schema.decode_blocks([b["data"] for b in parsed["blocks"].values()])
    turns = tables.queries[tables.queries["task_id"] == task_id]
    m = qc.task_metrics(samples, turns, mode=parsed["mode"])
    assert 0 < m["response_score"] <= 1 and 0 < m["max_index_score"] <= 1
    assert m["matching"]["response"] > 0 and m["matching"]["clock_shift_hours"] == 0
    assert 3 < m["sampling_rate_hz"] < 30
    assert not math.isnan(m["head_in_box_share"])


@pytest.mark.django_db
def test_compute_qc_job_on_the_imported_mini_release(mini_release: None, django_capture_on_commit_callbacks) -> None:
    from collection.models import Task
    from crowd.models import TaskQC
    from jobs.models import Job
    from jobs.services import job_start

    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="crowd.compute_qc", params={"release": True})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    with_chunks = Task.objects.filter(chunks__isnull=False).distinct()
    assert TaskQC.objects.count() == with_chunks.count() == 8
    # the stored figures are those of the pure computation on the release files
    row = TaskQC.objects.get(task__release_task_id=200)
    tables = reader.read_release_tables(MINI)
    folder = next(d for _, t, d in reader.iter_task_dirs(MINI) if t == 200)
    samples = schema.decode_blocks([b["data"] for b in parse_task_folder(folder)["blocks"].values()])
    direct = qc.task_metrics(samples, tables.queries[tables.queries["task_id"] == 200], mode="pointwise")
    assert row.response_score == pytest.approx(direct["response_score"])
    assert row.max_index_score == pytest.approx(direct["max_index_score"])
    assert row.n_gaze_samples == direct["n_gaze_samples"]
    assert row.study is None and row.thresholds == qc.DEFAULT_THRESHOLDS
    # release tasks have no calibration in the mini tables' completed rows -> flags say why
    assert all(isinstance(r["message"], str) for q in TaskQC.objects.all() for r in q.reasons)
    assert (
        TaskQC.objects.filter(flags__contains=",summary_words,").exists()
        == TaskQC.objects.filter(summary_words__lt=5).exists()
    )


def _chat_then_post_task(*, hole_s: float = 0.0) -> tuple[pd.DataFrame, float, float]:
    """60 s of chat at 10 Hz (optionally with a hole of ``hole_s`` in the middle), the chat's end
    0.5 s after the last sample, then 3 minutes of post-task questions (which log nothing)."""
    samples = _samples([(10.0, 10.0, 3)] * 600)
    late = samples["row"] >= 300
    samples.loc[late, "epoch_ms"] = samples.loc[late, "epoch_ms"] + int(hole_s * 1000)
    last = float(samples["epoch_ms"].max())
    return samples, last + 500.0, last + 500.0 + 180_000.0


def test_log_gap_window_ends_at_chat_end_not_completion() -> None:
    """The post-task pages are not missing data: counted up to completion they were a 180 s gap
    (flagged, > 30 s); counted up to the chat's end the task has no gap."""
    samples, chat_end, finished = _chat_then_post_task()
    assert qc.log_gaps(samples, end_ms=finished)["max_log_gap_s"] > 30  # the old window would flag
    m = qc.task_metrics(samples, _turns(), mode="pointwise", started_ms=float(T0), finished_ms=finished,
                        chat_ended_ms=chat_end, summary="I learned a lot about eye tracking.")
    assert m["tail_gap_s"] == pytest.approx(0.5) and m["max_log_gap_s"] == pytest.approx(0.5)
    assert "max_log_gap_s" not in {r["code"] for r in qc.flag_reasons(m, qc.DEFAULT_THRESHOLDS)}


def test_log_gap_inside_the_chat_still_flags() -> None:
    samples, chat_end, finished = _chat_then_post_task(hole_s=45.0)
    m = qc.task_metrics(samples, _turns(), mode="pointwise", started_ms=float(T0), finished_ms=finished,
                        chat_ended_ms=chat_end, summary="I learned a lot about eye tracking.")
    assert m["max_log_gap_s"] == pytest.approx(45.1)
    reason = next(r for r in qc.flag_reasons(m, qc.DEFAULT_THRESHOLDS) if r["code"] == "max_log_gap_s")
    assert reason["message"] == "longest gap in the logs (s) 45.1 > 30"


def test_missing_data_at_the_end_of_the_chat_still_flags() -> None:
    """The last samples never arrived: the tail up to the chat's end is a gap."""
    samples, chat_end, _ = _chat_then_post_task()
    m = qc.task_metrics(samples, _turns(), mode="pointwise", chat_ended_ms=chat_end + 40_000)
    assert m["tail_gap_s"] == pytest.approx(40.5)
    assert "max_log_gap_s" in {r["code"] for r in qc.flag_reasons(m, qc.DEFAULT_THRESHOLDS)}
