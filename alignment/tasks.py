"""Alignment jobs (``gpu`` queue): training runs and judged evaluations.

Each job re-reads its run by primary key and writes progress, metrics and artifacts back to it.
Training resumes from the newest checkpoint in the run's folder, so a job re-run after a crash
continues instead of starting over.  Heavy imports (torch, transformers) stay inside the
functions so the web process starts fast.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from jobs.exceptions import JobCancelled
from jobs.models import Job
from jobs.runner import JobContext, job_task

from .training.config import EVALUATION_DEFAULTS, N_TEST_QUERIES


def _latest_checkpoint(output_dir: Path) -> Path | None:
    steps = []
    for p in output_dir.glob("step-*"):
        m = re.fullmatch(r"step-(\d+)", p.name)
        if m and (p / "trainer_state.json").exists():
            steps.append((int(m.group(1)), p))
    return max(steps)[1] if steps else None


def _load(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path)
    return model, tokenizer


class _Reporter:
    """Throttled progress/metrics writes and cancellation checks for the training loop.

    The run's ``metrics`` carry the curves so far (``history``, thinned), so the run page draws
    them while the job runs; validation rows (``valid/...``, once per epoch) are written at once.
    """

    def __init__(self, ctx: JobContext, run, every_s: float = 2.0) -> None:
        self.ctx, self.run, self.every_s = ctx, run, every_s
        self._last = 0.0
        self._cancelled = False
        self.history: list[dict[str, float]] = []
        self.warnings = list((run.metrics or {}).get("warnings") or [])  # from the start service

    def on_step(self, step: int, total: int, metrics: dict[str, float]) -> None:
        validation = any(k.startswith("valid/") for k in metrics)
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        if validation:
            row = {"step": step, **{k: float(v) for k, v in metrics.items() if k.startswith("valid/")}}
        self.history.append(row)
        now = time.monotonic()
        if now - self._last < self.every_s and step < total and not validation:
            return
        self._last = now
        self.run.metrics = {"step": step, "total_steps": total, **{k: float(v) for k, v in metrics.items()},
                            "warnings": self.warnings, "history": _thin(self.history)}
        self.run.save(update_fields=["metrics"])
        if validation:
            self.ctx.log(f"validation after step {step}: " + ", ".join(
                f"{k.removeprefix('valid/')} {v:.4g}" for k, v in row.items() if k != "step"))
        else:
            self.ctx.log(f"step {step}/{total} loss {metrics.get('loss/train', float('nan')):.4f}")
        try:
            self.ctx.progress(5 + 90 * step / max(total, 1), f"step {step} of {total}")
        except JobCancelled:
            # Stop cleanly at the loop's next should_stop() (it saves a checkpoint first). Any
            # other error (a database failure) propagates and fails the job, visibly: it must
            # not end SUCCEEDED with a partial checkpoint.
            self._cancelled = True

    def should_stop(self) -> bool:
        if not self._cancelled:
            self._cancelled = not Job.objects.filter(pk=self.ctx.job.pk, status=Job.Status.RUNNING).exists()
        return self._cancelled


def _config(cls: type, overrides: dict[str, Any], output_dir: str) -> Any:
    fields = set(cls.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown config fields: {sorted(unknown)}")
    return cls(**{**overrides, "output_dir": output_dir})


@job_task("alignment.train", permission="alignment.add_trainingrun")
def train(ctx: JobContext, *, run_pk: int) -> dict:
    """SFT from a base checkpoint, or (r)DPO + NLL from an SFT run with the SFT model as reference."""
    from .models import TrainingRun
    from .services import sft_records, test_queries
    from .training import loop
    from .training.config import DPOConfig, SFTConfig
    from .training.preference import _normalise

    run = TrainingRun.objects.select_related("sft_run", "dataset").get(pk=run_pk)
    output_dir = Path(run.output_dir)
    if (output_dir / "final").exists():
        # Later runs use this checkpoint as their reference: never train over it.
        raise RuntimeError(f"run {run.pk} has finished ({output_dir / 'final'}); start a new run instead")
    output_dir.mkdir(parents=True, exist_ok=True)
    resume = _latest_checkpoint(output_dir)
    reporter = _Reporter(ctx, run)
    if resume is not None:  # the curves go on from the checkpoint's, not from nothing
        reporter.history = list(json.loads((resume / "trainer_state.json").read_text()).get("history") or [])
    if run.method == TrainingRun.Method.SFT:
        # The evaluation queries are held out of SFT so the judged answers are never trained on.
        # Read from a copy: the run's recorded configuration stays as the user wrote it.
        overrides = dict(run.config)
        holdout = int(overrides.pop("holdout_test_queries", N_TEST_QUERIES))
        exclude = {_normalise(q) for q in test_queries(n=holdout)}
        cfg = _config(SFTConfig, overrides, str(output_dir))
        records = sft_records(exclude_prompts=exclude)
        ctx.progress(2, f"loading {run.base_model}")
        model, tokenizer = _load(run.base_model)
        ctx.log(f"SFT on {len(records)} answers ({len(exclude)} test queries held out)")
        result = loop.train_sft(
            model, tokenizer, records, cfg, on_step=reporter.on_step, should_stop=reporter.should_stop,
            resume_from=resume,
        )
    else:
        sft_dir = Path(run.sft_run.output_dir) / "final"
        if not sft_dir.exists():
            raise RuntimeError(f"SFT run {run.sft_run_id} has no final checkpoint at {sft_dir}")
        cfg = _config(DPOConfig, dict(run.config), str(output_dir))
        ctx.progress(2, f"loading SFT model {sft_dir}")
        policy, tokenizer = _load(str(sft_dir))
        records, valid, reference = _reference_records(ctx, run, cfg, sft_dir, tokenizer)
        ctx.log(f"{run.get_method_display()} on {len(records)} pairs from {sft_dir}, "
                f"{len(valid)} validation pairs scored each epoch")
        result = loop.train_preference(
            policy, reference, tokenizer, records, cfg, method=run.method,
            on_step=reporter.on_step, should_stop=reporter.should_stop, resume_from=resume, valid_records=valid,
        )
    for warning in result.get("warnings", []):
        ctx.log(f"warning: {warning}")
    run.metrics = {
        "step": result["step"],
        "total_steps": result["total_steps"],
        "stopped": result["stopped"],
        "checkpoint": str(result["checkpoint"]),
        **{k: float(v) for k, v in (result.get("metrics") or {}).items()},
        "warmup_steps": result.get("warmup_steps"),
        "warnings": reporter.warnings + list(result.get("warnings", [])),
        "history": _thin(result.get("history") or []),  # the run page draws its curves from this
    }
    run.save(update_fields=["metrics"])
    if result["stopped"]:
        ctx.progress(ctx.job.progress, "stopped")  # raises JobCancelled when cancelled
    return {"checkpoint": str(result["checkpoint"]), "step": result["step"]}


def _reference_records(ctx: JobContext, run, cfg, sft_dir: Path, tokenizer) -> tuple[list[dict], list[dict], Any]:
    """Training and validation records of the run, with the reference log-probs when
    ``precompute_reference`` (the cache covers both splits).

    The log-probs are read from the dataset's cache when its key matches (same dataset version,
    same SFT checkpoint and fingerprint, same tokenisation), else computed once with the SFT
    model and stored, so a resumed job, or another run on the same dataset and SFT model, reads
    the very same numbers.  Returns ``(records, valid_records, reference)``; ``reference`` is None
    when the log-probs are there, so training never loads the reference model.
    """
    from .services import dataset_records, dataset_reference_logps_store, reference_logps_key

    if not cfg.precompute_reference:
        reference, _ = _load(str(sft_dir))  # the SFT model is the reference, for every method
        return (dataset_records(dataset=run.dataset, split="train", reference_key=""),
                dataset_records(dataset=run.dataset, split="valid", reference_key=""), reference)
    key = reference_logps_key(dataset=run.dataset, reference_path=sft_dir, cfg=cfg)
    train = dataset_records(dataset=run.dataset, split="train", reference_key=key)
    valid = dataset_records(dataset=run.dataset, split="valid", reference_key=key)
    records = train + valid
    if records and all("reference_chosen_logps" in r for r in records):
        ctx.log(f"reference log-probs of {len(records)} pairs read from the dataset's cache ({key[:12]})")
        return train, valid, None
    import torch

    from .training.data import TokenizedPairs
    from .training.loop import _pad_id
    from .training.reference import compute_reference_logps

    ctx.progress(3, f"reference log-probs of {len(records)} pairs")
    reference, _ = _load(str(sft_dir))
    pairs = TokenizedPairs(records, tokenizer, max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
                           template=cfg.prompt_template)
    started = time.monotonic()
    chosen, rejected = compute_reference_logps(
        reference.to("cuda" if torch.cuda.is_available() else "cpu"), pairs, pad_token_id=_pad_id(tokenizer),
        batch_size=cfg.reference_batch_size or 2 * cfg.batch_size, packing=cfg.packing, pack_length=cfg.pack_length,
        mixed_precision=cfg.mixed_precision,
    )
    values = {r["pair_id"]: (c, j) for r, c, j in zip(records, chosen, rejected, strict=True)}
    dataset_reference_logps_store(dataset=run.dataset, key=key, reference_path=sft_dir, values=values)
    ctx.log(f"reference log-probs of {len(records)} pairs computed in {time.monotonic() - started:.1f} s, cached")
    for record, c, j in zip(records, chosen, rejected, strict=True):
        record["reference_chosen_logps"], record["reference_rejected_logps"] = c, j
    del reference
    return train, valid, None


def _thin(history: list[dict[str, float]], most: int = 500) -> list[dict[str, float]]:
    """At most ``most`` evenly spaced entries (always the last), JSON-safe (NaN -> None)."""
    if len(history) > most:
        stride = -(-len(history) // most)
        history = history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])
    return [{k: (None if v != v else v) for k, v in row.items()} for row in history]


def judge_client_fn(llm, **client_kwargs: Any) -> Any:
    """A ``prompt -> reply`` function for the judge model from the registry.

    The key comes from ``collection.llm.clients.api_key``, the rule the chat clients follow: a
    judge whose key variable is not set fails the job here, before any generation, instead of
    sending a placeholder key. ``client_kwargs`` (``timeout``, ``max_retries``) go to the SDK.
    """
    from collection.llm.clients import api_key
    from collection.models import LLMProvider

    from .training.judge import anthropic_client_fn, demo_judge_fn, openai_client_fn

    if llm.provider == LLMProvider.DEMO:
        return demo_judge_fn
    factories = {LLMProvider.OPENAI: openai_client_fn, LLMProvider.ANTHROPIC: anthropic_client_fn}
    if llm.provider not in factories:
        raise ValueError(f"model {llm.name!r} ({llm.provider}) cannot act as a judge")
    return factories[llm.provider](llm.base_url or None, llm.model_id, api_key(llm), **client_kwargs)


def judge_check(llm) -> None:
    """Refuse a judge that does not answer one tiny request (a short timeout, one retry).

    Called by the evaluation job before any answer is generated: an unreachable judge fails the
    job in seconds with the reason as its one-line cause, instead of after hours of generation.
    """
    from .training.judge import check_judge

    where = f" at {llm.base_url}" if llm.base_url else ""
    check_judge(judge_client_fn(llm, timeout=20.0, max_retries=1), name=f"judge {llm.name!r}{where}")


def _cancel_check(job_pk: int, every_s: float = 0.0) -> Any:
    """``should_stop()`` for generation: whether the job left RUNNING (one indexed query)."""
    state = {"at": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if not state["stop"] and now - state["at"] >= every_s:
            state["at"] = now
            state["stop"] = not Job.objects.filter(pk=job_pk, status=Job.Status.RUNNING).exists()
        return state["stop"]

    return should_stop


@job_task("alignment.evaluate", permission="alignment.add_evaluationrun")
def evaluate(ctx: JobContext, *, eval_pk: int) -> dict:
    """Generate answers of the SFT and the aligned model on the test queries, judge both orders.

    The judge is checked first (one request), before any generation. Each model's answers are
    stored on the run as soon as they exist, so a judge failure or a cancellation keeps them and
    a resumed job (Resume on the page) judges them without generating again. Generation asks
    after every token whether the job was cancelled.
    """
    import pandas as pd

    from .models import EvaluationRun
    from .services import test_queries
    from .training.evaluate import judge_comparisons, table3
    from .training.generate import GenerationStopped, generate_answers

    run = EvaluationRun.objects.select_related("sft_run", "aligned_run", "judge").get(pk=eval_pk)
    if run.judge is None:
        raise ValueError("choose a judge model from the registry")
    params = {**EVALUATION_DEFAULTS, **run.params}
    client_fn = judge_client_fn(run.judge)  # before generating: a model that cannot judge fails now
    ctx.progress(1, f"checking the judge {run.judge}")
    judge_check(run.judge)
    queries = test_queries(n=params["n_queries"], seed=params["seed"])
    ctx.log(f"{len(queries)} test queries, up to {params['max_new_tokens']} new tokens each, judge {run.judge}")
    kept = {c.get("query"): c for c in run.comparisons or []}
    answers = {}
    should_stop = _cancel_check(ctx.job.pk)
    for i, (label, train_run) in enumerate((("sft", run.sft_run), ("dpo", run.aligned_run))):
        key = f"{label}_answer"
        if queries and all(kept.get(q, {}).get(key) is not None for q in queries):
            answers[label] = [kept[q][key] for q in queries]
            ctx.log(f"{label}: {len(queries)} answers kept from the earlier attempt")
            continue
        ctx.progress(5 + 30 * i, f"generating with {label}")
        model, tokenizer = _load(str(Path(train_run.output_dir) / "final"))

        def on_batch(done: int, total: int, i: int = i, label: str = label) -> None:
            ctx.progress(5 + 30 * i + 30 * done / max(total, 1), f"generating with {label}: {done} of {total}")

        try:
            answers[label] = generate_answers(
                model, tokenizer, queries, max_new_tokens=params["max_new_tokens"], seed=params["seed"],
                template=train_run.config.get("prompt_template") or _template(), should_stop=should_stop,
                on_batch=on_batch,
            )
        except GenerationStopped as stopped:
            ctx.log(f"cancelled while generating with {label} ({len(stopped.answers)} answers done)")
            raise JobCancelled(f"job {ctx.job.pk} was cancelled") from None
        _keep_answers(run, queries, answers)
    comparisons = pd.DataFrame(
        {
            "base_model": Path(run.sft_run.base_model).name,
            "reward_source": run.aligned_run.dataset.name if run.aligned_run.dataset else "",
            "query": queries,
            "sft_answer": answers["sft"],
            "dpo_answer": answers["dpo"],
        }
    )
    ctx.progress(70, f"judging {len(queries)} pairs with {run.judge}")
    judged = judge_comparisons(
        client_fn, comparisons,
        on_row=lambda done, total: ctx.progress(70 + 28 * done / max(total, 1), f"judging: {done} of {total}"),
    )
    table = table3(judged)
    run.comparisons = judged.astype(object).where(judged.notna(), None).to_dict("records")
    run.table = table.astype(object).where(table.notna(), None).to_dict("records")
    run.save(update_fields=["comparisons", "table"])
    return {"queries": len(queries), "rows": len(run.table)}


def _keep_answers(run, queries: list[str], answers: dict[str, list[str]]) -> None:
    """Store the answers generated so far on the run (no judgement yet): the page shows them and
    a resumed job does not generate them again."""
    rows = []
    for j, query in enumerate(queries):
        rows.append({"query": query, **{f"{label}_answer": texts[j] for label, texts in answers.items()}})
    run.comparisons = rows
    run.save(update_fields=["comparisons"])


def _template() -> str:
    from .training.data import DEFAULT_PROMPT_TEMPLATE

    return DEFAULT_PROMPT_TEMPLATE
