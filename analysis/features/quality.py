"""The two task-quality metrics of the paper's filtering (section 3.4, appendix E.3, Fig. 28).

Defined once here; the QC team reuses them. Pure module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class QualityThresholds:
    """Paper's cut-offs: 0.75 for the response score, 0.3 for the max-index score."""

    min_gaze_in_response: float = 0.75
    min_max_index_score: float = 0.3


DEFAULT_THRESHOLDS = QualityThresholds()


def gaze_in_response_share(instants: pd.DataFrame) -> float:
    """Response score: share of a task's on-text gaze samples that were on an answer's text.

    On-text samples are those with text under the point (matching rules ``response``,
    ``instruction`` or ``unmatched``); the score is the share matched to a response. It is low
    when the gaze lands on the waiting message or page chrome instead of the answers, i.e. poor
    calibration or attention. (On the dev release this cut at 0.75 removes 14 of 57 workers;
    the share of *all* gaze samples inside a box is ~0.5 for almost everyone and cannot be
    what the paper's 0.75 applies to.) Site data (matched by ``turn_id``) gets the same rules
    from :func:`analysis.features.matching.site_rules`: ``response`` on answer text,
    ``instruction`` inside a box that shows no answer yet.

    Parameters
    ----------
    instants : DataFrame
        Matched instants of one task (``signal``, ``rule``).

    Returns
    -------
    float
        In [0, 1]; NaN when the task has no on-text gaze sample.
    """
    gaze = instants["signal"].to_numpy(dtype=object) == "gaze"
    rule = instants["rule"].to_numpy(dtype=object)
    on_text = gaze & np.isin(rule, ["response", "instruction", "unmatched"])
    if not on_text.any():
        return float("nan")
    return float((rule[on_text] == "response").mean())


def max_index_score(side_table: pd.DataFrame) -> float:
    """Mean over a task's answers of the share of the answer read by gaze (``max_char / length``).

    Each (turn, box) counts once, capped at 1; an answer never looked at scores 0.

    Parameters
    ----------
    side_table : DataFrame
        Per (turn, signal, box) features of one task (``signal``, ``norm_max_char``).
    """
    gaze = side_table[side_table["signal"] == "gaze"]
    if gaze.empty:
        return float("nan")
    return float(np.clip(gaze["norm_max_char"].fillna(0.0).to_numpy(), 0.0, 1.0).mean())


def quality_filter(
    quality: pd.DataFrame, thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> pd.Series:
    """Boolean mask of the tasks that pass both thresholds (a missing metric fails).

    Parameters
    ----------
    quality : DataFrame
        One row per task with ``gaze_in_response`` and ``max_index_score``.
    """
    return (quality["gaze_in_response"] >= thresholds.min_gaze_in_response) & (
        quality["max_index_score"] >= thresholds.min_max_index_score
    )
