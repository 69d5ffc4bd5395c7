"""GPU check for alignment/training: our SFT + rDPO loop vs TRL's DPOTrainer.

Builds a randomly initialised ~0.5B Qwen2-style model (no download), trains SFT then rDPO (from
the SFT checkpoint, SFT as reference) for ``--steps`` optimizer steps in bf16 on synthetic
prompt/answer pairs, then runs TRL's ``DPOTrainer`` from the same checkpoint on the same data
and batch.  Each phase runs in its own process, so its peak memory is its own.  Prints tokens/s
and peak memory (GPU allocator peak; max RSS on CPU) for each, the rDPO/TRL ratios, and one
JSON line (``--json PATH`` also writes it) for the lead's records.

    python benchmarks/alignment_gpu.py --steps 300                      # on a GPU machine
    python benchmarks/alignment_gpu.py --size small --seq-len 256 --steps 20   # CPU stand-in
    python benchmarks/alignment_gpu.py --tiny --steps 3                 # CPU smoke check (seconds)

Throughput counts the non-padding tokens of our tokenisation (chosen + rejected for DPO) and
excludes the first optimizer step (allocation, kernel autotuning).  TRL is optional: if it is
not installed, or fails, the script says so and still reports our numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
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
from alignment.training.data import SFTDataset, TokenizedPairs, format_prompt  # noqa: E402
from alignment.training.loop import train_preference, train_sft  # noqa: E402

WORDS = "the model answer question data user mouse gaze reward long short token train value result".split()


SIZES = {
    # name: (hidden, intermediate, layers, heads, kv_heads); vocab is Qwen2's 151,936 except tiny,
    # so the LM head (the largest single tensor of a DPO step) costs what it does in real use.
    "tiny": (64, 128, 2, 2, 1),
    "small": (256, 1024, 4, 4, 2),  # ~45M parameters: a CPU stand-in with a realistic LM head
    "0.5b": (896, 4864, 24, 14, 2),  # Qwen2-0.5B's shape
}


def build_model(tokenizer: ByT5Tokenizer, *, size: str, seq_len: int) -> Qwen2ForCausalLM:
    """Randomly initialised Qwen2-style model of the given size (no download)."""
    hidden, inter, layers, heads, kv = SIZES[size]
    cfg = Qwen2Config(vocab_size=len(tokenizer) if size == "tiny" else 151_936, hidden_size=hidden,
                      intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, max_position_embeddings=max(seq_len, 4096),
                      tie_word_embeddings=size != "tiny")
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


def reset_peak() -> float:
    """Start a phase's peak-memory window; returns the memory in use now (GiB): models loaded."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**30
    pages = int(Path("/proc/self/statm").read_text().split()[1])  # resident pages
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


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
    start = reset_peak()
    try:
        trainer = DPOTrainer(model=model, ref_model=reference, args=cfg, train_dataset=data,
                             processing_class=tokenizer, callbacks=[Timer()])
        trainer.train()
    except Exception as exc:  # report, do not hide: the comparison is optional
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"tokens_per_s": meter.rate(tokens_per_step), "peak_mem_gib": peak_gib(), "start_mem_gib": start,
            "steps": len(meter.times)}


def run_phase(phase: str, args: argparse.Namespace) -> dict:
    """One phase in this process: ``sft`` (writes the SFT checkpoint), ``rdpo`` or ``trl`` (load it).

    Phases run in separate processes so that each one's peak memory is its own (on CPU the
    process's max RSS cannot be reset) and no allocator cache carries over from one to the next.
    """
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    tokenizer = ByT5Tokenizer()
    sft_records, prefs = synthetic_records(args.steps * args.batch_size, args.seq_len)
    shape = dict(max_length=args.seq_len, max_prompt_length=args.seq_len // 2)
    common = dict(lr=5e-7, optimizer="rmsprop", warmup_steps=min(150, args.steps), max_grad_norm=10.0,
                  batch_size=args.batch_size, grad_accum=1, mixed_precision="bf16" if cuda else "no",
                  fused_lm_head=not args.no_fused, **shape)
    sft_dir = args.workdir / "sft" / "final"

    def load() -> torch.nn.Module:
        model = AutoModelForCausalLM.from_pretrained(sft_dir, dtype=torch.float32)
        return model.cuda() if cuda else model

    meter = Meter()
    if phase == "sft":
        model = build_model(tokenizer, size=args.size, seq_len=args.seq_len)
        model = model.cuda() if cuda else model
        start = reset_peak()
        out = train_sft(model, tokenizer, sft_records, SFTConfig(output_dir=str(args.workdir / "sft"), **common),
                        on_step=meter.on_step)
        tokens = sum(len(e["input_ids"]) for e in SFTDataset(sft_records, tokenizer, **shape).examples)
        return {"tokens_per_s": meter.rate(tokens / out["total_steps"]), "peak_mem_gib": peak_gib(),
                "start_mem_gib": start, "final_loss": out["metrics"]["loss/train"],
                "params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    # Non-padding tokens of our tokenisation (chosen + rejected): the same count for us and TRL.
    pref_tokens = sum(len(e["chosen_input_ids"]) + len(e["rejected_input_ids"])
                      for e in TokenizedPairs(prefs, tokenizer, **shape).examples)
    if phase == "rdpo":
        policy, reference = load(), load()
        start = reset_peak()
        out = train_preference(policy, reference, tokenizer, prefs,
                               DPOConfig(output_dir=str(args.workdir / "rdpo"), **common),
                               method="rdpo", on_step=meter.on_step)
        return {"tokens_per_s": meter.rate(pref_tokens / out["total_steps"]), "peak_mem_gib": peak_gib(),
                "start_mem_gib": start, "final_loss": out["metrics"]["loss/train"]}
    if phase == "trl":
        policy, reference = load(), load()
        reference.requires_grad_(False).eval()
        return run_trl(policy, reference, tokenizer, prefs, args, pref_tokens / args.steps,
                       str(args.workdir / "trl"))
    raise ValueError(phase)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per phase")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512, help="max_length (prompt+answer)")
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--tiny", action="store_true", help="same as --size tiny --seq-len 128: CPU smoke check")
    parser.add_argument("--no-fused", action="store_true", help="our loop on full logits (no fused LM head)")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--phase", choices=["sft", "rdpo", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiny:
        args.size, args.seq_len = "tiny", min(args.seq_len, 128)

    if args.phase:  # child process: one phase, result as JSON on the last line of stdout
        print(json.dumps(run_phase(args.phase, args)))
        return

    cuda = torch.cuda.is_available()
    results: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "steps": args.steps,
                     "batch_size": args.batch_size, "seq_len": args.seq_len, "size": args.size,
                     "fused_lm_head": not args.no_fused}
    phases = ["sft", "rdpo"] + ([] if args.skip_trl else ["trl"])
    with tempfile.TemporaryDirectory() as tmp:
        for phase in phases:
            child = [sys.executable, __file__, "--phase", phase, "--workdir", tmp, "--steps", str(args.steps),
                     "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len), "--size", args.size]
            proc = subprocess.run(child + (["--no-fused"] if args.no_fused else []), capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-5000:])
                raise SystemExit(f"phase {phase} failed (exit {proc.returncode})")
            results[{"sft": "ours_sft", "rdpo": "ours_rdpo", "trl": "trl_dpo"}[phase]] = json.loads(
                proc.stdout.strip().splitlines()[-1])
    if args.skip_trl:
        results["trl_dpo"] = {"skipped": "--skip-trl"}
    results["params_m"] = results["ours_sft"].pop("params_m")
    for name in ("ours_sft", "ours_rdpo", "trl_dpo"):
        r = results[name]
        if "tokens_per_s" in r:
            print(f"{name:10s} {r['tokens_per_s']:12.0f} tokens/s   peak {r['peak_mem_gib']:.2f} GiB"
                  f"   (in use at start {r['start_mem_gib']:.2f} GiB)")
        else:
            print(f"{name:10s} {r}")
    ours, trl = results["ours_rdpo"], results["trl_dpo"]
    if "tokens_per_s" in trl:
        print(f"rDPO / TRL: {ours['tokens_per_s'] / trl['tokens_per_s']:.2f}x tokens/s, "
              f"{ours['peak_mem_gib'] / trl['peak_mem_gib']:.2f}x peak memory")
    line = json.dumps(results)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
