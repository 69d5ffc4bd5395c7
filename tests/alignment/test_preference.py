import json
import math

import pandas as pd
import pytest

from alignment.training.preference import (
    RECORD_COLUMNS,
    pairs_from_release,
    parse_preference_label,
    read_jsonl,
    records_from_explicit_labels,
    records_from_reward_predictions,
    sft_records_from_pairs,
    split_by_prompt,
    write_jsonl,
    write_parquet,
)
from tests.support.paths import MINI


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (2, 2), (1.0, 1), (2.0, 2), ("1", 1), ("2", 2), ("1.0", 1), ("2.0", 2), (" 2.0 ", 2),
     (None, None), (float("nan"), None), ("", None)],
)
def test_parse_preference_label(value, expected):
    assert parse_preference_label(value) == expected


@pytest.mark.parametrize("bad", ["0", 0, "1.5", "3.0", "left", 3])
def test_parse_preference_label_rejects(bad):
    with pytest.raises(ValueError):
        parse_preference_label(bad)


def _pairs():
    return pd.DataFrame({
        "pair_id": [10, 11, 12, 13, 14],
        "prompt": ["same q", "same q", "other", "third", "fourth"],
        "response_1": ["L10", "L11", "L12", "L13", "same"],
        "response_2": ["R10", "R11", "R12", "R13", "same"],
        "preference": ["1.0", "2.0", None, "2.0", "1.0"],
    })


def test_explicit_labels_direction_and_string_floats():
    recs = records_from_explicit_labels(_pairs())
    by_id = {r["pair_id"]: r for r in recs}
    assert set(by_id) == {"10", "11", "13"}  # missing label and identical answers skipped
    assert (by_id["10"]["chosen"], by_id["10"]["rejected"]) == ("L10", "R10")  # 1 = response 1
    assert (by_id["11"]["chosen"], by_id["11"]["rejected"]) == ("R11", "L11")  # 2 = response 2
    assert by_id["13"]["chosen"] == "R13"
    assert all(r["confidence"] is None and r["source"] == "explicit" for r in recs)


def test_repeated_prompts_stay_separate_pairs():
    recs = records_from_explicit_labels(_pairs())
    same = [r for r in recs if r["prompt"] == "same q"]
    assert len(same) == 2 and same[0]["chosen"] != same[1]["chosen"]


def test_reward_predictions_confidence_is_winner_probability():
    preds = pd.DataFrame({"pair_id": [11, 10, 12, 13], "prob_1": [0.2, 0.9, 0.5, 0.35]})
    recs = {r["pair_id"]: r for r in records_from_reward_predictions(_pairs(), preds)}
    assert recs["10"]["chosen"] == "L10" and recs["10"]["confidence"] == pytest.approx(0.9)
    # predicted response 2 with prob_1 = 0.2 -> confidence 0.8, NOT 0.2
    assert recs["11"]["chosen"] == "R11" and recs["11"]["confidence"] == pytest.approx(0.8)
    assert recs["12"]["confidence"] == pytest.approx(0.5)
    assert recs["13"]["chosen"] == "R13" and recs["13"]["confidence"] == pytest.approx(0.65)
    assert "14" not in recs  # no prediction
    # joined by pair id: the two "same q" pairs keep their own predictions
    assert recs["10"]["confidence"] != recs["11"]["confidence"]


def test_reward_predictions_validation():
    with pytest.raises(ValueError):
        records_from_reward_predictions(_pairs(), pd.DataFrame({"pair_id": [10], "prob_1": [1.2]}))
    with pytest.raises(ValueError, match="duplicated"):
        records_from_reward_predictions(_pairs(), pd.DataFrame({"pair_id": [10, 10], "prob_1": [0.2, 0.3]}))


def test_pairs_from_release_reads_mini_release(tmp_path):
    raw = pd.read_csv(MINI / "query_logs_table.csv", dtype={"preference": str})
    pairs = pairs_from_release(raw)
    assert len(pairs) == 16
    recs = records_from_explicit_labels(pairs)
    # the 4 pairs whose rating was lost have no label and must be skipped, not guessed
    assert len(recs) == int(pairs["preference"].notna().sum()) == 12
    # direction against the raw table
    raw_by_id = raw.set_index("query_ID")
    for r in recs:
        row = raw_by_id.loc[int(r["pair_id"])]
        col = "llm_response_1" if float(row["preference"]) == 1.0 else "llm_response_2"
        assert r["chosen"] == row[col]
    assert {r["chosen"] == raw_by_id.loc[int(r["pair_id"]), "llm_response_2"] for r in recs} == {True, False}
    assert len(sft_records_from_pairs(pairs)) == 2 * len(pairs)


def test_split_by_prompt_groups():
    recs = [{"pair_id": str(i), "prompt": f"Prompt {i % 17}", "chosen": "a", "rejected": "b"} for i in range(100)]
    recs.append({"pair_id": "x", "prompt": "  PROMPT 3 ", "chosen": "a", "rejected": "b"})
    splits = split_by_prompt(recs, valid=0.1, test=0.2, seed=1)
    norm = {k: {" ".join(r["prompt"].split()).casefold() for r in v} for k, v in splits.items()}
    assert not norm["train"] & norm["valid"] and not norm["train"] & norm["test"] and not norm["valid"] & norm["test"]
    assert sum(len(v) for v in splits.values()) == 101
    assert len(splits["test"]) >= 20 and len(splits["valid"]) >= 10
    assert splits == split_by_prompt(recs, valid=0.1, test=0.2, seed=1)
    assert splits != split_by_prompt(recs, valid=0.1, test=0.2, seed=2)


def test_jsonl_and_parquet_load_with_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    recs = records_from_explicit_labels(_pairs())
    recs[0]["confidence"] = 0.7
    jl = write_jsonl(recs, tmp_path / "prefs.jsonl")
    pq = write_parquet(recs, tmp_path / "prefs.parquet")
    assert read_jsonl(jl)[0]["pair_id"] == "10"
    assert json.loads(jl.read_text().splitlines()[1])["confidence"] is None
    ds = datasets.load_dataset("json", data_files=str(jl), split="train", cache_dir=str(tmp_path / "cache"))
    assert set(RECORD_COLUMNS) <= set(ds.column_names)
    assert ds[0]["chosen"] == "L10" and ds[0]["confidence"] == pytest.approx(0.7) and ds[1]["confidence"] is None
    dp = datasets.load_dataset("parquet", data_files=str(pq), split="train", cache_dir=str(tmp_path / "cache"))
    assert dp.column_names == RECORD_COLUMNS
    assert dp[1]["chosen"] == "R11" and (dp[1]["confidence"] is None or math.isnan(dp[1]["confidence"]))
