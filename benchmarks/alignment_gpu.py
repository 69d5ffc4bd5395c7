"""GPU check for alignment/training: our SFT + rDPO loop vs TRL's DPOTrainer.

Builds a randomly initialised ~0.5B Qwen2-style model (no download), trains SFT then rDPO for
``--steps`` optimizer steps in bf16 on synthetic prompt/answer pairs, then runs TRL's
``DPOTrainer`` on the same model size, data and batch.  Prints tokens/s and peak GPU memory
for each, plus one JSON line (``--json PATH`` also writes it) for the lead's records.

    python benchmarks/alignment_gpu.py --steps 300              # on a GPU machine
    python benchmarks/alignment_gpu.py --tiny --steps 3         # CPU smoke check (seconds)

Throughput counts the non-padding tokens of our tokenisation (chosen + rejected for DPO) and
excludes the first optimizer step (allocation, kernel autotuning).  TRL is optional: if it is
not installed, or fails, the script says so and still reports our numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import ByT5Tokenizer, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from alignment.training.config import DPOConfig, SFTConfig  # noqa: E402
from alignment.training.data import PreferenceDataset, SFTDataset, format_prompt  # noqa: E402
from alignment.training.loop import train_preference, train_sft  # noqa: E402

WORDS = "the model answer question data user mouse gaze reward long short token train value result".split()


def build_model(tokenizer: ByT5Tokenizer, *, tiny: bool, seq_len: int) -> Qwen2ForCausalLM:
    """Random Qwen2-0.5B-shaped model (full 151,936 vocab, so the LM head cost is realistic)."""
    if tiny:
        cfg = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=seq_len)
    else:
        cfg = Qwen2Config(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                          num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=max(seq_len, 4096),
                          tie_word_embeddings=True)
    cfg.eos_token_id = tokenizer.eos_token_id
    cfg.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg)


def synthetic_records(n: int, seq_len: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Prompt/answer text long enough to fill ~seq_len bytes (ByT5 = one token per byte)."""
    rng = random.Random(seed)

    def text(n_chars: int) -> str:
        out = []
        while sum(len(w) + 1 for w in out) < n_chars:
            out.append(rng.choice(WORDS))
        return " ".join(out)

    prefs, sft = [], []
    for i in range(n):
        prompt = text(seq_len // 5)
        chosen, rejected = text(int(seq_len * rng.uniform(0.4, 0.8))), text(int(seq_len * rng.uniform(0.4, 0.8)))
        prefs.append({"pair_id": str(i), "prompt": prompt, "chosen": chosen, "rejected": rejected,
                      "confidence": rng.uniform(0.5, 1.0)})
        sft.append({"prompt": prompt, "response": chosen})
    return sft, prefs


class Meter:
    """Timestamps of optimizer steps; throughput excludes the first (warm-up) step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step(self, step: int, total: int, metrics: dict) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())

    def rate(self, tokens_per_step: float) -> float:
        if len(self.times) < 2:
            return float("nan")
        return tokens_per_step * (len(self.times) - 1) / (self.times[-1] - self.times[0])


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process max RSS (KiB -> GiB)


def run_trl(model, reference, tokenizer, prefs, args, tokens_per_step: float, out_dir: str) -> dict:
    try:
        from datasets import Dataset
        from transformers import TrainerCallback
        from trl import DPOConfig as TRLConfig
        from trl import DPOTrainer
    except ImportError as exc:
        return {"skipped": f"TRL not importable ({exc}); pip install trl==1.16.0"}
    meter = Meter()

    class Timer(TrainerCallback):
        def on_step_end(self, *a, **k):
            meter.on_step(0, 0, {})

    data = Dataset.from_list([
        {"prompt": format_prompt(p["prompt"]), "chosen": p["chosen"], "rejected": p["rejected"]} for p in prefs
    ])
    cuda = torch.cuda.is_available()
    cfg = TRLConfig(
        output_dir=out_dir, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
        max_steps=args.steps, learning_rate=5e-7, beta=0.1, max_length=args.seq_len, optim="rmsprop",
        warmup_steps=min(150, args.steps), max_grad_norm=10.0, bf16=cuda, use_cpu=not cuda, report_to=[],
        save_strategy="no", logging_steps=max(1, args.steps // 10), disable_tqdm=True, seed=0,
        dataloader_num_workers=0, gradient_checkpointing=False,  # our loop does not checkpoint either
    )
    reset_peak()
    try:
        trainer = DPOTrainer(model=model, ref_model=reference, args=cfg, train_dataset=data,
                             processing_class=tokenizer, callbacks=[Timer()])
        trainer.train()
    except Exception as exc:  # report, do not hide: the comparison is optional
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"tokens_per_s": meter.rate(tokens_per_step), "peak_mem_gib": peak_gib(), "steps": len(meter.times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per phase")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512, help="max_length (prompt+answer)")
    parser.add_argument("--tiny", action="store_true", help="2-layer toy model: CPU smoke check")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.tiny:
        args.seq_len = min(args.seq_len, 128)

    cuda = torch.cuda.is_available()
    tokenizer = ByT5Tokenizer()
    n = args.steps * args.batch_size
    sft_records, prefs = synthetic_records(n, args.seq_len)
    shape = dict(max_length=args.seq_len, max_prompt_length=args.seq_len // 2)
    sft_tokens = sum(sum(1 for x in e["input_ids"]) for e in SFTDataset(sft_records, tokenizer, **shape).examples)
    pref_tokens = sum(len(e["chosen_input_ids"]) + len(e["rejected_input_ids"])
                      for e in PreferenceDataset(prefs, tokenizer, **shape).examples)
    common = dict(lr=5e-7, optimizer="rmsprop", warmup_steps=min(150, args.steps), max_grad_norm=10.0,
                  batch_size=args.batch_size, grad_accum=1, mixed_precision="bf16" if cuda else "no", **shape)
    results: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "steps": args.steps,
                     "batch_size": args.batch_size, "seq_len": args.seq_len, "tiny": args.tiny}
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(tokenizer, tiny=args.tiny, seq_len=args.seq_len)
        results["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
        if cuda:
            model.cuda()
        meter = Meter()
        reset_peak()
        sft = train_sft(model, tokenizer, sft_records, SFTConfig(output_dir=f"{tmp}/sft", **common),
                        on_step=meter.on_step)
        results["ours_sft"] = {"tokens_per_s": meter.rate(sft_tokens / sft["total_steps"]),
                               "peak_mem_gib": peak_gib(), "final_loss": sft["metrics"]["loss/train"]}
        reference = copy.deepcopy(model).eval()
        policy = copy.deepcopy(model)
        del model
        meter = Meter()
        reset_peak()
        dpo = train_preference(policy, reference, tokenizer, prefs, DPOConfig(output_dir=f"{tmp}/dpo", **common),
                               method="rdpo", on_step=meter.on_step)
        per_step = pref_tokens / dpo["total_steps"]
        results["ours_rdpo"] = {"tokens_per_s": meter.rate(per_step), "peak_mem_gib": peak_gib(),
                                "final_loss": dpo["metrics"]["loss/train"]}
        # train_preference froze the reference in place; TRL's policy must be trainable again.
        policy_copy = copy.deepcopy(reference).requires_grad_(True).train()
        del policy
        if cuda:
            torch.cuda.empty_cache()
        if args.skip_trl:
            results["trl_dpo"] = {"skipped": "--skip-trl"}
        else:
            results["trl_dpo"] = run_trl(policy_copy, reference, tokenizer, prefs, args, per_step, f"{tmp}/trl")
    for name in ("ours_sft", "ours_rdpo", "trl_dpo"):
        r = results[name]
        if "tokens_per_s" in r:
            print(f"{name:10s} {r['tokens_per_s']:12.0f} tokens/s   peak {r['peak_mem_gib']:.2f} GiB")
        else:
            print(f"{name:10s} {r}")
    line = json.dumps(results)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
