"""The one Hugging Face preference exporter (alignment.training.hub)."""

from __future__ import annotations

import pandas as pd

from alignment.training.hub import write_preference_dataset
from alignment.training.preference import read_jsonl


def _record(i: int) -> dict:
    return {"pair_id": str(i), "prompt": f"q{i}", "chosen": "a", "rejected": "b", "confidence": None,
            "source": "explicit"}


def test_every_split_is_written_and_only_non_empty_ones_are_in_the_card(tmp_path) -> None:
    root = write_preference_dataset(tmp_path / "out", {"train": [_record(1), _record(2)], "valid": [],
                                                       "test": [_record(3)]},
                                    title="T", about="Where the pairs come from.")
    assert [r["pair_id"] for r in read_jsonl(root / "train.jsonl")] == ["1", "2"]
    assert read_jsonl(root / "valid.jsonl") == [] and len(pd.read_parquet(root / "test.parquet")) == 1
    card = (root / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0") and "# T\n\nWhere the pairs come from." in card
    assert "path: train.parquet" in card and "path: test.parquet" in card and "valid.parquet" not in card
    assert "Splits: train 2, validation 0, test 1." in card
