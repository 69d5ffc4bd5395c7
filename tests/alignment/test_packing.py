"""Padding-free packing and precomputed reference log-probs give the losses of the plain paths.

Checked in fp32 on CPU to 1e-3 on tiny random Qwen2- and Llama-shaped models (the shapes whose
attention transformers makes block-diagonal from restarting position ids).
"""

import copy

import pytest
import torch

from alignment.training.config import DPOConfig, SFTConfig
from alignment.training.data import (
    PackedPreferenceCollator,
    PreferenceCollator,
    TokenizedPairs,
    pack_sequences,
)
from alignment.training.logps import (
    concatenated_forward,
    fused_lm_head,
    packed_concatenated_forward,
    supports_packing,
)
from alignment.training.loop import train_preference, train_sft
from alignment.training.losses import preference_loss
from alignment.training.reference import cache_key, compute_reference_logps, reference_fingerprint

PREFS = [
    {"pair_id": str(i), "prompt": f"question {i}?" + " more" * (i % 3), "chosen": f"good answer {i}" * (1 + i % 2),
     "rejected": "bad " * (i + 1), "confidence": 0.55 + 0.07 * i}
    for i in range(6)
]
SFT = [{"prompt": f"question {i}?", "response": "answer " * (i + 1)} for i in range(6)]


def make_model(kind: str, tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    shape = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**shape))
    return LlamaForCausalLM(LlamaConfig(**shape))


def _pairs(tokenizer):
    return TokenizedPairs(PREFS, tokenizer, max_length=64, max_prompt_length=24)


def test_pack_sequences_layout():
    seqs = [([5, 6, 7], [-100, 6, 7]), ([8, 9], [-100, 9]), ([10, 11, 12, 13], [-100, -100, 12, 13])]
    out = pack_sequences(seqs, capacity=5, pad_token_id=0)
    # first fit: row 0 = seq 0 + seq 1 (5 tokens), row 1 = seq 2 + 1 padding token
    assert out["input_ids"].tolist() == [[5, 6, 7, 8, 9], [10, 11, 12, 13, 0]]
    assert out["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]
    assert out["seq_ids"].tolist() == [[0, 0, 0, 1, 1], [2, 2, 2, 2, -1]]
    assert out["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100, -100, 12, 13, -100]]
    assert int(out["n_seqs"]) == 3
    with pytest.raises(ValueError, match="capacity"):
        pack_sequences(seqs, capacity=3, pad_token_id=0)


def test_packed_collator_keeps_pair_order_and_counts_real_tokens(tokenizer):
    pairs = _pairs(tokenizer)
    batch = PackedPreferenceCollator(0, 128)(pairs.examples[:3])
    for i, ex in enumerate(pairs.examples[:3]):
        for side, j in (("chosen", i), ("rejected", 3 + i)):
            assert (batch["seq_ids"] == j).sum() == len(ex[f"{side}_input_ids"])
            assert batch["input_ids"][batch["seq_ids"] == j].tolist() == ex[f"{side}_input_ids"]
    real = sum(len(e["chosen_input_ids"]) + len(e["rejected_input_ids"]) for e in pairs.examples[:3])
    assert int((batch["seq_ids"] >= 0).sum()) == real
    padded = PreferenceCollator(0)(pairs.examples[:3])
    assert batch["input_ids"].numel() < 2 * padded["chosen_input_ids"].numel()  # less padding


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("fused", [False, True])
def test_packed_and_padded_give_the_same_logps_loss_and_gradients(tokenizer, kind, fused):
    policy = make_model(kind, tokenizer, seed=0)
    twin = copy.deepcopy(policy)
    reference = make_model(kind, tokenizer, seed=1)
    assert supports_packing(policy)
    examples = _pairs(tokenizer).examples
    padded = PreferenceCollator(0)(examples)
    packed = PackedPreferenceCollator(0, 128)(examples)
    with fused_lm_head(policy, twin, reference, enabled=fused):
        a = concatenated_forward(policy, padded)
        b = packed_concatenated_forward(twin, packed)
        with torch.no_grad():
            ref = concatenated_forward(reference, padded)
        for key in ("chosen_logps", "rejected_logps"):
            assert torch.allclose(a[key], b[key], atol=1e-3), key
        assert a["chosen_n_tokens"].tolist() == b["chosen_n_tokens"].tolist()
        loss_a = preference_loss(a["chosen_logps"], a["rejected_logps"], ref["chosen_logps"],
                                 ref["rejected_logps"], beta=0.1)[0].mean()
        loss_b = preference_loss(b["chosen_logps"], b["rejected_logps"], ref["chosen_logps"],
                                 ref["rejected_logps"], beta=0.1)[0].mean()
        assert loss_a.item() == pytest.approx(loss_b.item(), abs=1e-3)
        (a["chosen_logps"].sum() - a["rejected_logps"].sum()).backward()
        (b["chosen_logps"].sum() - b["rejected_logps"].sum()).backward()
    for (name, p), q in zip(policy.named_parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-3, rtol=1e-3), name


@pytest.mark.parametrize("packing", [False, True])
def test_precomputed_reference_equals_the_live_forward(tokenizer, packing):
    reference = make_model("qwen2", tokenizer, seed=1)
    pairs = _pairs(tokenizer)
    chosen, rejected = compute_reference_logps(reference, pairs, pad_token_id=0, batch_size=4, packing=packing)
    with torch.no_grad():
        live = concatenated_forward(reference, PreferenceCollator(0)(pairs.examples))
    assert torch.allclose(torch.tensor(chosen), live["chosen_logps"], atol=1e-3)
    assert torch.allclose(torch.tensor(rejected), live["rejected_logps"], atol=1e-3)
    assert not torch.equal(live["chosen_logps"], live["rejected_logps"])


def _cfg(tmp_path, name, **kw) -> DPOConfig:
    base = dict(lr=1e-3, optimizer="adamw", warmup_steps=0, batch_size=3, grad_accum=1, epochs=2,
                max_length=64, max_prompt_length=24, output_dir=str(tmp_path / name), seed=3)
    return DPOConfig(**{**base, **kw})


def _losses(out) -> list[float]:
    return [h["loss/train"] for h in out["history"]]


def test_training_losses_match_across_packing_and_reference_paths(tokenizer, tmp_path):
    """The same run four ways (padded/packed x live/precomputed reference): the same losses."""
    runs = {}
    for packing in (False, True):
        for precompute in (False, True):
            name = f"p{int(packing)}r{int(precompute)}"
            out = train_preference(
                make_model("qwen2", tokenizer, seed=0), make_model("qwen2", tokenizer, seed=0), tokenizer, PREFS,
                _cfg(tmp_path, name, packing=packing, precompute_reference=precompute), method="rdpo",
            )
            runs[name] = out
    base = _losses(runs["p0r0"])
    assert len(base) == 4 and base[0] != pytest.approx(base[-1], abs=1e-3)  # training moved
    for name, out in runs.items():
        assert _losses(out) == pytest.approx(base, abs=1e-3), name
    assert runs["p1r1"]["reference_precompute_s"] > 0 and runs["p0r0"]["reference_precompute_s"] == 0
    # Real tokens only: the same count whether padded or packed.
    assert runs["p1r1"]["history"][0]["tokens_in/train"] == pytest.approx(runs["p0r0"]["history"][0]["tokens_in/train"])


def test_cached_reference_logps_let_training_run_without_the_reference(tokenizer, tmp_path):
    reference = make_model("qwen2", tokenizer, seed=0)
    chosen, rejected = compute_reference_logps(reference, _pairs(tokenizer), pad_token_id=0)
    cached = [{**r, "reference_chosen_logps": c, "reference_rejected_logps": j}
              for r, c, j in zip(PREFS, chosen, rejected, strict=True)]
    a = train_preference(make_model("qwen2", tokenizer), None, tokenizer, cached, _cfg(tmp_path, "a"), method="dpo")
    b = train_preference(make_model("qwen2", tokenizer), reference, tokenizer, PREFS, _cfg(tmp_path, "b"),
                         method="dpo")
    assert _losses(a) == pytest.approx(_losses(b), abs=1e-3)
    assert a["history"][0]["loss_pref/train"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference
    with pytest.raises(ValueError, match="reference"):
        train_preference(make_model("qwen2", tokenizer), None, tokenizer, PREFS, _cfg(tmp_path, "c"))


def test_sft_packed_equals_padded_and_checkpointing_too(tokenizer, tmp_path):
    outs = {}
    for name, kw in {"padded": dict(packing=False), "packed": dict(packing=True),
                     "ckpt": dict(packing=True, gradient_checkpointing=True)}.items():
        cfg = SFTConfig(lr=1e-3, optimizer="adamw", warmup_steps=0, batch_size=3, grad_accum=1, epochs=2,
                        max_length=64, max_prompt_length=24, output_dir=str(tmp_path / name), **kw)
        outs[name] = train_sft(make_model("llama", tokenizer), tokenizer, SFT, cfg)
    base = _losses(outs["padded"])
    assert base[0] != pytest.approx(base[-1], abs=1e-3)
    assert _losses(outs["packed"]) == pytest.approx(base, abs=1e-3)
    assert _losses(outs["ckpt"]) == pytest.approx(base, abs=1e-3)


def test_models_without_packed_masks_fall_back_to_padding(tokenizer, tmp_path):
    class Opaque(torch.nn.Module):  # a backbone transformers' packed masks know nothing about
        pass

    assert not supports_packing(Opaque())


def test_cache_key_changes_with_dataset_reference_and_settings(tmp_path):
    ckpt = tmp_path / "ref"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"abc")
    fp = reference_fingerprint(ckpt)
    key = dict(dataset={"id": 1, "pairs": 6}, reference_path=ckpt, fingerprint=fp, settings={"max_length": 64})
    k0 = cache_key(**key)
    assert cache_key(**key) == k0
    assert cache_key(**{**key, "dataset": {"id": 1, "pairs": 7}}) != k0
    assert cache_key(**{**key, "settings": {"max_length": 65}}) != k0
    (ckpt / "model.safetensors").write_bytes(b"abcd")  # the reference was rewritten
    assert reference_fingerprint(ckpt) != fp
