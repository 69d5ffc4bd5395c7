"""Link trajectory samples to the turn (query) whose text was on screen (paper, appendix B.1).

Pure module (no Django). The release stores one trajectory per *task*; a task has several turns,
and the samples carry no query id. We recover it from what the user was looking at: each on-text
sample has a ``snippet`` (about 20 characters around the point) and a ``char_index`` (offset in
the text under the point). The snippet starts about 10 characters before the index in the data,
so a candidate text *matches* when the snippet occurs in it starting within ``radius`` (15)
characters of ``char_index``.

Rules, applied per *instant* (one eye-tracker frame of one signal; the abs/box files of a task are
row-aligned, so an instant has an abs row and one row per box):

``instruction`` (-1)
    the snippet matches the instruction text that a box shows before its answer arrives.
``response`` (query id)
    the snippet matches the turn's response in that box (pairwise box1 <-> response 1, box2 <->
    response 2; pointwise box1 <-> response 1). When several turns match we take the most recent
    one that had already been asked at that time (``asked_at``, when the task's clock is usable).
``unmatched`` (0)
    on text, but no rule matched (page chrome such as buttons, texts edited by the user).
``inherited``
    off-box, or inside a box but with an empty snippet: the value of the last ``instruction`` or
    ``response`` match. An EMPTY snippet never matches anything (the empty string occurs in every
    text: treating it as a match made tens of thousands of off-text samples "instruction" ones).
``before_match`` (-2)
    inherited before any match.
``turn_id``
    data collected by our own site carries ``turn_id``: it is used as is, nothing is matched.
    The rule then only says *what* was under the point (:func:`site_rules`): ``response`` when
    a character of the turn's answer was (the page gives a character index only on answer
    text), ``instruction`` when the point was inside a box that showed no answer yet (the
    waiting message), ``turn_id`` elsewhere. So the quality scores and the character features,
    which read ``response``/``instruction``, measure the site's data as they measure the paper's.

Gaze and mouse instants are processed on one timeline: what is on screen is a property of time,
not of the signal, so a mouse match tells where an off-box gaze sample belongs too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Text a response box shows while the answer is being generated (learned from the mini release:
#: the unmatched snippets at the start of tasks, ordered by ``char_index``, spell it out).
DEFAULT_INSTRUCTION_TEXTS: tuple[str, ...] = (
    "After you type your question, please wait patiently. It might take up to 1 minute for AI "
    "to finish generating their answer. The AI's response will show up here.",
)

TURN_INSTRUCTION = -1
TURN_BEFORE_MATCH = -2
TURN_UNMATCHED = 0
RULES = ("turn_id", "response", "instruction", "unmatched", "inherited", "before_match")

#: Columns of the wide per-instant table built by :func:`align_instants`.  ``b1_*`` is the single
#: box (pointwise) or the left box (response 1); ``b2_*`` the right box (all-missing in pointwise).
BOX_FIELDS = ("x", "y", "snippet", "char_index")


@dataclass(frozen=True)
class MatchConfig:
    """Parameters of turn matching.

    Parameters
    ----------
    radius : int
        A snippet matches a text when it starts within ``radius`` characters of ``char_index``
        (paper: 15).
    instruction_texts : tuple of str
        Texts shown in a box before an answer (matched before responses, as in the paper).
    instruction_anywhere : bool
        Also treat a snippet found *anywhere* in an instruction text as instruction when no
        response matched. Layout variants of the waiting message shift ``char_index`` by
        tens of characters; without this they would count as ``unmatched``.
    min_anywhere_length : int
        Shortest snippet allowed for the ``instruction_anywhere`` fallback (short words such as
        "answer" are too common).
    match_errors : bool
        Match the provider error message of a turn (moved out of the response by the reader)
        when its response is empty: the box showed that message for that turn.
    time_slack_ms : int
        A sample may belong to a turn asked up to this long *after* it (``asked_at`` is logged
        when the answer is stored, about a second before it is first seen, with clock jitter).
    clock_window_ms : int
        ``asked_at`` is usable for a task only if every turn's time lies within the task's
        sample time span widened by this much (after the clock shift below).
    clock_shift_hours : tuple of int
        Whole-hour corrections tried for ``asked_at`` (about 12 % of the dev tasks have query
        times 4 hours off the samples' epoch: a server time zone). The smallest shift that puts
        every turn inside the span is used.
    """

    radius: int = 15
    instruction_texts: tuple[str, ...] = DEFAULT_INSTRUCTION_TEXTS
    instruction_anywhere: bool = True
    min_anywhere_length: int = 6
    match_errors: bool = True
    time_slack_ms: int = 5_000
    clock_window_ms: int = 120_000
    clock_shift_hours: tuple[int, ...] = tuple(sorted(range(-14, 15), key=abs))


DEFAULT_MATCH_CONFIG = MatchConfig()


@dataclass
class TaskMatch:
    """Result of matching one task.

    Attributes
    ----------
    instants : DataFrame
        One row per instant (see :func:`align_instants`) plus ``turn`` (int64: query id, -1, -2
        or 0) and ``rule`` (one of :data:`RULES`), sorted by time.
    samples : DataFrame or None
        The input samples with ``instant`` (row of ``instants``) and ``turn`` columns added, when
        requested.
    report : dict
        ``rule -> number of sample rows`` plus ``clock_shift_hours`` (None when the task's
        ``asked_at`` was unusable).
    """

    instants: pd.DataFrame
    samples: pd.DataFrame | None
    report: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- text matching
def occurs_near(text: str, snippet: str, index: int, radius: int) -> bool:
    """Whether ``snippet`` occurs in ``text`` starting within ``radius`` characters of ``index``.

    Why the *start* and not "inside text[index-radius:index+radius]": the snippet extends about
    10 characters past the index, so the slice form rejects most snippets near a text's start.
    An empty snippet never matches (it would match every text).
    """
    if not snippet or not text:
        return False
    start = text.find(snippet, max(0, index - radius))
    return start != -1 and start <= index + radius


def classify_snippet(
    snippet: str,
    index: int,
    texts: Sequence[str],
    config: MatchConfig,
) -> int:
    """Classify one on-text snippet of one box.

    Parameters
    ----------
    snippet, index : the sample's text and character index.
    texts : the task's candidate texts for this box, one per turn in turn order ("" = none).

    Returns
    -------
    int
        ``TURN_INSTRUCTION``, ``TURN_UNMATCHED``, or a positive bit mask: bit ``j`` set when
        turn ``j`` (0-based, in turn order) matches.
    """
    if not snippet:
        return TURN_UNMATCHED
    for instruction in config.instruction_texts:
        if occurs_near(instruction, snippet, index, config.radius):
            return TURN_INSTRUCTION
    mask = 0
    for j, text in enumerate(texts):
        if occurs_near(text, snippet, index, config.radius):
            mask |= 1 << j
    if mask:
        return mask
    if config.instruction_anywhere and len(snippet) >= config.min_anywhere_length:
        if any(snippet in instruction for instruction in config.instruction_texts):
            return TURN_INSTRUCTION
    return TURN_UNMATCHED


# --------------------------------------------------------------------------- alignment
def align_instants(samples: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Put the row-aligned abs/box rows of each signal side by side, one row per instant.

    The release writes one row per frame to every file of a task, so the i-th rows of
    ``abs_gaze``, ``rel_gaze_one`` and ``rel_gaze_two`` describe the same instant (pairwise
    ``abs_gaze`` is already de-duplicated by the reader). When the counts of a signal's files
    differ (rows lost to parse errors) the box rows are joined to the abs rows by nearest
    ``epoch_ms`` instead.

    Parameters
    ----------
    samples : DataFrame
        One task's samples in the long format of :mod:`collection.release.schema`.

    Returns
    -------
    instants : DataFrame
        Columns ``signal``, ``epoch_ms`` (int64, from the abs row, else box1), ``abs_x``,
        ``abs_y``, ``head_in_box`` (float, NaN when unknown), ``b1_x``, ``b1_y``,
        ``b1_snippet``, ``b1_char_index`` (float, NaN = none), the same for ``b2``, and
        ``turn_id`` (float, NaN = none). Not yet sorted by time.
    sample_instant : ndarray of int, shape (len(samples),)
        For each input row, the row of ``instants`` it belongs to (-1 if it could not be aligned).
    """
    parts = []
    sample_instant = np.full(len(samples), -1, dtype=np.int64)
    offset = 0
    pos = np.arange(len(samples))
    signals = samples["signal"].astype(str).to_numpy()
    frames = samples["frame"].astype(str).to_numpy()
    for signal in ("gaze", "mouse"):
        by_frame = {}
        for frame in ("abs", "box1", "box2"):
            sel = pos[(signals == signal) & (frames == frame)]
            if len(sel):
                order = np.argsort(samples["row"].to_numpy()[sel], kind="stable")
                by_frame[frame] = sel[order]
        if not by_frame:
            continue
        base = "abs" if "abs" in by_frame else "box1"
        n = len(by_frame[base])
        part = {"signal": np.full(n, signal, dtype=object)}
        base_rows = by_frame[base]
        part["epoch_ms"] = samples["epoch_ms"].to_numpy(dtype="float64", na_value=np.nan)[base_rows]
        for frame, rows in by_frame.items():
            if len(rows) != n:
                rows = _nearest_rows(samples, rows, part["epoch_ms"])
            else:
                rows = rows.astype(np.int64)
            valid = rows >= 0
            sample_instant[rows[valid]] = offset + np.flatnonzero(valid)
            by_frame[frame] = rows
        part.update(_frame_columns(samples, by_frame.get("abs"), n, "abs", ("x", "y")))
        for box in ("box1", "box2"):
            prefix = "b1" if box == "box1" else "b2"
            part.update(_frame_columns(samples, by_frame.get(box), n, prefix, BOX_FIELDS))
        head = _frame_columns(samples, by_frame.get("box1"), n, "h", ("head_in_box", "turn_id"))
        part["head_in_box"] = head["h_head_in_box"]
        turn_id = head["h_turn_id"]
        if np.isnan(turn_id).all() and "abs" in by_frame:
            turn_id = _frame_columns(samples, by_frame["abs"], n, "h", ("turn_id",))["h_turn_id"]
        part["turn_id"] = turn_id
        parts.append(pd.DataFrame(part))
        offset += n
    if not parts:
        columns = ["signal", "epoch_ms", "abs_x", "abs_y", "head_in_box", "turn_id"]
        columns += [f"{p}_{f}" for p in ("b1", "b2") for f in BOX_FIELDS]
        return pd.DataFrame({c: [] for c in columns}), sample_instant
    instants = pd.concat(parts, ignore_index=True)
    return instants, sample_instant


def _nearest_rows(samples: pd.DataFrame, rows: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For each time in ``times`` the row (of ``rows``) nearest in ``epoch_ms``; -1 if > 500 ms."""
    t = samples["epoch_ms"].to_numpy(dtype="float64", na_value=np.nan)[rows]
    order = np.argsort(t, kind="stable")
    t, rows = t[order], rows[order]
    idx = np.clip(np.searchsorted(t, times), 1, max(len(t) - 1, 1))
    left = np.clip(idx - 1, 0, len(t) - 1)
    right = np.clip(idx, 0, len(t) - 1)
    pick = np.where(np.abs(t[left] - times) <= np.abs(t[right] - times), left, right)
    out = rows[pick].astype(np.int64)
    out[~(np.abs(t[pick] - times) <= 500)] = -1
    return out


def _frame_columns(
    samples: pd.DataFrame, rows: np.ndarray | None, n: int, prefix: str, fields: Sequence[str]
) -> dict[str, np.ndarray]:
    out = {}
    for f in fields:
        name = f"{prefix}_{f}"
        if f == "snippet":
            values = np.full(n, None, dtype=object)
            if rows is not None:
                src = samples["snippet"].to_numpy(dtype=object)
                valid = rows >= 0
                values[valid] = src[rows[valid]]
        else:
            values = np.full(n, np.nan)
            if rows is not None and f in samples.columns:
                src = samples[f].to_numpy(dtype="float64", na_value=np.nan)
                valid = rows >= 0
                values[valid] = src[rows[valid]]
        out[name] = values
    return out


# --------------------------------------------------------------------------- clock
def clock_shift(asked_ms: np.ndarray, first_ms: float, last_ms: float, config: MatchConfig) -> int | None:
    """Whole-hour correction that puts every ``asked_ms`` inside the sample span, or None.

    Returns None when a turn has no time or no tried shift works: ``asked_at`` is then not used
    and ties between matching turns are broken by turn order instead.
    """
    if len(asked_ms) == 0 or np.isnan(asked_ms).any() or not np.isfinite([first_ms, last_ms]).all():
        return None
    lo, hi = first_ms - config.clock_window_ms, last_ms + config.clock_window_ms
    for hours in config.clock_shift_hours:
        shifted = asked_ms + hours * 3_600_000
        if (shifted >= lo).all() and (shifted <= hi).all():
            return hours
    return None


# --------------------------------------------------------------------------- matching
def turn_texts(turns: pd.DataFrame, box: int, config: MatchConfig) -> list[str]:
    """Candidate text of each turn for box 1 or 2 (response, else its error message)."""
    responses = turns[f"response_{box}"].fillna("").astype(str).tolist()
    if config.match_errors and f"error_{box}" in turns.columns:
        errors = turns[f"error_{box}"].fillna("").astype(str).tolist()
        responses = [r if r else e for r, e in zip(responses, errors, strict=False)]
    return responses


def match_instants(
    instants: pd.DataFrame,
    turns: pd.DataFrame,
    mode: str,
    config: MatchConfig = DEFAULT_MATCH_CONFIG,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Assign a turn to every instant of one task.

    Parameters
    ----------
    instants : DataFrame
        From :func:`align_instants`, **sorted by time**.
    turns : DataFrame
        The task's queries with ``query_id``, ``response_1``, ``response_2`` (``error_*`` and
        ``asked_at`` optional), in turn order (by ``asked_at``, then ``query_id``).
    mode : {"pointwise", "pairwise"}
        Pointwise tasks only use box 1.

    Returns
    -------
    turn : ndarray of int64, shape (n_instants,)
    rule : ndarray of object (rule names), shape (n_instants,)
    shift : int or None
        Clock shift applied to ``asked_at`` (None: times not used).
    """
    n = len(instants)
    turn = np.zeros(n, dtype=np.int64)
    rule = np.empty(n, dtype=object)
    if n == 0:
        return turn, rule, None
    qids = turns["query_id"].to_numpy(dtype=np.int64)
    boxes = (1, 2) if mode == "pairwise" else (1,)
    codes = np.zeros(n, dtype=object)  # 0 = no on-text sample in any box
    has_text = np.zeros(n, dtype=bool)
    for box in boxes:
        texts = turn_texts(turns, box, config)
        snippet = instants[f"b{box}_snippet"].to_numpy(dtype=object)
        char = instants[f"b{box}_char_index"].to_numpy(dtype="float64")
        x = instants[f"b{box}_x"].to_numpy(dtype="float64")
        on_text = (x >= 0) & ~np.isnan(char) & np.array([bool(s) for s in snippet], dtype=bool)
        memo: dict[tuple[str, int], int] = {}
        for i in np.flatnonzero(on_text):
            key = (snippet[i], int(char[i]))
            code = memo.get(key)
            if code is None:
                code = memo[key] = classify_snippet(key[0], key[1], texts, config)
            codes[i] = _combine(codes[i], code) if has_text[i] else code
        has_text |= on_text

    times = instants["epoch_ms"].to_numpy(dtype="float64")
    shift = None
    if "asked_at" in turns.columns and len(turns):
        asked = turns["asked_at"]
        asked_ms = np.array(
            [np.nan if pd.isna(a) else pd.Timestamp(a).value / 1e6 for a in asked], dtype="float64"
        )
        shift = clock_shift(asked_ms, np.nanmin(times), np.nanmax(times), config)
    if shift is not None:
        asked_ms = asked_ms + shift * 3_600_000
        # number of turns already asked at each instant (turn order == time order here)
        n_asked = np.searchsorted(np.sort(asked_ms), times + config.time_slack_ms, side="right")

    last = None  # last matched value (query id or -1)
    current_pos = -1  # position of the turn last matched (for the no-clock tie break)
    for i in range(n):
        code = codes[i] if has_text[i] else None
        if code is None:
            if last is None:
                turn[i], rule[i] = TURN_BEFORE_MATCH, "before_match"
            else:
                turn[i], rule[i] = last, "inherited"
            continue
        if code == TURN_UNMATCHED:
            turn[i], rule[i] = TURN_UNMATCHED, "unmatched"
            continue
        if code == TURN_INSTRUCTION:
            turn[i], rule[i] = TURN_INSTRUCTION, "instruction"
            last = TURN_INSTRUCTION
            continue
        if shift is not None:
            allowed = code & ((1 << int(n_asked[i])) - 1)
            # most recent turn already asked; if none was (clock jitter), the earliest match
            pos = allowed.bit_length() - 1 if allowed else _lowest_bit(code)
        else:
            pos = _pick_without_clock(code, current_pos)
        current_pos = pos
        last = int(qids[pos])
        turn[i], rule[i] = last, "response"
    return turn, rule, shift


def _combine(a: int, b: int) -> int:
    """Merge the codes of two boxes at one instant: a response match beats instruction beats none."""
    if a > 0 and b > 0:
        return a | b
    return max(a, b) if max(a, b) > 0 else min(a, b)


def _lowest_bit(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _pick_without_clock(mask: int, current_pos: int) -> int:
    """Without usable times: keep the current turn if it matches, else the next matching turn
    after it (turns are shown in order), else the most recent matching one."""
    if current_pos >= 0 and mask >> current_pos & 1:
        return current_pos
    later = mask >> (current_pos + 1) if current_pos >= 0 else mask
    if later:
        return _lowest_bit(later) + (current_pos + 1 if current_pos >= 0 else 0)
    return mask.bit_length() - 1


def order_turns(turns: pd.DataFrame) -> pd.DataFrame:
    """A task's turns in the order they were asked (``asked_at``, then ``query_id``)."""
    keys = [c for c in ("asked_at", "query_id") if c in turns.columns]
    return turns.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def site_rules(instants: pd.DataFrame, turn_id: np.ndarray) -> np.ndarray:
    """Rules of instants attributed by the page's ``turn_id`` (see the module docstring).

    Parameters
    ----------
    instants : DataFrame
        Output of :func:`align_instants` (``b1_*``, ``b2_*`` columns).
    turn_id : ndarray of float, shape (n_instants,)
        The page's turn id, NaN before the first question.
    """
    on_char = np.zeros(len(instants), dtype=bool)
    in_box = np.zeros(len(instants), dtype=bool)
    for b in ("b1", "b2"):
        on_char |= ~np.isnan(instants[f"{b}_char_index"].to_numpy(dtype="float64"))
        x = instants[f"{b}_x"].to_numpy(dtype="float64")
        in_box |= ~np.isnan(x) & (x >= 0)
    has_turn = ~np.isnan(turn_id)
    rule = np.full(len(instants), "turn_id", dtype=object)
    rule[has_turn & in_box & ~on_char] = "instruction"
    rule[has_turn & on_char] = "response"
    return rule


def match_task(
    samples: pd.DataFrame,
    turns: pd.DataFrame,
    mode: str,
    config: MatchConfig = DEFAULT_MATCH_CONFIG,
    *,
    with_samples: bool = True,
) -> TaskMatch:
    """Match one task's samples to its turns (see the module docstring for the rules).

    Parameters
    ----------
    samples : DataFrame
        All samples of one task (long format).
    turns : DataFrame
        The task's rows of the release ``queries`` table.
    mode : {"pointwise", "pairwise"}
    with_samples : bool
        Also return the long samples with ``instant`` and ``turn`` columns (costs a copy).

    Returns
    -------
    TaskMatch
    """
    instants, sample_instant = align_instants(samples)
    order = np.lexsort(
        (np.arange(len(instants)), instants["signal"].to_numpy(dtype=str), instants["epoch_ms"].to_numpy())
    )
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    instants = instants.iloc[order].reset_index(drop=True)
    sample_instant = np.where(sample_instant >= 0, rank[np.clip(sample_instant, 0, None)], -1)

    turn_id = instants["turn_id"].to_numpy(dtype="float64")
    shift = None
    if len(instants) and not np.isnan(turn_id).all():
        # Site data: the page knew which turn it showed; matching would only add errors.
        turn = np.where(np.isnan(turn_id), TURN_BEFORE_MATCH, turn_id).astype(np.int64)
        rule = site_rules(instants, turn_id)
    else:
        turn, rule, shift = match_instants(instants, order_turns(turns), mode, config)
    instants["turn"] = turn
    instants["rule"] = rule

    rows_per_instant = np.bincount(sample_instant[sample_instant >= 0], minlength=len(instants))
    counts: Counter = Counter()
    for name in RULES:
        counts[name] = int(rows_per_instant[rule == name].sum()) if len(instants) else 0
    report = dict(counts)
    report["unaligned"] = int((sample_instant < 0).sum())
    report["clock_shift_hours"] = shift
    out_samples = None
    if with_samples:
        out_samples = samples.copy()
        out_samples["instant"] = sample_instant
        out_samples["turn"] = np.where(sample_instant >= 0, turn[np.clip(sample_instant, 0, None)], TURN_BEFORE_MATCH)
    return TaskMatch(instants=instants, samples=out_samples, report=report)


def merge_reports(reports: Sequence[dict]) -> dict:
    """Sum per-task reports: rule counts add up; clock shifts are counted per value."""
    total: Counter = Counter()
    shifts: Counter = Counter()
    for report in reports:
        for key, value in report.items():
            if key == "clock_shift_hours":
                shifts["unusable" if value is None else value] += 1
            else:
                total[key] += value
    out = dict(total)
    out["clock_shift_hours"] = dict(shifts)
    return out
