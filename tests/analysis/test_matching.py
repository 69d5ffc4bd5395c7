"""Turn matching rules (paper appendix B.1) on small synthetic frames and on the mini release."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.matching import (
    DEFAULT_INSTRUCTION_TEXTS,
    MatchConfig,
    classify_snippet,
    match_task,
    occurs_near,
)
from collection.release import reader
from tests.support.paths import MINI

INSTRUCTION = DEFAULT_INSTRUCTION_TEXTS[0]
R1 = "Paris is the capital of France. It is known for the Eiffel Tower and museums."
R2 = "Berlin is the capital of Germany. It is known for its history and museums."
T0 = 1_700_000_000_000


def _samples(rows: list[tuple]) -> pd.DataFrame:
    """Pointwise task samples: one (t_ms, x, snippet, char_index) per gaze instant, abs + box1."""
    out = []
    for i, (t, x, snippet, index) in enumerate(rows):
        out.append(dict(signal="gaze", frame="abs", x=100.0, y=100.0, snippet=None, char_index=None,
                        epoch_ms=T0 + t, row=i))
        out.append(dict(signal="gaze", frame="box1", x=float(x), y=float(x), snippet=snippet,
                        char_index=index, epoch_ms=T0 + t, row=i))
    df = pd.DataFrame(out)
    df["char_index"] = df["char_index"].astype("Int32")
    df["epoch_ms"] = df["epoch_ms"].astype("Int64")
    df["head_in_box"] = pd.array([1] * len(df), dtype="Int8")
    df["turn_id"] = pd.array([None] * len(df), dtype="Int64")
    return df


def _turns(asked: list[int] | None = None) -> pd.DataFrame:
    asked = asked or [0, 10_000]
    return pd.DataFrame({
        "query_id": [11, 12], "query": ["q1", "q2"], "response_1": [R1, R2], "response_2": ["", ""],
        "error_1": ["", ""], "error_2": ["", ""],
        "asked_at": [pd.Timestamp(T0 + a, unit="ms", tz="UTC") for a in asked],
    })


def _assign(rows, turns=None, config: MatchConfig | None = None):
    m = match_task(_samples(rows), _turns() if turns is None else turns, "pointwise", config or MatchConfig())
    return list(m.instants["turn"]), list(m.instants["rule"]), m


def test_occurs_near_uses_start_within_radius_and_never_matches_empty() -> None:
    assert occurs_near(R1, "capital of France", 23, 15)  # starts at 13, index 23
    assert not occurs_near(R1, "capital of France", 60, 15)  # too far from the index
    assert not occurs_near(R1, "", 10, 15)
    assert not occurs_near("", "Paris", 0, 15)


def test_empty_snippet_is_not_instruction() -> None:
    assert classify_snippet("", 5, [R1], MatchConfig()) == 0
    turns, rules, _ = _assign([(0, 10, "", 3)])  # in box, empty snippet, before any match
    assert turns == [-2] and rules == ["before_match"]


def test_each_rule() -> None:
    rows = [
        (0, -1, None, None),  # off-box before any match -> -2
        (100, 10, "please wait patiently", 40),  # instruction -> -1
        (200, -1, None, None),  # inherits -1
        (1_000, 10, "capital of France", 23),  # turn 11
        (1_100, 10, None, None),  # in box without text: inherits 11
        (1_200, 10, "Enter your question", 0),  # chrome text: unmatched 0
        (1_300, -1, None, None),  # inherits 11 (0 is not a match)
        (11_000, 10, "capital of Germany", 23),  # turn 12
    ]
    turns, rules, m = _assign(rows)
    assert turns == [-2, -1, -1, 11, 11, 0, 11, 12]
    assert rules == ["before_match", "instruction", "inherited", "response", "inherited",
                     "unmatched", "inherited", "response"]
    # report counts sample rows (abs + box per instant)
    assert m.report["response"] == 4 and m.report["inherited"] == 6 and m.report["before_match"] == 2
    assert m.report["clock_shift_hours"] == 0
    assert list(m.samples["turn"].value_counts().sort_index()) == [2, 4, 2, 6, 2]


def test_most_recent_turn_that_was_already_asked() -> None:
    shared = "It is known for"  # in both responses at index 32/33
    before, _, _ = _assign([(2_000, 10, shared, 40)])
    after, _, _ = _assign([(15_000, 10, shared, 40)])
    assert before == [11] and after == [12]


def test_clock_shift_corrects_four_hour_offset() -> None:
    shifted = _turns([4 * 3_600_000, 4 * 3_600_000 + 10_000])  # asked_at 4 h late (server zone)
    turns, _, m = _assign([(2_000, 10, "It is known for", 40), (15_000, 10, "It is known for", 40)], shifted)
    assert m.report["clock_shift_hours"] == -4
    assert turns == [11, 12]


def test_site_turn_id_skips_matching() -> None:
    s = _samples([(0, 10, "capital of France", 23), (100, -1, None, None)])
    s["turn_id"] = pd.array([99] * len(s), dtype="Int64")
    m = match_task(s, _turns(), "pointwise")
    # The page's turn id is used as is; the rule says what was under the point: the first
    # instant was on the answer's text, the second outside the box.
    assert set(m.instants["turn"]) == {99}
    assert list(m.instants.sort_values("epoch_ms").drop_duplicates("epoch_ms")["rule"]) == ["response", "turn_id"]
    assert m.report["response"] + m.report["turn_id"] == len(s) and m.report["response"] > 0


def test_mini_release_pairwise_task() -> None:
    tables = reader.read_release_tables(MINI)
    folder = MINI / "user_behavior" / "worker_0484ce71" / "169"
    tr = reader.read_task_trajectories(folder)
    turns = tables.queries[(tables.queries.worker == "worker_0484ce71") & (tables.queries.task_id == 169)]
    m = match_task(tr.samples, turns, tr.mode)
    counted = sum(v for k, v in m.report.items() if k not in ("clock_shift_hours",))
    assert counted == len(tr.samples)
    assert m.report["response"] > 0 and m.report["instruction"] > 0
    assert set(m.instants["turn"]) <= set(turns["query_id"]) | {-2, -1, 0}
    # all three turns are seen, in time order
    first_seen = m.instants[m.instants["rule"] == "response"].groupby("turn")["epoch_ms"].min()
    assert list(first_seen.sort_values().index) == sorted(turns["query_id"])
    # abs and box rows of one instant share the turn
    per_instant = m.samples.groupby("instant")["turn"].nunique()
    assert (per_instant == 1).all()
    assert np.all(m.instants["epoch_ms"].diff().dropna() >= 0)
