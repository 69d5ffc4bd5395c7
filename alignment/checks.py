"""Checks made before an alignment job starts, so a bad input is a field error, not a failed job.

Each check returns ``{field: message}`` (empty when all is well). The admin forms show the
messages on their fields; the start services raise ``ValueError`` with them, so a script that
bypasses the forms is refused the same way.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from .models import TrainingRun
from .training.config import EVALUATION_DEFAULTS, N_TEST_QUERIES

#: Keys of a training run's config that are not fields of the training dataclasses.
SFT_EXTRA_KEYS = {"holdout_test_queries": N_TEST_QUERIES}


def config_class(method: str) -> type:
    from .training.config import DPOConfig, SFTConfig

    return SFTConfig if method == TrainingRun.Method.SFT else DPOConfig


def config_defaults(method: str) -> dict[str, Any]:
    """Every setting of ``method`` with its default (what a run uses unless told otherwise)."""
    cls = config_class(method)
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls) if f.name not in {"output_dir", "extra"}}
    if method == TrainingRun.Method.SFT:
        defaults.update(SFT_EXTRA_KEYS)
    return defaults


def check_config(method: str, config: dict[str, Any]) -> list[str]:
    """Messages for unknown keys and values of the wrong type (an int where a float is fine)."""
    if not isinstance(config, dict):
        return ["must be a JSON object of setting: value"]
    defaults = config_defaults(method)
    problems = []
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        problems.append(
            f"unknown setting(s) for {method}: {', '.join(unknown)}; known: {', '.join(sorted(defaults))}"
        )
    for key, value in config.items():
        if key not in defaults:
            continue
        default = defaults[key]
        ok = (
            isinstance(value, bool) if isinstance(default, bool)
            else isinstance(value, int) and not isinstance(value, bool) if isinstance(default, int)
            else isinstance(value, (int, float)) and not isinstance(value, bool) if isinstance(default, float)
            else isinstance(value, str)
        )
        if not ok:
            problems.append(f"{key} must be a {type(default).__name__}, not {json.dumps(value)}")
    if not problems:
        used = {**defaults, **config}
        if used["max_prompt_length"] >= used["max_length"]:
            problems.append(f"max_prompt_length ({used['max_prompt_length']}) must be below max_length "
                            f"({used['max_length']}): the answer needs room")
    return problems


def check_checkpoint(path: str) -> str | None:
    """Why ``path`` is not a local Hugging Face checkpoint, or None if it is one."""
    if not path:
        return "give the local path of a checkpoint folder"
    p = Path(path).expanduser()
    if not p.exists():
        return f"the path does not exist: {path}"
    if not p.is_dir():
        return f"not a folder: {path}"
    if not (p / "config.json").exists():
        return f"no config.json in {path}: not a saved Hugging Face checkpoint"
    return None


def final_checkpoint(run: TrainingRun) -> Path | None:
    final = Path(run.output_dir) / "final" if run.output_dir else None
    return final if final is not None and (final / "config.json").exists() else None


def check_training(
    *, method: str, base_model: str, dataset: Any, sft_run: TrainingRun | None, config: dict[str, Any]
) -> dict[str, str]:
    from .models import PreferenceDataset

    errors: dict[str, str] = {}
    if method == TrainingRun.Method.SFT:
        problem = check_checkpoint(base_model)
        if problem:
            errors["base_model"] = problem
    else:
        if sft_run is None:
            errors["sft_run"] = "DPO and rDPO start from an SFT run (also the reference model)."
        elif sft_run.method != TrainingRun.Method.SFT:
            errors["sft_run"] = f"{sft_run} is a {sft_run.get_method_display()} run, not an SFT run."
        elif final_checkpoint(sft_run) is None:
            errors["sft_run"] = f"{sft_run} has not finished: it has no final checkpoint yet."
        if dataset is None:
            errors["dataset"] = "Choose a preference dataset."
        elif method == TrainingRun.Method.RDPO and dataset.source == PreferenceDataset.Source.EXPLICIT:
            errors["dataset"] = "rDPO needs confidences: use a reward-model dataset (DPO for explicit labels)."
    problems = check_config(method, config)
    if problems:
        errors["config"] = "; ".join(problems)
    return errors


def training_length_warning(
    *, method: str, dataset: Any, config: dict[str, Any], n_records: int | None = None
) -> str | None:
    """``short_run_warning`` for a run about to start: its records (the dataset's train split,
    or SFT's answers without the held-out test queries) under the settings it will use."""
    from .training.config import short_run_warning

    used = {**config_defaults(method), **config}
    if n_records is None:
        if method == TrainingRun.Method.SFT:
            from .services import sft_records, test_queries
            from .training.preference import _normalise

            exclude = {_normalise(q) for q in test_queries(n=int(used.get("holdout_test_queries", 300)))}
            n_records = len(sft_records(exclude_prompts=exclude))
        elif dataset is not None:
            n_records = dataset.pairs.filter(split="train").count()
        else:
            return None
    return short_run_warning(n_records, batch_size=int(used["batch_size"]), grad_accum=int(used["grad_accum"]),
                             epochs=int(used["epochs"]), lr=float(used["lr"]))


def model_context(checkpoint: Path) -> int | None:
    """Positions the model can attend to (GPT-2 ``n_positions``, most others
    ``max_position_embeddings``); None when the config does not say."""
    cfg = json.loads((checkpoint / "config.json").read_text())
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        if isinstance(cfg.get(key), int):
            return cfg[key]
    return None


def check_evaluation(
    *, sft_run: TrainingRun | None, aligned_run: TrainingRun | None, judge: Any, params: dict[str, Any]
) -> dict[str, str]:
    """Runs finished, judge able to judge, and prompt + ``max_new_tokens`` within the context."""
    from .services import test_queries
    from .training.data import DEFAULT_PROMPT_TEMPLATE
    from .training.generate import format_prompt

    errors: dict[str, str] = {}
    if judge is None:
        errors["judge"] = "Choose a judge from the LLM registry."
    elif not judge.can_judge:
        errors["judge"] = f"{judge} is not marked as a judge in the LLM registry."
    elif judge.provider not in JUDGE_PROVIDERS:
        errors["judge"] = f"{judge} ({judge.get_provider_display()}) cannot act as a judge."
    elif judge.provider != "demo":  # the offline demo judge needs no key
        from collection.llm.clients import ProviderError, api_key

        try:
            api_key(judge)  # the lab's one key rule: a named variable that is not set is refused
        except ProviderError as exc:
            errors["judge"] = f"{judge}: {exc}."
    runs = {"sft_run": sft_run, "aligned_run": aligned_run}
    if sft_run is not None and sft_run.method != TrainingRun.Method.SFT:
        errors["sft_run"] = f"{sft_run} is not an SFT run."
    if aligned_run is not None and aligned_run.method == TrainingRun.Method.SFT:
        errors["aligned_run"] = f"{aligned_run} is an SFT run; choose a DPO or rDPO run."
    max_new = int(params.get("max_new_tokens", 512))
    for name, run in runs.items():
        if run is None or name in errors:
            continue
        final = final_checkpoint(run)
        if final is None:
            errors[name] = f"{run} has not finished: it has no final checkpoint yet."
            continue
        context = model_context(final)
        if context is None:
            continue
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(final)
        template = run.config.get("prompt_template") or DEFAULT_PROMPT_TEMPLATE
        params = {**EVALUATION_DEFAULTS, **params}
        queries = test_queries(n=int(params["n_queries"]), seed=int(params["seed"]))
        longest = max(
            (min(256, len(tokenizer(format_prompt(q, template), add_special_tokens=False)["input_ids"]))
             for q in queries), default=0,
        )
        if longest + max_new > context:
            errors["max_new_tokens"] = (
                f"the longest prompt ({longest} tokens) + max_new_tokens ({max_new}) exceeds the "
                f"{context}-token context of {run}; at most {max(context - longest, 0)}"
            )
    return errors


#: Providers whose models can be asked for a judgement (see ``alignment.tasks.judge_client_fn``).
JUDGE_PROVIDERS = ("openai", "anthropic", "demo")
