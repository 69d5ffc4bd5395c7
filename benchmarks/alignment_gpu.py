"""Preference-training throughput and memory: our loop, technique by technique, vs TRL's DPOTrainer.

Builds a randomly initialised Qwen2-shaped model (no download), saves it once, and trains DPO
(policy and reference both start from it, as after SFT) on synthetic prompt/answer pairs with
each configuration below; then SFT padded and packed.  Prints a table of real-token throughput
and peak memory, the ratios ours/TRL, and one JSON line (``--json PATH`` also writes it).

Configurations (``--configs``, comma-separated):

    trl          TRL DPOTrainer (live reference, padded batches, no activation checkpointing)
    before       our loop as it was: live reference forward every step, padded batches
    precompute   reference log-probs computed once before training (reference then off the device)
    packing      padding-free rows (position ids restart per sequence), live reference
    all          precompute + packing (the admin's default)
    all_ckpt     all + activation checkpointing
    sft_before   SFT, padded        sft          SFT, packed

Throughput counts real (non-padding) tokens of chosen + rejected for DPO and of the examples for
SFT, and leaves out the first optimizer step (allocation, autotuning).  ``precompute_s`` is the
one-off reference pass; ``e2e_tokens_per_s`` charges it to one epoch over the dataset (the worst
case: a second epoch, run or resume reads the cache).  Peak memory is the GPU allocator's peak,
or the process's max RSS on CPU (there each configuration runs in its own process, so each peak
is its own).  Checkpoint writes are switched off here: they are I/O, not training.

    python benchmarks/alignment_gpu.py --size small --steps 4 --batch-size 2 --seq-len 128   # CPU stand-in
    python benchmarks/alignment_gpu.py --tiny --steps 3                                      # smoke (seconds)
    bash benchmarks/gpu_run.sh                        # the GPU table: 1.28 B and 0.39 B shapes, bf16

``--budget-s`` bounds the whole run: each configuration trains for at most ``--max-seconds``
(or ``--steps``), and configurations that would start after the budget are skipped (and said so).
"""

from __future__ import annotations

import argparse
import gc
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

import torch
from transformers import ByT5Tokenizer, Qwen2Config, Qwen2ForCausalLM

from alignment.training import loop
from alignment.training.config import DPOConfig, SFTConfig
from alignment.training.data import SFTDataset, TokenizedPairs, format_prompt
from alignment.training.reference import compute_reference_logps

WORDS = "the model answer question data user mouse gaze reward long short token train value result".split()

SIZES = {
    # name: (hidden, intermediate, layers, heads, kv_heads); vocab is Qwen2's 151,936 except tiny,
    # so the LM head (the largest single tensor of a DPO step) costs what it does in real use.
    "tiny": (64, 128, 2, 2, 1),
    "small": (256, 1024, 4, 4, 2),  # ~45M parameters: a CPU stand-in with a realistic LM head
    "0.39b": (1024, 2816, 21, 16, 2),  # 0.387 B with tied embeddings
    "1.28b": (2048, 5632, 22, 16, 2),  # 1.280 B with tied embeddings
}

#: configuration -> (kind, settings of our loop); "trl" runs TRL instead.
CONFIGS = {
    "trl": ("trl", {}),
    "before": ("dpo", {"precompute_reference": False, "packing": False}),
    "precompute": ("dpo", {"precompute_reference": True, "packing": False}),
    "packing": ("dpo", {"precompute_reference": False, "packing": True}),
    "all": ("dpo", {"precompute_reference": True, "packing": True}),
    "all_ckpt": ("dpo", {"precompute_reference": True, "packing": True, "gradient_checkpointing": True}),
    "sft_before": ("sft", {"packing": False}),
    "sft": ("sft", {"packing": True}),
}
DEFAULT_CONFIGS = ",".join(CONFIGS)


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
    """Timestamps and real-token counts of optimizer steps; the first (warm-up) step is left out.

    Also the stop signal: ``should_stop`` turns true once ``max_seconds`` of training have passed.
    """

    def __init__(self, max_seconds: float) -> None:
        self.times: list[float] = []
        self.tokens: list[float] = []
        self.max_seconds = max_seconds

    def on_step(self, step: int, total: int, metrics: dict) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        self.tokens.append(float(metrics.get("tokens_in/train", 0.0)))

    def should_stop(self) -> bool:
        return bool(self.times) and self.times[-1] - self.times[0] > self.max_seconds

    def rate(self, tokens_per_step: float | None = None) -> float:
        if len(self.times) < 2:
            return float("nan")
        tokens = tokens_per_step * (len(self.times) - 1) if tokens_per_step else sum(self.tokens[1:])
        return tokens / (self.times[-1] - self.times[0])


def reset_peak() -> float:
    """Start a phase's peak-memory window; returns the memory in use now (GiB): models loaded."""
    gc.collect()
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


def run_trl(args: argparse.Namespace, prefs: list[dict], tokens_per_step: float, load) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    meter = Meter(args.max_seconds)

    class Timer(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            meter.on_step(0, 0, {})
            if meter.should_stop():
                control.should_training_stop = True

    data = Dataset.from_list([
        {"prompt": format_prompt(p["prompt"]), "chosen": p["chosen"], "rejected": p["rejected"]} for p in prefs
    ])
    cuda = torch.cuda.is_available()
    cfg = TRLConfig(
        output_dir=str(args.workdir / "trl"), per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1, max_steps=args.steps, learning_rate=5e-7, beta=0.1, max_length=args.seq_len,
        optim="rmsprop", warmup_steps=min(150, args.steps), max_grad_norm=10.0, bf16=cuda, use_cpu=not cuda,
        report_to=[], save_strategy="no", logging_steps=max(1, args.steps // 10), disable_tqdm=True, seed=0,
        dataloader_num_workers=0, gradient_checkpointing=False,  # like "before": no activation checkpointing
    )
    policy, reference = load(), load()
    reference.requires_grad_(False).eval()
    start = reset_peak()
    trainer = DPOTrainer(model=policy, ref_model=reference, args=cfg, train_dataset=data,
                         processing_class=ByT5Tokenizer(), callbacks=[Timer()])
    trainer.train()
    return {"tokens_per_s": meter.rate(tokens_per_step), "peak_mem_gib": peak_gib(), "start_mem_gib": start,
            "steps": len(meter.times)}


def ensure_init(args: argparse.Namespace) -> Path:
    """The random model every configuration starts from (policy = reference = it), saved once."""
    init = args.workdir / f"init-{args.size}"
    if not (init / "config.json").exists():
        tokenizer = ByT5Tokenizer()
        # Random init of a billion parameters takes a while on a CPU; on the GPU it is instant.
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = build_model(tokenizer, size=args.size, seq_len=args.seq_len)
        model.save_pretrained(init)
        tokenizer.save_pretrained(init)
        del model
    return init


def run_config(name: str, args: argparse.Namespace) -> dict:
    """One configuration in this process; returns its measurements."""
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    tokenizer = ByT5Tokenizer()
    sft_records, prefs = synthetic_records(args.steps * args.batch_size, args.seq_len)
    shape = dict(max_length=args.seq_len, max_prompt_length=args.seq_len // 2)
    init = ensure_init(args)

    def load() -> torch.nn.Module:
        kw = {"attn_implementation": args.attn} if args.attn else {}
        model = AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32, **kw)
        return model.cuda() if cuda else model

    kind, settings = CONFIGS[name]
    common = dict(lr=5e-7, optimizer="rmsprop", warmup_steps=min(150, args.steps), max_grad_norm=10.0,
                  batch_size=args.batch_size, grad_accum=1, mixed_precision="bf16" if cuda else "no", **shape)
    meter = Meter(args.max_seconds)
    if kind == "trl":
        pairs = TokenizedPairs(prefs, tokenizer, **shape).examples
        per_pair = sum(len(e["chosen_input_ids"]) + len(e["rejected_input_ids"]) for e in pairs) / len(pairs)
        return run_trl(args, prefs, per_pair * args.batch_size, load)
    if kind == "sft":
        model = load()
        start = reset_peak()
        out = loop.train_sft(model, tokenizer, sft_records,
                             SFTConfig(output_dir=str(args.workdir / name), **common, **settings),
                             on_step=meter.on_step, should_stop=meter.should_stop)
        total = sum(len(e["input_ids"]) for e in SFTDataset(sft_records, tokenizer, **shape).examples)
        return {"tokens_per_s": meter.rate(), "peak_mem_gib": peak_gib(), "start_mem_gib": start,
                "steps": out["step"], "final_loss": out["metrics"]["loss/train"], "dataset_tokens": total,
                "warnings": out["warnings"]}
    # DPO. With precompute, the reference log-probs are computed once per size (timed) by the
    # first configuration that needs them and read back by the others, as the app reads them from
    # the dataset's cache; training then runs without the reference model, as the app's jobs do.
    start = reset_peak()
    records, reference, precompute_s = prefs, None, 0.0
    cfg = DPOConfig(output_dir=str(args.workdir / name), **common, **settings)
    pairs = TokenizedPairs(prefs, tokenizer, **shape)
    if settings["precompute_reference"]:
        cache = args.workdir / f"reference-{args.size}.json"
        if not cache.exists():
            reference = load()
            began = time.perf_counter()
            with loop.fused_lm_head(reference, enabled=cfg.fused_lm_head):
                chosen, rejected = compute_reference_logps(
                    reference, pairs, pad_token_id=tokenizer.pad_token_id, batch_size=2 * cfg.batch_size,
                    packing=cfg.packing, mixed_precision=cfg.mixed_precision,
                )
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - began
            cache.write_text(json.dumps({"chosen": chosen, "rejected": rejected, "seconds": seconds}))
            del reference
            reference = None
            gc.collect()  # free the reference's memory before the policy is loaded
        saved = json.loads(cache.read_text())
        records = [{**p, "reference_chosen_logps": c, "reference_rejected_logps": r}
                   for p, c, r in zip(prefs, saved["chosen"], saved["rejected"], strict=True)]
        precompute_s = saved["seconds"]
    else:
        reference = load()
    policy = load()
    out = loop.train_preference(policy, reference, tokenizer, records, cfg, method="rdpo",
                                on_step=meter.on_step, should_stop=meter.should_stop)
    total = sum(len(e["chosen_input_ids"]) + len(e["rejected_input_ids"]) for e in pairs.examples)
    tps = meter.rate()
    return {"tokens_per_s": tps, "peak_mem_gib": peak_gib(), "start_mem_gib": start, "steps": out["step"],
            "final_loss": out["metrics"]["loss/train"], "precompute_s": precompute_s, "dataset_tokens": total,
            "e2e_tokens_per_s": total / (total / tps + precompute_s) if tps == tps else float("nan"),
            "warnings": out["warnings"]}


def _no_checkpoints() -> None:
    # Checkpoint writes are disk I/O (10 GB per save at 1.28 B with optimizer state), not training.
    loop._Trainer.save = lambda self, name, *, finished: ""  # type: ignore[method-assign]


def table(results: dict) -> str:
    """Markdown rows: configuration, steps, tokens/s, ratio to TRL, peak GiB, ratio to TRL."""
    trl = results["configs"].get("trl", {})
    lines = ["| configuration | steps | real tokens/s | × TRL | incl. precompute | peak GiB | × TRL |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results["configs"].items():
        if "tokens_per_s" not in r:
            lines.append(f"| {name} | – | {r.get('skipped') or r.get('error')} | | | | |")
            continue
        tps, mem = r["tokens_per_s"], r["peak_mem_gib"]
        ratio = f"{tps / trl['tokens_per_s']:.2f}" if "tokens_per_s" in trl and name != "trl" else ""
        mratio = f"{mem / trl['peak_mem_gib']:.2f}" if "peak_mem_gib" in trl and name != "trl" else ""
        e2e = f"{r['e2e_tokens_per_s']:.0f}" if r.get("precompute_s") else ""
        lines.append(f"| {name} | {r['steps']} | {tps:.0f} | {ratio} | {e2e} | {mem:.2f} | {mratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per configuration (at most)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs (DPO) or examples (SFT) per step")
    parser.add_argument("--seq-len", type=int, default=512, help="max_length (prompt+answer)")
    parser.add_argument("--size", choices=sorted(SIZES), default="1.28b")
    parser.add_argument("--tiny", action="store_true", help="same as --size tiny --seq-len 128: CPU smoke check")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, from {DEFAULT_CONFIGS}")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="training time cap per configuration")
    parser.add_argument("--budget-s", type=float, default=float("inf"), help="time budget of the whole run")
    parser.add_argument("--attn", default="", help="attention implementation (sdpa, flash_attention_2); model default")
    parser.add_argument("--in-process", action=argparse.BooleanOptionalAction, default=None,
                        help="all configurations in this process (default on GPU; on CPU each needs its own for RSS)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiny:
        args.size, args.seq_len = "tiny", min(args.seq_len, 128)
    _no_checkpoints()

    if args.config:  # child process: one configuration, result as JSON on the last line of stdout
        print(json.dumps(run_config(args.config, args)))
        return

    began = time.monotonic()
    cuda = torch.cuda.is_available()
    in_process = cuda if args.in_process is None else args.in_process
    names = [n for n in args.configs.split(",") if n and not (args.skip_trl and n == "trl")]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configurations {unknown}; choose from {DEFAULT_CONFIGS}")
    results: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "size": args.size,
                     "steps": args.steps, "batch_size": args.batch_size, "seq_len": args.seq_len,
                     "attn": args.attn or "model default", "date": time.strftime("%Y-%m-%d"), "configs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = Path(tmp)
        for name in names:
            left = args.budget_s - (time.monotonic() - began)
            if left < 10:
                results["configs"][name] = {"skipped": f"over the {args.budget_s:.0f} s budget"}
                continue
            child_args = argparse.Namespace(**{**vars(args), "max_seconds": min(args.max_seconds, left * 0.6)})
            try:
                if in_process:
                    # Memory a previous configuration failed to free would inflate this one's peak.
                    resident = torch.cuda.memory_allocated() / 2**30 if cuda else 0.0
                    results["configs"][name] = {**run_config(name, child_args), "resident_before_gib": resident}
                else:
                    results["configs"][name] = _child(name, child_args)
            except Exception as exc:  # report, do not hide; the other configurations still run
                results["configs"][name] = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
            print(name, json.dumps(results["configs"][name]), flush=True)
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    with torch.device("meta"):
        results["params_m"] = sum(p.numel() for p in build_model(ByT5Tokenizer(), size=args.size, seq_len=64)
                                  .parameters()) / 1e6
    print(f"\n{results['device']}, {args.size} ({results['params_m']:.0f} M parameters), batch {args.batch_size} "
          f"pairs x {args.seq_len} tokens, {results['date']}")
    print(table(results))
    line = json.dumps(results)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


def _child(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--config", name, "--workdir", str(args.workdir), "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len), "--size", args.size,
           "--max-seconds", str(args.max_seconds)] + (["--attn", args.attn] if args.attn else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
