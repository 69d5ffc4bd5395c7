"""Quality-control figures of one task and the thresholds that flag it (pure: no Django).

The paper's two filters (section 3.4, Fig. 28) are defined ONCE, in
:mod:`analysis.features.quality`, on the turn matching of :mod:`analysis.matching`:

* response score (:func:`analysis.features.quality.gaze_in_response_share`; paper threshold
  0.75): the share of on-text gaze that lands on an answer's text (see its docstring for why);
* max-index score = mean over the task's answers of ``max char_index read / answer length``
  (:func:`analysis.features.quality.max_index_score`; paper threshold 0.3).

This module adds the operational figures the paper did not filter on but a live study needs:
sampling rate, head-in-box share, gaps in the logs (including data missing at the end of the
task, which the original site lost every time), time on task and summary length, and the rule
table that turns figures + thresholds into flags with human-readable reasons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.features.config import FeatureConfig
from analysis.features.extract import turn_side_table
from analysis.features.quality import gaze_in_response_share, max_index_score
from analysis.matching import match_task, order_turns
from collection.sampling import achieved_rates, instant_rows

#: Shortest pause between consecutive samples that counts as a gap in the logs.
GAP_S = 2.0


@dataclass(frozen=True)
class Rule:
    """One QC rule: ``metric`` compared with the threshold ``name`` (``min`` or ``max``).

    ``missing_fails``: a task whose metric could not be measured is flagged (no gaze at all
    means nothing can vouch for the data); otherwise an unmeasured metric is simply skipped
    (release tasks have no validation and no start time).
    """

    name: str
    metric: str
    op: str
    label: str
    missing_fails: bool = False


RULES: tuple[Rule, ...] = (
    Rule("min_calibration_score", "calibration_score", "min", "calibration score"),
    Rule("min_response_score", "response_score", "min", "response score (gaze on answer text)", True),
    Rule("min_max_index_score", "max_index_score", "min", "max-index score (share of answer read)", True),
    Rule("min_sampling_rate_hz", "sampling_rate_hz", "min", "gaze sampling rate (Hz)", True),
    Rule("min_head_in_box_share", "head_in_box_share", "min", "share of time with the head in the box"),
    Rule("min_time_on_task_s", "time_on_task_s", "min", "time on task (s)"),
    Rule("max_log_gap_s", "max_log_gap_s", "max", "longest gap in the logs (s)"),
    Rule("min_summary_words", "summary_words", "min", "summary length (words)"),
)
THRESHOLD_NAMES: tuple[str, ...] = tuple(r.name for r in RULES)

#: Defaults of a new study: the paper's thresholds plus conservative operational ones.
DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "min_calibration_score": 70.0,
    "min_response_score": 0.75,
    "min_max_index_score": 0.3,
    "min_sampling_rate_hz": 3.0,
    "min_head_in_box_share": None,
    "min_time_on_task_s": 240.0,
    "max_log_gap_s": 30.0,
    "min_summary_words": 5.0,
}
#: Only the two filters the paper applied to its workers (used for the release comparison).
PAPER_THRESHOLDS: dict[str, float | None] = {name: None for name in THRESHOLD_NAMES} | {
    "min_response_score": 0.75,
    "min_max_index_score": 0.3,
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --------------------------------------------------------------------------- figures
def sampling_stats(samples: pd.DataFrame) -> dict[str, float | int | None]:
    """Samples per signal and the gaze sampling rate.

    Parameters
    ----------
    samples : DataFrame
        One task's samples, long format (``collection.release.schema``).

    Returns
    -------
    dict
        ``n_gaze_samples``, ``n_mouse_samples`` (instants, not rows), ``sampling_rate_hz``
        ((n - 1) / span of the gaze epoch times; None with fewer than 2 instants) and
        ``median_interval_ms`` (median gap between consecutive gaze instants); ``gaze_rate_hz`` and
        ``mouse_rate_hz``: the achieved rates over the window of both signals
        (:func:`collection.sampling.achieved_rates`, the figures the site stores on the task).
    """
    gaze, mouse = instant_rows(samples, "gaze"), instant_rows(samples, "mouse")
    t = np.sort(gaze["epoch_ms"].dropna().to_numpy(dtype="float64"))
    rate = interval = None
    if len(t) >= 2 and t[-1] > t[0]:
        rate = float((len(t) - 1) / ((t[-1] - t[0]) / 1000.0))
        interval = float(np.median(np.diff(t)))
    achieved = achieved_rates(samples)
    return {
        "n_gaze_samples": len(gaze),
        "n_mouse_samples": len(mouse),
        "sampling_rate_hz": rate,
        "median_interval_ms": interval,
        "gaze_rate_hz": achieved["gaze_rate_hz"],
        "mouse_rate_hz": achieved["mouse_rate_hz"],
    }


def head_in_box_share(samples: pd.DataFrame) -> float | None:
    """Share of gaze instants whose ``head_in_box`` flag is 1, among those where it is known."""
    gaze = samples[(samples["signal"].astype(str) == "gaze") & (samples["frame"].astype(str) != "abs")]
    gaze = gaze.drop_duplicates(["page_timer_ms", "epoch_ms"])
    known = gaze["head_in_box"].dropna()
    return float((known.to_numpy() == 1).mean()) if len(known) else None


def log_gaps(samples: pd.DataFrame, *, end_ms: float | None = None, min_gap_s: float = GAP_S) -> dict[str, Any]:
    """Pauses in the recorded timeline (either signal), and the data missing at the end.

    Parameters
    ----------
    samples : DataFrame
        One task's samples.
    end_ms : float, optional
        When the task ended (epoch ms). The time from the last sample to it counts as a gap:
        the original site dropped the last seconds of every task.
    min_gap_s : float
        Pauses shorter than this are ordinary frame jitter.

    Returns
    -------
    dict
        ``max_log_gap_s`` (longest pause, tail included; None without samples), ``total_gap_s``
        (sum of pauses >= ``min_gap_s``), ``n_gaps`` and ``tail_gap_s`` (None without ``end_ms``).
    """
    t = np.unique(samples["epoch_ms"].dropna().to_numpy(dtype="float64"))
    if len(t) == 0:
        return {"max_log_gap_s": None, "total_gap_s": None, "n_gaps": 0, "tail_gap_s": None}
    gaps = np.diff(t) / 1000.0
    tail = None
    if end_ms is not None and not _missing(end_ms):
        tail = max(0.0, (float(end_ms) - t[-1]) / 1000.0)
        gaps = np.append(gaps, tail)
    big = gaps[gaps >= min_gap_s]
    return {
        "max_log_gap_s": float(gaps.max()) if len(gaps) else 0.0,
        "total_gap_s": float(big.sum()),
        "n_gaps": len(big),
        "tail_gap_s": tail,
    }


def summary_words(text: str | None) -> int:
    """Words in the post-task summary (a word = a run of letters or digits)."""
    return len(re.findall(r"\w+", text or ""))


def paper_scores(samples: pd.DataFrame, turns: pd.DataFrame, mode: str) -> dict[str, Any]:
    """The paper's response and max-index scores of one task, through the analysis matching.

    Parameters
    ----------
    samples : DataFrame
        One task's samples.
    turns : DataFrame
        The task's turns (``query_id``, ``response_1``, ``response_2``, ``error_*``, ``asked_at``).
    mode : {"pointwise", "pairwise"}

    Returns
    -------
    dict
        ``response_score``, ``max_index_score`` (NaN -> None) and ``matching`` (rule counts).
    """
    if samples.empty or turns.empty:
        return {"response_score": None, "max_index_score": None, "matching": {}}
    ordered = order_turns(turns)
    match = match_task(samples, ordered, mode, with_samples=False)
    sides = turn_side_table(match.instants, ordered, mode, FeatureConfig())
    response = gaze_in_response_share(match.instants)
    max_index = max_index_score(sides) if len(sides) else float("nan")
    return {
        "response_score": None if math.isnan(response) else response,
        "max_index_score": None if math.isnan(max_index) else max_index,
        "matching": match.report,
    }


def task_metrics(
    samples: pd.DataFrame,
    turns: pd.DataFrame,
    *,
    mode: str,
    calibration_score: float | None = None,
    validation_passed: bool | None = None,
    summary: str = "",
    started_ms: float | None = None,
    finished_ms: float | None = None,
    chat_ended_ms: float | None = None,
) -> dict[str, Any]:
    """Every QC figure of one task (see :data:`RULES` for those that can flag it).

    Time on task is ``finished - started`` when both are known, else the span of the samples
    (``time_on_task_source`` says which). The gaps in the logs are looked for up to the end of
    the chat (``chat_ended_ms``), where logging ends: the post-task questions that follow log
    nothing, and counting them as missing data flagged nearly every real worker. Without it (tasks
    from before it was stored, released tasks) there is no tail gap.
    """
    out: dict[str, Any] = {"calibration_score": calibration_score, "validation_passed": validation_passed}
    out.update(paper_scores(samples, turns, mode))
    out.update(sampling_stats(samples))
    out["head_in_box_share"] = head_in_box_share(samples)
    out.update(log_gaps(samples, end_ms=chat_ended_ms))
    out["summary_words"] = summary_words(summary)
    out["n_turns"] = len(turns)
    t = samples["epoch_ms"].dropna()
    if not _missing(started_ms) and not _missing(finished_ms):
        out["time_on_task_s"], out["time_on_task_source"] = (finished_ms - started_ms) / 1000.0, "task"
    elif len(t):
        out["time_on_task_s"], out["time_on_task_source"] = float(t.max() - t.min()) / 1000.0, "samples"
    else:
        out["time_on_task_s"], out["time_on_task_source"] = None, None
    return out


# --------------------------------------------------------------------------- flags
def flag_reasons(metrics: Mapping[str, Any], thresholds: Mapping[str, float | None]) -> list[dict[str, Any]]:
    """The rules a task fails: ``[{"code", "value", "threshold", "message"}]``, in rule order.

    A threshold that is None (or absent) is not applied. A failed validation is always a reason
    when the validation was run.
    """
    reasons = []
    if metrics.get("validation_passed") is False:
        reasons.append({"code": "validation", "value": False, "threshold": None, "message": "validation failed"})
    for rule in RULES:
        limit = thresholds.get(rule.name)
        if _missing(limit):
            continue
        value = metrics.get(rule.metric)
        if _missing(value):
            if rule.missing_fails:
                reasons.append(
                    {"code": rule.metric, "value": None, "threshold": limit, "message": f"{rule.label}: not measured"}
                )
            continue
        failed = value < limit if rule.op == "min" else value > limit
        if failed:
            sign = "<" if rule.op == "min" else ">"
            reasons.append(
                {
                    "code": rule.metric,
                    "value": value,
                    "threshold": limit,
                    "message": f"{rule.label} {value:.3g} {sign} {limit:.3g}",
                }
            )
    return reasons


def worker_table(tasks: pd.DataFrame, thresholds: Mapping[str, float | None]) -> pd.DataFrame:
    """Aggregate task figures per worker and say which workers the thresholds exclude.

    The paper judged *workers* (Fig. 28 plots one point per worker), so a worker's score is the
    mean over their tasks that have the metric; a worker is excluded when that mean fails a
    threshold (a worker with no measurable task is excluded too).

    Parameters
    ----------
    tasks : DataFrame
        One row per task: ``worker`` and the metric columns of :data:`RULES`.
    thresholds : mapping
        Threshold name -> value or None.

    Returns
    -------
    DataFrame
        Indexed by worker: ``n_tasks``, the mean of each metric, ``excluded`` (bool) and
        ``reasons`` (list of messages).
    """
    metrics = [r.metric for r in RULES if r.metric in tasks.columns]
    numeric = tasks[metrics].apply(pd.to_numeric, errors="coerce")
    grouped = numeric.groupby(tasks["worker"])
    table = grouped.mean()
    table.insert(0, "n_tasks", tasks.groupby("worker").size())
    reasons = [
        [
            r["message"]
            for r in flag_reasons({k: (None if pd.isna(v) else float(v)) for k, v in row.items()}, thresholds)
        ]
        for _, row in table[metrics].iterrows()
    ]
    table["reasons"] = reasons
    table["excluded"] = [bool(r) for r in reasons]
    return table
