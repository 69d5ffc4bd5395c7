"""Validation metrics each epoch on the dataset's validation split, and the "too short to move the
model" warning (issue 21, item 12). Pure: the tiny GPT-2 of conftest, no database."""

from __future__ import annotations

import math

import pytest

from alignment.training.config import MIN_LR_STEPS, optimizer_steps, short_run_warning
from alignment.training.loop import train_preference
from alignment.training.plots import training_curves_svg, training_overlay_svg

from .conftest import make_tiny_gpt2
from .test_loop import PREFS, _dpo_cfg

VALID = [{"pair_id": f"v{i}", "prompt": f"held-out question {i}?", "chosen": f"good answer {i}",
          "rejected": "bad " * (i + 2), "confidence": 0.8} for i in range(3)]


def test_the_issues_run_is_too_short_and_a_long_enough_one_is_not() -> None:
    # The dev release: 315 training pairs at the form's defaults (batch 8 x accumulation 8, lr 5e-7, 1 epoch).
    assert optimizer_steps(315, batch_size=8, grad_accum=8, epochs=1) == 5
    warning = short_run_warning(315, batch_size=8, grad_accum=8, epochs=1, lr=5e-7)
    assert warning is not None and "5 optimizer steps" in warning and "5e-07" in warning
    # Long enough: 50 steps at the same rate (3200 pairs), or the same 5 steps at lr 1e-5.
    assert short_run_warning(3200, batch_size=8, grad_accum=8, epochs=1, lr=5e-7) is None
    assert short_run_warning(315, batch_size=8, grad_accum=8, epochs=1, lr=1e-5) is None
    # The boundary: one step less than MIN_LR_STEPS / lr is warned about.
    assert short_run_warning(49 * 64, batch_size=8, grad_accum=8, epochs=1, lr=5e-7) is not None
    assert 50 * 5e-7 == pytest.approx(MIN_LR_STEPS)


def test_validation_metrics_are_computed_each_epoch(tokenizer, tmp_path) -> None:
    result = train_preference(make_tiny_gpt2(tokenizer, seed=1), make_tiny_gpt2(tokenizer, seed=1), tokenizer,
                              PREFS, _dpo_cfg(tmp_path, "v", epochs=2), method="rdpo", valid_records=VALID)
    rows = [h for h in result["history"] if "valid/reward_accuracy" in h]
    assert [r["step"] for r in rows] == [2, 4]  # the last step of each of the 2 epochs
    for row in rows:
        assert 0 <= row["valid/reward_accuracy"] <= 1 and row["valid/pairs"] == 3
        assert math.isfinite(row["valid/reward_margin"]) and row["valid/nll"] > 0
    # lr 1e-3 moves the policy away from its reference: the held-out margin is no longer 0.
    assert rows[-1]["valid/reward_margin"] != 0
    assert result["metrics"]["valid/nll"] == rows[-1]["valid/nll"]
    svg = training_curves_svg(result["history"])
    assert "validation" in svg and "NLL of chosen answers" in svg


def test_no_validation_rows_without_a_validation_split(tokenizer, tmp_path) -> None:
    result = train_preference(make_tiny_gpt2(tokenizer, seed=1), make_tiny_gpt2(tokenizer, seed=1), tokenizer,
                              PREFS, _dpo_cfg(tmp_path, "n", epochs=1), method="dpo")
    assert not any(k.startswith("valid/") for h in result["history"] for k in h)


def test_overlay_draws_one_colour_per_run() -> None:
    a = [{"step": s, "loss/train": 1 / s} for s in range(1, 5)] + [{"step": 4, "valid/nll": 2.0}]
    b = [{"step": s, "loss/train": 2 / s} for s in range(1, 5)]
    svg = training_overlay_svg({"#1 run a": a, "#2 run b": b})
    assert "#1 run a train" in svg and "#2 run b train" in svg and "#1 run a validation" in svg
