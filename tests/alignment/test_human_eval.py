import json

import pandas as pd
import pytest

from alignment.training.human_eval import (
    DIMENSIONS,
    MTURK_TEMPLATE,
    compare_with_judge,
    export_human_batch,
    import_human_results,
    write_mturk_csv,
    write_mturk_template,
)


def _comparisons(n=12):
    return pd.DataFrame({
        "query_id": range(n), "query": [f"query <{i}>" for i in range(n)],
        "dpo_answer": [f"dpo answer {i}\nline two" for i in range(n)],
        "sft_answer": [f"sft answer {i}" for i in range(n)],
    })


def test_export_blinds_with_seeded_order(tmp_path):
    batch, key = export_human_batch(_comparisons(), seed=0)
    assert list(batch.columns) == ["item_id", "query", "answer_a", "answer_b"]
    assert set(key["a_system"]) == {"dpo", "sft"}  # both orders occur
    for b, k in zip(batch.itertuples(), key.itertuples(), strict=True):
        assert b.answer_a.startswith(k.a_system) and b.answer_b.startswith(k.b_system)
    again, _ = export_human_batch(_comparisons(), seed=0)
    assert batch.equals(again)
    path = write_mturk_csv(batch, tmp_path / "batch.csv")
    written = pd.read_csv(path)
    assert "&lt;0&gt;" in written.loc[0, "query"] and "<br>" in written.to_csv()
    tpl = write_mturk_template(tmp_path / "t.html").read_text()
    for var in ("${query}", "${answer_a}", "${answer_b}", "${item_id}", "crowd-form"):
        assert var in tpl
    for dim in DIMENSIONS:
        assert f'name="{dim}_a"' in MTURK_TEMPLATE and f'name="{dim}_b"' in MTURK_TEMPLATE
    assert 'name="comparison"' in MTURK_TEMPLATE


def _fake_results(batch, key, *, workers=("W1", "W2")):
    """MTurk results where workers score DPO 1 point higher; W2 uses the taskAnswers JSON form."""
    rows = []
    for b, k in zip(batch.itertuples(), key.itertuples(), strict=True):
        base = int(b.item_id[-2:]) % 4 + 1
        for w in workers:
            answers = {}
            for dim in DIMENSIONS:
                for side, system in (("a", k.a_system), ("b", k.b_system)):
                    answers[f"{dim}_{side}"] = str(min(5, base + (1 if system == "dpo" else 0)))
            answers["comparison"] = "A" if k.a_system == "dpo" else "B"
            row = {"HITId": "h", "WorkerId": w, "Input.item_id": b.item_id}
            if w == "W1":
                row.update({f"Answer.{n}": v for n, v in answers.items()})
            else:
                row["Answer.taskAnswers"] = json.dumps([{n: {v: True} for n, v in answers.items()}])
            rows.append(row)
    return pd.DataFrame(rows)


def test_import_unblinds_and_compares_with_judge():
    batch, key = export_human_batch(_comparisons(), seed=3)
    human = import_human_results(_fake_results(batch, key), key)
    overall = human[human.dimension == "overall"]
    means = overall.groupby("system")["score"].mean()
    assert means["dpo"] == pytest.approx(means["sft"] + 1, abs=0.35)  # min(5, .) caps a few
    comp = human[human.dimension == "comparison"].groupby("system")["score"].mean()
    assert comp["dpo"] == 1.0 and comp["sft"] == 0.0  # un-blinding mapped A/B back correctly
    assert set(human["worker_id"]) == {"W1", "W2"}
    # judge that agrees with the ranking -> positive Spearman; workers agree perfectly
    judged = key[["item_id"]].copy()
    judged["score_dpo"] = [int(i[-2:]) % 4 + 2 for i in judged.item_id]
    judged["score_sft"] = judged["score_dpo"] - 1
    stats = compare_with_judge(human, judged)
    assert stats["human_vs_judge"] > 0.8 and stats["human_vs_human"] == pytest.approx(1.0)
    assert stats["n"] == 48
