"""Table 1 of the paper: features of one task's matched instants, one row per turn.

Pure module. Input is the output of :func:`analysis.matching.match_task` (instants with a
``turn`` and a ``rule``), so each task's samples are read and scanned once; every turn is a
slice of arrays already in memory.

Names are ``<group>.<feature>.<side>``: group ``text``, ``gaze``, ``mouse`` or ``both`` (uses
both signals); side ``1`` = response 1 (pairwise left, pointwise *current* answer) and ``2`` =
response 2 (pairwise right, pointwise *previous* turn's answer); comparison features have side
``cmp``, ``diff`` or ``ratio`` (always side 1 against side 2).

Definitions shared by several features:

turn
    the instants assigned to the turn by matching (its answer was on screen).
reviewing phase
    per TURN: from the first to the last instant at which either signal was *directly* matched to
    that turn's text (rule ``response``). What lies outside it, but inside the turn, is waiting
    and composing the next query. (The original pipeline used the whole task file, which made
    these features identical for every turn of a task.)
in box
    the signal's point lies inside that side's response box (box ``x >= 0``).
character
    ``char_index`` of in-box samples directly matched to the turn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import DEFAULT_FEATURE_CONFIG, FeatureConfig
from .primitives import eps_ratio, safe_div, smoothed_time, window_means

SIGNALS = ("gaze", "mouse")

#: Per (signal, side) features and their definitions (each stated once, here).
SIDE_FEATURES: dict[str, str] = {
    "max_char": "largest character read: the effective length read",
    "norm_max_char": "max_char / response length",
    "total_records": "number of instants of the turn (about 13 per second)",
    "total_points": "instants of the turn with the point in this side's box",
    "reviewing_points": "total_points inside the reviewing phase",
    "total_norm_points": "total_points / total_records",
    "reviewing_norm_points": "reviewing_points / total_records",
    "total_time": "smoothed seconds in this box over the turn",
    "total_norm_time": "total_time / turn duration",
    "reviewing_time": "smoothed seconds in this box during the reviewing phase",
    "reviewing_norm_time": "reviewing_time / reviewing phase duration",
    "mean_norm_char": "mean of character / response length",
    "var_norm_char": "variance of character / response length",
    "late_time": "smoothed seconds in this box in the last late_fraction of the reviewing phase",
}
#: Per-signal comparison features (side 1 against side 2).
COMPARISON_FEATURES: dict[str, str] = {
    "max_char.cmp": "1 if side 1 max_char > side 2 max_char else 0 (unread counts as -1)",
    "reviewing_time.diff": "side 1 - side 2 reviewing_time",
    "reviewing_norm_time.diff": "side 1 - side 2 reviewing_norm_time",
    "reviewing_time.ratio": "(side 1 + eps_time) / (side 2 + eps_time) reviewing_time",
    "reviewing_norm_time.ratio": "(side 1 + eps_norm) / (side 2 + eps_norm) reviewing_norm_time",
    "total_time.ratio": "(side 1 + eps_time) / (side 2 + eps_time) total_time",
    "late_time.diff": "side 1 - side 2 late_time",
    "late_time.ratio": "(side 1 + eps_time) / (side 2 + eps_time) late_time",
    "norm_max_char.diff": "side 1 - side 2 norm_max_char",
}
TURN_FEATURES: dict[str, str] = {
    "gaze.head_ratio": "share of the turn's gaze instants with the head in WebGazer's green box",
}
TEXT_FEATURES: dict[str, str] = {
    "text.query_length": "characters of the query",
    "text.response_length.1": "characters of response 1 (pairwise left / pointwise current)",
    "text.response_length.2": "characters of response 2 (pairwise right / pointwise previous)",
}
BOTH_FEATURES: dict[str, str] = {
    "both.gaze_mouse_ratio.1": "(gaze + eps_time) / (mouse + eps_time) reviewing_time, side 1",
    "both.gaze_mouse_ratio.2": "(gaze + eps_time) / (mouse + eps_time) reviewing_time, side 2",
}


def window_names(config: FeatureConfig) -> list[str]:
    """``win_00`` ... : mean character in each equal window of the span (NaN when empty)."""
    return [f"win_{i:02d}" for i in range(config.n_windows)]


def _turn_arrays(inst: pd.DataFrame) -> dict[str, np.ndarray]:
    """Columns of the instants as numpy arrays, converted once per task."""
    out = {
        "t": inst["epoch_ms"].to_numpy(dtype="float64") / 1000.0,
        "turn": inst["turn"].to_numpy(dtype=np.int64),
        "direct": (inst["rule"].to_numpy(dtype=object) == "response"),
        "gaze": inst["signal"].to_numpy(dtype=object) == "gaze",
        "head": inst["head_in_box"].to_numpy(dtype="float64"),
    }
    for b in (1, 2):
        out[f"x{b}"] = inst[f"b{b}_x"].to_numpy(dtype="float64")
        out[f"c{b}"] = inst[f"b{b}_char_index"].to_numpy(dtype="float64")
    return out


def side_features(
    t: np.ndarray,
    in_box: np.ndarray,
    char: np.ndarray,
    text_length: int,
    turn_span: tuple[float, float],
    phase: tuple[float, float],
    config: FeatureConfig,
) -> dict[str, float]:
    """Features of one signal on one side of one turn (see :data:`SIDE_FEATURES`).

    Parameters
    ----------
    t : ndarray, shape (n,)
        Sorted times (s) of the signal's instants in the turn.
    in_box : ndarray of bool, shape (n,)
        Point inside this side's box.
    char : ndarray, shape (n,)
        Character index of directly matched in-box samples, NaN elsewhere.
    text_length : int
        Characters of this side's response.
    turn_span, phase : (start_s, end_s)
        The turn's span for this signal and the turn's reviewing phase ((nan, nan) if none).
    """
    n = len(t)
    has_char = ~np.isnan(char)
    norm = char[has_char] / text_length if text_length else np.array([])
    box_t = t[in_box]
    p0, p1 = phase
    in_phase = (t >= p0) & (t <= p1) if np.isfinite(p0) else np.zeros(n, dtype=bool)
    phase_len = (p1 - p0) if np.isfinite(p0) else 0.0
    turn_len = turn_span[1] - turn_span[0] if n else 0.0
    w = config.smoothing_s
    max_char = float(char[has_char].max()) if has_char.any() else np.nan
    total_time = smoothed_time(box_t, turn_span[0], turn_span[1] + w, w) if n else 0.0
    reviewing_time = smoothed_time(box_t, p0, p1 + w, w) if phase_len >= 0 and np.isfinite(p0) else 0.0
    late_start = p1 - config.late_fraction * phase_len if np.isfinite(p0) else np.nan
    late_time = smoothed_time(box_t, late_start, p1 + w, w) if np.isfinite(p0) else 0.0
    total_points = int(in_box.sum())
    reviewing_points = int((in_box & in_phase).sum())
    out = {
        "max_char": max_char,
        "norm_max_char": safe_div(max_char, text_length) if has_char.any() else np.nan,
        "total_records": float(n),
        "total_points": float(total_points),
        "reviewing_points": float(reviewing_points),
        "total_norm_points": safe_div(total_points, n),
        "reviewing_norm_points": safe_div(reviewing_points, n),
        "total_time": total_time,
        "total_norm_time": safe_div(total_time, turn_len + w) if n else np.nan,
        "reviewing_time": reviewing_time,
        "reviewing_norm_time": safe_div(reviewing_time, phase_len + w) if np.isfinite(p0) else np.nan,
        "mean_norm_char": float(norm.mean()) if len(norm) else np.nan,
        "var_norm_char": float(norm.var()) if len(norm) else np.nan,
        "late_time": late_time,
    }
    if config.window_span == "turn":
        span = turn_span if n else (np.nan, np.nan)
    else:
        span = phase
    means = window_means(t[has_char], char[has_char], span[0], span[1], config.n_windows)
    out.update(zip(window_names(config), means.tolist(), strict=False))
    return out


def turn_side_table(
    instants: pd.DataFrame, turns: pd.DataFrame, mode: str, config: FeatureConfig
) -> pd.DataFrame:
    """Per (turn, signal, box) features of one task, before sides are paired up.

    Parameters
    ----------
    instants : DataFrame
        Matched instants of the task (``TaskMatch.instants``), sorted by time.
    turns : DataFrame
        The task's turns in asked order (``query_id``, ``response_1``, ``response_2``).
    mode : {"pointwise", "pairwise"}

    Returns
    -------
    DataFrame
        One row per (query_id, signal, box) with :data:`SIDE_FEATURES`, the windows, and per
        gaze row ``head_ratio``.
    """
    a = _turn_arrays(instants)
    boxes = (1, 2) if mode == "pairwise" else (1,)
    rows = []
    for qid, r1, r2 in zip(turns["query_id"], turns["response_1"], turns["response_2"], strict=False):
        qid = int(qid)
        of_turn = a["turn"] == qid
        direct_t = a["t"][of_turn & a["direct"]]
        phase = (float(direct_t.min()), float(direct_t.max())) if len(direct_t) else (np.nan, np.nan)
        lengths = {1: len(r1 or ""), 2: len(r2 or "")}
        for signal in SIGNALS:
            sel = of_turn & (a["gaze"] if signal == "gaze" else ~a["gaze"])
            t = a["t"][sel]
            span = (float(t.min()), float(t.max())) if len(t) else (np.nan, np.nan)
            direct = a["direct"][sel]
            head = a["head"][sel]
            head_known = ~np.isnan(head)
            head_ratio = float((head[head_known] == 1).mean()) if head_known.any() else np.nan
            for b in boxes:
                x = a[f"x{b}"][sel]
                in_box = x >= 0
                char = np.where(in_box & direct, a[f"c{b}"][sel], np.nan)
                feats = side_features(t, in_box, char, lengths[b], span, phase, config)
                feats.update(query_id=qid, signal=signal, box=b, head_ratio=head_ratio)
                rows.append(feats)
    return pd.DataFrame(rows)


def pair_sides(
    side_table: pd.DataFrame, turns: pd.DataFrame, mode: str, config: FeatureConfig
) -> pd.DataFrame:
    """One feature row per turn: sides, comparisons, text and gaze/mouse ratios.

    Pairwise: side 1 = left box (response 1), side 2 = right box (response 2) of the same turn.
    Pointwise: side 1 = this turn's box, side 2 = the previous turn's box (NaN on the first turn).
    """
    feature_names = [*SIDE_FEATURES, *window_names(config)]
    by_key = {
        (int(q), s, int(b)): row
        for q, s, b, row in zip(
            side_table["query_id"], side_table["signal"], side_table["box"],
            side_table[feature_names + ["head_ratio"]].to_dict("records"), strict=False,
        )
    }
    out = []
    qids = [int(q) for q in turns["query_id"]]
    for pos, (qid, query, r1, r2) in enumerate(
        zip(qids, turns["query"], turns["response_1"], turns["response_2"], strict=False)
    ):
        prev = qids[pos - 1] if pos > 0 else None
        row: dict[str, float] = {"query_id": qid, "turn_index": pos}
        row["previous_query_id"] = prev if mode == "pointwise" else None
        row["text.query_length"] = float(len(query or ""))
        if mode == "pairwise":
            sides = {1: (qid, 1), 2: (qid, 2)}
            row["text.response_length.1"] = float(len(r1 or ""))
            row["text.response_length.2"] = float(len(r2 or ""))
        else:
            sides = {1: (qid, 1), 2: (prev, 1)}
            row["text.response_length.1"] = float(len(r1 or ""))
            prev_text = turns["response_1"].iloc[pos - 1] if pos > 0 else None
            row["text.response_length.2"] = float(len(prev_text or "")) if pos > 0 else np.nan
        values: dict[tuple[str, int], dict] = {}
        for signal in SIGNALS:
            for side, (q, b) in sides.items():
                feats = by_key.get((q, signal, b)) if q is not None else None
                if feats is None:
                    feats = dict.fromkeys([*feature_names, "head_ratio"], np.nan)
                values[(signal, side)] = feats
                for name in feature_names:
                    row[f"{signal}.{name}.{side}"] = feats[name]
            if signal == "gaze":
                if mode == "pairwise":
                    row["gaze.head_ratio"] = values[("gaze", 1)]["head_ratio"]
                else:
                    row["gaze.head_ratio.1"] = values[("gaze", 1)]["head_ratio"]
                    row["gaze.head_ratio.2"] = values[("gaze", 2)]["head_ratio"]
            row.update(comparison_features(values[(signal, 1)], values[(signal, 2)], signal, config))
        for side in (1, 2):
            row[f"both.gaze_mouse_ratio.{side}"] = float(
                eps_ratio(
                    values[("gaze", side)]["reviewing_time"],
                    values[("mouse", side)]["reviewing_time"],
                    config.eps_time,
                )
            )
        out.append(row)
    return pd.DataFrame(out)


def comparison_features(s1: dict, s2: dict, signal: str, config: FeatureConfig) -> dict[str, float]:
    """Side 1 against side 2 (see :data:`COMPARISON_FEATURES`)."""
    m1 = -1.0 if np.isnan(s1["max_char"]) else s1["max_char"]
    m2 = -1.0 if np.isnan(s2["max_char"]) else s2["max_char"]
    e_t, e_n = config.eps_time, config.eps_norm
    p = f"{signal}."
    return {
        p + "max_char.cmp": float(m1 > m2),
        p + "reviewing_time.diff": s1["reviewing_time"] - s2["reviewing_time"],
        p + "reviewing_norm_time.diff": s1["reviewing_norm_time"] - s2["reviewing_norm_time"],
        p + "reviewing_time.ratio": float(eps_ratio(s1["reviewing_time"], s2["reviewing_time"], e_t)),
        p + "reviewing_norm_time.ratio": float(
            eps_ratio(s1["reviewing_norm_time"], s2["reviewing_norm_time"], e_n)
        ),
        p + "total_time.ratio": float(eps_ratio(s1["total_time"], s2["total_time"], e_t)),
        p + "late_time.diff": s1["late_time"] - s2["late_time"],
        p + "late_time.ratio": float(eps_ratio(s1["late_time"], s2["late_time"], e_t)),
        p + "norm_max_char.diff": s1["norm_max_char"] - s2["norm_max_char"],
    }


def task_features(
    instants: pd.DataFrame, turns: pd.DataFrame, mode: str, config: FeatureConfig = DEFAULT_FEATURE_CONFIG
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of every turn of one task.

    Returns
    -------
    features : DataFrame
        One row per turn (see :func:`pair_sides`).
    side_table : DataFrame
        The per (turn, signal, box) table, reused by the quality metrics.
    """
    side_table = turn_side_table(instants, turns, mode, config)
    return pair_sides(side_table, turns, mode, config), side_table
