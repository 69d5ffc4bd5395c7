import copy
import json
from pathlib import Path

import pytest
import torch

from alignment.training.config import DPOConfig, SFTConfig
from alignment.training.loop import train_preference, train_sft

from .conftest import make_tiny_gpt2

PREFS = [
    {"pair_id": str(i), "prompt": f"question {i}?", "chosen": f"good answer {i}", "rejected": "bad " * (i + 1),
     "confidence": 0.55 + 0.07 * i}
    for i in range(6)
]
SFT = [{"prompt": f"question {i}?", "response": f"answer number {i}"} for i in range(6)]


def _dpo_cfg(tmp_path: Path, name: str, **kw) -> DPOConfig:
    base = dict(lr=1e-3, optimizer="adamw", warmup_steps=2, batch_size=2, grad_accum=2, epochs=2,
                max_length=64, max_prompt_length=24, output_dir=str(tmp_path / name), seed=3)
    base.update(kw)
    return DPOConfig(**base)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_preference_resume_matches_uninterrupted_run(tokenizer, tmp_path):
    ref = make_tiny_gpt2(tokenizer, seed=1)
    # 6 records, batch 2 -> 3 micro-batches/epoch, accum 2 -> 2 steps/epoch (groups of 2 and 1)
    full = train_preference(make_tiny_gpt2(tokenizer, seed=1), ref, tokenizer, PREFS, _dpo_cfg(tmp_path, "a"),
                            method="rdpo")
    assert full["total_steps"] == 4 and full["step"] == 4 and not full["stopped"]
    a_weights = _state(_load(full["checkpoint"]))

    calls = []
    stopped = train_preference(
        make_tiny_gpt2(tokenizer, seed=1), ref, tokenizer, PREFS, _dpo_cfg(tmp_path, "b"), method="rdpo",
        should_stop=lambda: len(calls) >= 3, on_step=lambda s, t, m: calls.append(s),
    )
    assert stopped["stopped"] and stopped["step"] == 3
    ckpt = Path(stopped["checkpoint"])
    assert ckpt.name == "step-3"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["epoch"] == 1 and state["finished"] is False
    assert state["config"]["beta"] == 0.1

    resumed = train_preference(
        make_tiny_gpt2(tokenizer, seed=99), ref, tokenizer, PREFS, _dpo_cfg(tmp_path, "c"), method="rdpo",
        resume_from=ckpt,
    )
    assert resumed["step"] == 4 and not resumed["stopped"]
    c_weights = _state(_load(resumed["checkpoint"]))
    b_weights = _state(_load(ckpt))
    differs_from_b = False
    for k in a_weights:
        assert torch.allclose(a_weights[k], c_weights[k], atol=1e-6), k
        differs_from_b |= not torch.allclose(a_weights[k], b_weights[k])
    assert differs_from_b  # the last step really changed the weights
    assert [h["step"] for h in resumed["history"]] == [1, 2, 3, 4]
    # With the defaults (packed batches, reference log-probs precomputed before the first step),
    # the resumed run logs the very losses of the uninterrupted one.
    assert _dpo_cfg(tmp_path, "x").packing and _dpo_cfg(tmp_path, "x").precompute_reference
    losses = [h["loss/train"] for h in full["history"]]
    assert [h["loss/train"] for h in resumed["history"]] == pytest.approx(losses, abs=1e-6)


def _load(path):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(path)


def test_reference_is_frozen_and_unchanged(tokenizer, tmp_path):
    policy = make_tiny_gpt2(tokenizer, seed=1)
    reference = copy.deepcopy(policy)
    before = _state(reference)
    metrics = []
    out = train_preference(policy, reference, tokenizer, PREFS, _dpo_cfg(tmp_path, "f", epochs=1),
                           method="dpo", on_step=lambda s, t, m: metrics.append((s, t, m)))
    assert all(not p.requires_grad for p in reference.parameters())
    assert not reference.training
    for k, v in _state(reference).items():
        assert torch.equal(v, before[k])
    assert any(not torch.equal(v, before[k]) for k, v in _state(policy).items())
    # first step: policy == reference so every implicit reward is 0 and the DPO term is ln 2
    s, total, m = metrics[0]
    assert (s, total) == (1, 2)
    assert m["rewards_train/chosen"] == pytest.approx(0.0, abs=1e-6)
    assert m["loss_pref/train"] == pytest.approx(0.6931, abs=1e-3)
    for key in ("loss/train", "rewards_train/margins", "rewards_train/accuracies", "logps_train/chosen", "lr",
                "grad_norm"):
        assert key in m
    assert "epsilon_train/mean" not in m  # DPO ignores confidence
    assert out["metrics"] == metrics[-1][2]


def test_rdpo_requires_confidence_and_dpo_ignores_it(tokenizer, tmp_path):
    no_conf = [{**r, "confidence": None} for r in PREFS]
    with pytest.raises(ValueError, match="confidence"):
        train_preference(make_tiny_gpt2(tokenizer), make_tiny_gpt2(tokenizer), tokenizer, no_conf,
                         _dpo_cfg(tmp_path, "x"), method="rdpo")
    ref = make_tiny_gpt2(tokenizer, seed=1)
    a = train_preference(make_tiny_gpt2(tokenizer, seed=1), ref, tokenizer, no_conf,
                         _dpo_cfg(tmp_path, "d1", epochs=1), method="dpo")
    b = train_preference(make_tiny_gpt2(tokenizer, seed=1), ref, tokenizer, PREFS,
                         _dpo_cfg(tmp_path, "d2", epochs=1), method="dpo")
    assert a["metrics"]["loss/train"] == pytest.approx(b["metrics"]["loss/train"], rel=1e-6)
    c = train_preference(make_tiny_gpt2(tokenizer, seed=1), ref, tokenizer, PREFS,
                         _dpo_cfg(tmp_path, "d3", epochs=1), method="rdpo")
    assert c["metrics"]["loss/train"] != pytest.approx(b["metrics"]["loss/train"], rel=1e-6)
    assert c["metrics"]["epsilon_train/mean"] > 0


def test_policy_and_reference_must_differ(tokenizer, tmp_path):
    m = make_tiny_gpt2(tokenizer)
    with pytest.raises(ValueError):
        train_preference(m, m, tokenizer, PREFS, _dpo_cfg(tmp_path, "same"))


def test_sft_should_stop_leaves_checkpoint(tokenizer, tmp_path):
    cfg = SFTConfig(lr=1e-3, warmup_steps=0, batch_size=1, grad_accum=1, max_length=64, max_prompt_length=24,
                    output_dir=str(tmp_path / "sft"))
    seen = []
    out = train_sft(make_tiny_gpt2(tokenizer), tokenizer, SFT, cfg, on_step=lambda s, t, m: seen.append((s, t)),
                    should_stop=lambda: len(seen) >= 2)
    assert out["stopped"] and out["step"] == 2 and seen == [(1, 6), (2, 6)]
    ckpt = Path(out["checkpoint"])
    assert (ckpt / "config.json").exists() and (ckpt / "accelerate_state").is_dir()
    assert not (tmp_path / "sft" / "final").exists()
    reloaded = _load(ckpt)
    assert reloaded.config.n_layer == 2
    resumed = train_sft(make_tiny_gpt2(tokenizer), tokenizer, SFT, cfg, resume_from=ckpt)
    assert resumed["step"] == 6 and Path(resumed["checkpoint"]).name == "final"
    with pytest.raises(ValueError, match="sft"):
        train_preference(make_tiny_gpt2(tokenizer), make_tiny_gpt2(tokenizer), tokenizer, PREFS,
                         _dpo_cfg(tmp_path, "wrong"), resume_from=ckpt)


def test_warmup_longer_than_the_run_is_scaled_so_the_lr_reaches_its_peak(tokenizer, tmp_path):
    from alignment.training.loop import scaled_warmup

    assert scaled_warmup(150, 2000) == (150, [])
    steps, warnings = scaled_warmup(150, 23)
    assert steps == 2 and "150" in warnings[0] and "23" in warnings[0]
    cfg = SFTConfig(lr=1e-3, optimizer="adamw", warmup_steps=150, batch_size=2, grad_accum=1, epochs=2,
                    max_length=64, max_prompt_length=24, output_dir=str(tmp_path / "sft"))
    out = train_sft(make_tiny_gpt2(tokenizer), tokenizer, SFT, cfg)
    assert out["total_steps"] == 6 and out["warmup_steps"] == 1 and out["warnings"]
    assert out["history"][-1]["lr"] == pytest.approx(1e-3)  # with 150 warm-up steps: 7/151 of it
