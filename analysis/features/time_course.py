"""The last seconds before a pairwise decision, and each answer's reading time course (pure).

Two feature groups that the paper's Table 1 does not have, both computed from a task's matched
instants (:func:`analysis.features.matching.match_task`), one row per turn, named like the
other features (``group.feature.side``) so :func:`analysis.reward.labels.swap_sides` swaps them:

``cascade``
    Gaze cascade (Shimojo et al. 2003: people look longer at what they are about to choose):
    for windows of the last ``w`` seconds before the decision, the share of the signal's
    instants in each answer's box (``cascade.gaze_last2s.1``), and which box the signal was in
    last (``cascade.gaze_last_box.1`` = 1 if that was box 1). The release stores no timestamp of
    the click, so the decision is taken as the end of the turn's reviewing phase (the last
    instant directly matched to one of the answers), after which the worker chooses and writes
    the next query.
``seq``
    The reading time course of each answer: the reviewing phase cut into ``n_bins`` equal time
    bins; per bin and side, the share of gaze instants in the box (``seq.gin_t03.1``), the mean
    normalised character read (``seq.gchar_t03.1``, 0 when none) and the share of mouse
    instants in the box (``seq.min_t03.1``); and the per-character dwell profile, the share of
    the side's directly matched gaze instants in each of ``n_char_bins`` equal slices of the
    answer (``seq.dwell_c02.1``). Input of :class:`analysis.reward.sequence.DwellSequenceClassifier`.

Only pairwise turns get values; pointwise rows are NaN (their side 2 is another turn's answer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Seconds before the decision of the cascade windows.
CASCADE_WINDOWS: tuple[float, ...] = (1.0, 2.0, 4.0)
SEQ_CHANNELS = ("gin", "gchar", "min")


def cascade_names(windows: Sequence[float] = CASCADE_WINDOWS) -> list[str]:
    """Column names of the cascade group for ``windows``."""
    names = []
    for signal in ("gaze", "mouse"):
        for w in windows:
            names += [f"cascade.{signal}_last{w:g}s.1", f"cascade.{signal}_last{w:g}s.2"]
        names += [f"cascade.{signal}_last_box.1", f"cascade.{signal}_last_box.2"]
    return names


def seq_names(n_bins: int = 16, n_char_bins: int = 8) -> list[str]:
    """Column names of the seq group (time course then dwell profile, side 1 then side 2)."""
    names = []
    for side in (1, 2):
        for ch in SEQ_CHANNELS:
            names += [f"seq.{ch}_t{i:02d}.{side}" for i in range(n_bins)]
        names += [f"seq.dwell_c{i:02d}.{side}" for i in range(n_char_bins)]
    return names


def _cascade(t: np.ndarray, box: np.ndarray, end: float, windows: Sequence[float], signal: str) -> dict:
    """``box``: 1, 2 or 0 (neither) per instant, times ``t`` sorted."""
    out = {}
    for w in windows:
        sel = (t > end - w) & (t <= end)
        n = int(sel.sum())
        for side in (1, 2):
            out[f"cascade.{signal}_last{w:g}s.{side}"] = float((box[sel] == side).mean()) if n else np.nan
    in_any = np.flatnonzero((box > 0) & (t <= end))
    last = int(box[in_any[-1]]) if len(in_any) else 0
    out[f"cascade.{signal}_last_box.1"] = float(last == 1) if last else np.nan
    out[f"cascade.{signal}_last_box.2"] = float(last == 2) if last else np.nan
    return out


def _binned_share(t: np.ndarray, hit: np.ndarray, start: float, end: float, n_bins: int) -> np.ndarray:
    if not len(t) or not end > start:
        return np.zeros(n_bins)
    idx = np.clip(((t - start) / (end - start) * n_bins).astype(int), 0, n_bins - 1)
    total = np.bincount(idx, minlength=n_bins)
    hits = np.bincount(idx, weights=hit.astype(float), minlength=n_bins)
    return np.divide(hits, total, out=np.zeros(n_bins), where=total > 0)


def _binned_mean(t: np.ndarray, v: np.ndarray, start: float, end: float, n_bins: int) -> np.ndarray:
    ok = ~np.isnan(v)
    if not ok.any() or not end > start:
        return np.zeros(n_bins)
    idx = np.clip(((t[ok] - start) / (end - start) * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    total = np.bincount(idx, weights=v[ok], minlength=n_bins)
    return np.divide(total, count, out=np.zeros(n_bins), where=count > 0)


def time_course_features(
    instants: pd.DataFrame,
    turns: pd.DataFrame,
    mode: str,
    *,
    windows: Sequence[float] = CASCADE_WINDOWS,
    n_bins: int = 16,
    n_char_bins: int = 8,
) -> pd.DataFrame:
    """``cascade`` and ``seq`` features of one task's turns (``query_id`` plus the columns).

    Parameters
    ----------
    instants : DataFrame
        ``TaskMatch.instants`` (``epoch_ms``, ``turn``, ``rule``, ``signal``, ``b1_x``,
        ``b1_char_index``, ``b2_x``, ``b2_char_index``).
    turns : DataFrame
        The task's turns (``query_id``, ``response_1``, ``response_2``).
    mode : {"pairwise", "pointwise"}
        Pointwise turns get NaN.
    """
    columns = cascade_names(windows) + seq_names(n_bins, n_char_bins)
    rows = []
    t_all = instants["epoch_ms"].to_numpy(dtype="float64") / 1000.0 if len(instants) else np.zeros(0)
    turn_all = instants["turn"].to_numpy(dtype="float64") if len(instants) else np.zeros(0)
    direct_all = instants["rule"].to_numpy(dtype=object) == "response" if len(instants) else np.zeros(0, bool)
    gaze_all = instants["signal"].to_numpy(dtype=object) == "gaze" if len(instants) else np.zeros(0, bool)
    x = {b: instants[f"b{b}_x"].to_numpy(dtype="float64") if len(instants) else np.zeros(0) for b in (1, 2)}
    c = {b: instants[f"b{b}_char_index"].to_numpy(dtype="float64") if len(instants) else np.zeros(0) for b in (1, 2)}
    for qid, r1, r2 in zip(turns["query_id"], turns["response_1"], turns["response_2"], strict=False):
        row = dict.fromkeys(columns, np.nan)
        row["query_id"] = int(qid)
        rows.append(row)
        if mode != "pairwise":
            continue
        of_turn = turn_all == int(qid)
        direct_t = t_all[of_turn & direct_all]
        if not len(direct_t):
            continue
        start, end = float(direct_t.min()), float(direct_t.max())
        lengths = {1: max(len(r1 or ""), 1), 2: max(len(r2 or ""), 1)}
        for signal, is_sig in (("gaze", gaze_all), ("mouse", ~gaze_all)):
            sel = of_turn & is_sig
            t = t_all[sel]
            box = np.where(x[1][sel] >= 0, 1, np.where(x[2][sel] >= 0, 2, 0))
            row.update(_cascade(t, box, end, windows, signal))
            in_phase = (t >= start) & (t <= end)
            for side in (1, 2):
                tp, hit = t[in_phase], box[in_phase] == side
                key = "gin" if signal == "gaze" else "min"
                row.update(zip([f"seq.{key}_t{i:02d}.{side}" for i in range(n_bins)],
                               _binned_share(tp, hit, start, end, n_bins).tolist(), strict=True))
                if signal != "gaze":
                    continue
                char = np.where(hit & direct_all[sel][in_phase], c[side][sel][in_phase], np.nan) / lengths[side]
                char = np.clip(char, 0.0, 1.0)
                row.update(zip([f"seq.gchar_t{i:02d}.{side}" for i in range(n_bins)],
                               _binned_mean(tp, char, start, end, n_bins).tolist(), strict=True))
                read = char[~np.isnan(char)]
                dwell = np.bincount(np.minimum((read * n_char_bins).astype(int), n_char_bins - 1),
                                    minlength=n_char_bins) / max(len(read), 1)
                row.update(zip([f"seq.dwell_c{i:02d}.{side}" for i in range(n_char_bins)], dwell.tolist(),
                               strict=True))
    return pd.DataFrame(rows, columns=["query_id", *columns])


def release_time_course(
    queries: pd.DataFrame,
    samples_by_task,
    **kwargs,  # iterable of (key, mode, samples)
) -> pd.DataFrame:
    """:func:`time_course_features` of every task of a release, indexed by ``query_id``."""
    from .matching import match_task
    from .table import task_turns

    parts = []
    for key, mode, samples in samples_by_task:
        turns = task_turns(queries, str(key[0]), int(key[1]))
        if turns.empty or mode != "pairwise":
            continue
        match = match_task(samples, turns, mode, with_samples=False)
        parts.append(time_course_features(match.instants, turns, mode, **kwargs))
    if not parts:
        return pd.DataFrame(columns=cascade_names() + seq_names()).rename_axis("query_id")
    return pd.concat(parts, ignore_index=True).set_index("query_id")
