import numpy as np
import pandas as pd
import pytest

from alignment.training.evaluate import add_length_groups, judge_comparisons, summarise, table3, write_table_csv


def _judged(n=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for model in ("gpt2", "qwen"):
        for i in range(n):
            sft_len = int(rng.integers(5, 200)) * (3 if model == "qwen" else 1)
            s_dpo, s_sft = float(rng.integers(1, 11)), float(rng.integers(1, 11))
            rows.append({
                "reward_source": "rf_if", "base_model": model, "query": f"q{i}",
                "sft_answer": "w " * sft_len, "dpo_answer": "w " * 10,
                "score_dpo": s_dpo, "score_sft": s_sft,
                "winner": "dpo" if s_dpo > s_sft else "sft" if s_sft > s_dpo else "tie",
            })
    return pd.DataFrame(rows)


def test_summary_shares_and_win_rate_exclude_ties():
    df = pd.DataFrame({
        "score_dpo": [8, 5, 6, 6], "score_sft": [6, 7, 6, 6], "winner": ["dpo", "sft", "tie", "tie"],
        "sft_answer": ["a"] * 4, "dpo_answer": ["b"] * 4,
    })
    row = summarise(df).iloc[0]
    assert (row.dpo_win_share, row.tie_share, row.sft_win_share) == (0.25, 0.5, 0.25)
    assert row.dpo_win_rate_excl_ties == 0.5
    assert row["diff"] == pytest.approx(0.0)
    diffs = np.array([2, -2, 0, 0], dtype=float)
    assert row.diff_se == pytest.approx(diffs.std(ddof=1) / 2)


def test_length_groups_use_sft_length_not_dpo():
    df = add_length_groups(_judged(), basis="sft")
    # DPO answers all have the same length; groups must still split into thirds by SFT length
    for _, g in df.groupby("base_model"):
        counts = g["length_group"].value_counts()
        assert set(counts.index) == {"short", "medium", "long"} and counts.max() - counts.min() <= 1
        assert g.loc[g.length_group == "short", "length"].max() <= g.loc[g.length_group == "long", "length"].min()
    by_query = add_length_groups(_judged(), basis="query")
    assert (by_query["length"] == 1).all()


def test_table3_columns_and_ranges(tmp_path):
    table = table3(_judged())
    assert set(table["breakdown"]) == {"overall", "base_model", "length_group"}
    assert list(table.loc[table.breakdown == "length_group", "group"]) == ["short", "medium", "long"]
    assert set(table.loc[table.breakdown == "base_model", "group"]) == {"gpt2", "qwen"}
    shares = table[["dpo_win_share", "tie_share", "sft_win_share"]].sum(axis=1)
    assert np.allclose(shares, 1.0)
    assert table["score_dpo"].between(1, 10).all() and (table["diff_se"] > 0).all()
    overall = table[table.breakdown == "overall"].iloc[0]
    assert overall["n"] == 60 and overall["reward_source"] == "rf_if"
    path = write_table_csv(table, tmp_path / "t3.csv")
    assert pd.read_csv(path).shape == table.shape


def test_judge_comparisons_maps_winner(fake_llm_server):
    import json
    import re

    def reply(msgs, req):
        prompt = msgs[-1]["content"]
        a = re.search(r"\[Answer A\]\n(.*?)\n\n", prompt, re.S).group(1)
        return json.dumps({"score_a": 8 if a.startswith("DPO") else 4, "score_b": 4 if a.startswith("DPO") else 8})

    from alignment.training.judge import openai_client_fn

    fake_llm_server.reply_fn = reply
    df = pd.DataFrame({"query": ["q1", "q2"], "dpo_answer": ["DPO one", "DPO two"], "sft_answer": ["s1", "s2"]})
    out = judge_comparisons(openai_client_fn(fake_llm_server.openai_base_url, "judge", "k"), df)
    assert list(out["winner"]) == ["dpo", "dpo"]
    assert list(out["score_dpo"]) == [8, 8] and out["judge_consistent"].all()
    assert len(fake_llm_server.requests) == 4  # both orders per comparison
