import math

import pytest

from alignment.training.data import (
    DEFAULT_PROMPT_TEMPLATE,
    PreferenceCollator,
    SFTCollator,
    TokenizedPairs,
    format_prompt,
    tokenize_preference_example,
    tokenize_sft_example,
)


def test_format_prompt_default_and_custom():
    assert format_prompt("Why?") == "Question: Why?\nAnswer: "
    assert DEFAULT_PROMPT_TEMPLATE.count("{prompt}") == 1
    assert format_prompt("x {y}", "<q>{prompt}</q>") == "<q>x {y}</q>"
    with pytest.raises(ValueError):
        format_prompt("x", "no placeholder")


def test_sft_labels_mask_prompt_and_end_with_eos(tokenizer):
    ex = tokenize_sft_example(tokenizer, "hi", "ok", max_length=64, max_prompt_length=32)
    prompt_ids = tokenizer(format_prompt("hi"), add_special_tokens=False)["input_ids"]
    n_prompt = len(prompt_ids)
    assert ex["input_ids"][:n_prompt] == prompt_ids
    assert ex["labels"][:n_prompt] == [-100] * n_prompt
    assert ex["labels"][n_prompt:] == tokenizer("ok", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert ex["input_ids"][-1] == tokenizer.eos_token_id
    # no stray EOS between prompt and answer (ByT5 appends one by default)
    assert ex["input_ids"].count(tokenizer.eos_token_id) == 1


def test_truncation_keeps_eos_and_prompt_end(tokenizer):
    long_prompt = "A" * 100 + "END"
    long_answer = "b" * 500
    ex = tokenize_sft_example(tokenizer, long_prompt, long_answer, max_length=64, max_prompt_length=20)
    assert len(ex["input_ids"]) == 64
    assert ex["input_ids"][-1] == tokenizer.eos_token_id
    assert ex["labels"][-1] == tokenizer.eos_token_id
    prompt_text = tokenizer.decode(ex["input_ids"][:20])
    assert prompt_text.endswith("END\nAnswer: ")
    n_response = sum(1 for x in ex["labels"] if x != -100)
    assert n_response == 64 - 20


def test_short_example_not_truncated(tokenizer):
    ex = tokenize_sft_example(tokenizer, "P" * 30, "r", max_length=128, max_prompt_length=8)
    assert tokenizer.decode(ex["input_ids"]).startswith("Question: " + "P" * 30)


def test_preference_pair_shares_prompt(tokenizer):
    ex = tokenize_preference_example(tokenizer, "q" * 40, "good", "b" * 300, max_length=64, max_prompt_length=16)
    n_c = ex["chosen_labels"].count(-100)
    n_r = ex["rejected_labels"].count(-100)
    assert n_c == n_r == 16
    assert ex["chosen_input_ids"][:16] == ex["rejected_input_ids"][:16]
    assert ex["chosen_input_ids"][-1] == ex["rejected_input_ids"][-1] == tokenizer.eos_token_id
    assert len(ex["rejected_input_ids"]) == 64


def test_max_prompt_must_be_shorter(tokenizer):
    with pytest.raises(ValueError):
        tokenize_sft_example(tokenizer, "a", "b", max_length=8, max_prompt_length=8)


def test_sft_collator_pads_right(tokenizer):
    batch = SFTCollator(tokenizer.pad_token_id)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        {"input_ids": [5], "labels": [5]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [5, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_preference_collator_common_length(tokenizer):
    records = [
        {"pair_id": "1", "prompt": "p", "chosen": "short", "rejected": "a much longer answer", "confidence": 0.8},
        {"pair_id": "2", "prompt": "p2", "chosen": "x" * 40, "rejected": "y"},
    ]
    ds = TokenizedPairs(records, tokenizer, max_length=128, max_prompt_length=32)
    batch = PreferenceCollator(tokenizer.pad_token_id)([ds[0], ds[1]])
    assert batch["chosen_input_ids"].shape == batch["rejected_input_ids"].shape
    assert batch["chosen_labels"].shape == batch["rejected_attention_mask"].shape
    assert batch["confidence"][0].item() == pytest.approx(0.8)
    assert math.isnan(batch["confidence"][1].item())
    # every row has exactly one EOS label at the end of its response
    for side in ("chosen", "rejected"):
        labels = batch[f"{side}_labels"]
        assert ((labels == tokenizer.eos_token_id).sum(1) == 1).all()
