"""Answer generation for evaluation, and selection of test queries.

Generation uses the same prompt template as training (``data.format_prompt``): a model fine-
tuned on "Question: ...\\nAnswer: " is evaluated on that form.  Prompts are LEFT-padded so
that every row's last real token sits right before the generated tokens.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .config import N_TEST_QUERIES
from .data import DEFAULT_PROMPT_TEMPLATE, format_prompt

__all__ = ["generate_answers", "select_test_queries", "normalise_query", "GenerationStopped"]


class GenerationStopped(Exception):
    """``should_stop`` said stop: raised by :func:`generate_answers` with the answers so far."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__(f"generation stopped after {len(answers)} answers")
        self.answers = answers


class _StopWhen(StoppingCriteria):
    """A ``StoppingCriteria`` for ``model.generate``: asked after every generated token, so a
    cancelled job stops within one generation step instead of finishing the batch's
    ``max_new_tokens`` (tens of seconds on a CPU)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.stopped = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.stopped = self.stopped or bool(self.should_stop())
        return torch.full((input_ids.shape[0],), self.stopped, dtype=torch.bool, device=input_ids.device)


def normalise_query(text: str) -> str:
    """Casefolded, whitespace-collapsed text: the identity used to dedupe queries."""
    return re.sub(r"\s+", " ", str(text)).strip().casefold()


def select_test_queries(
    queries: Iterable[str], n: int = N_TEST_QUERIES, seed: int = 0, *, exclude: Iterable[str] = ()
) -> list[str]:
    """``n`` DISTINCT queries drawn with ``seed`` (the original "300" held 3 duplicates).

    Duplicates are detected on :func:`normalise_query`; the first spelling is kept.  Queries
    whose normalised text is in ``exclude`` (e.g. training prompts) are dropped.  Raises
    ValueError when fewer than ``n`` distinct queries remain.
    """
    excluded = {normalise_query(q) for q in exclude}
    distinct: dict[str, str] = {}
    for q in queries:
        key = normalise_query(q)
        if key and key not in excluded and key not in distinct:
            distinct[key] = q
    if len(distinct) < n:
        raise ValueError(f"only {len(distinct)} distinct queries, {n} requested")
    keys = sorted(distinct)  # independent of input order, so the draw depends on the seed only
    return [distinct[k] for k in random.Random(seed).sample(keys, n)]


def _vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def _generate_vllm(
    model_path: str, prompts: list[str], *, max_new_tokens: int, seed: int, do_sample: bool
) -> list[str]:
    """Optional fast path when vLLM is installed and ``model`` is a checkpoint path (untested)."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, seed=seed)
    params = SamplingParams(
        max_tokens=max_new_tokens, temperature=1.0 if do_sample else 0.0, seed=seed
    )
    return [o.outputs[0].text for o in llm.generate(prompts, params)]


@torch.no_grad()
def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 512,
    seed: int = 0,
    do_sample: bool = False,
    batch_size: int = 8,
    template: str = DEFAULT_PROMPT_TEMPLATE,
    max_prompt_length: int = 256,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Generate one answer per raw query, in order.

    ``model`` is a transformers causal LM, or a checkpoint path (then vLLM is used if it is
    importable, else the checkpoint is loaded with transformers).  Greedy by default so that
    SFT and DPO answers differ only by the weights.  Generation stops at EOS or after
    ``max_new_tokens`` (default 512, the paper's evaluation length); the answer text excludes
    the prompt and special tokens.

    ``should_stop()`` is asked after every generated token (and between batches); when it says
    stop, :class:`GenerationStopped` is raised carrying the answers finished so far.
    ``on_batch(done, total)`` reports progress after each batch.
    """
    texts = [format_prompt(p, template) for p in prompts]
    if isinstance(model, (str, Path)):
        if _vllm_available():
            return _generate_vllm(str(model), texts, max_new_tokens=max_new_tokens, seed=seed, do_sample=do_sample)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    answers: list[str] = []
    stop = None
    if should_stop is not None:
        stop = _StopWhen(should_stop)
    try:
        for start in range(0, len(texts), batch_size):
            if stop is not None and (stop.stopped or stop.should_stop()):
                raise GenerationStopped(answers)
            chunk = texts[start : start + batch_size]
            ids = [list(tokenizer(t, add_special_tokens=False)["input_ids"])[-max_prompt_length:] for t in chunk]
            length = max(len(x) for x in ids)
            input_ids = torch.full((len(ids), length), pad, dtype=torch.long)
            attention = torch.zeros((len(ids), length), dtype=torch.long)
            for i, x in enumerate(ids):  # left padding
                input_ids[i, length - len(x) :] = torch.as_tensor(x)
                attention[i, length - len(x) :] = 1
            out = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                eos_token_id=eos,
                pad_token_id=pad,
                **({"stopping_criteria": StoppingCriteriaList([stop])} if stop is not None else {}),
            )
            if stop is not None and stop.stopped:
                raise GenerationStopped(answers)  # this batch's answers are cut short: not kept
            new_tokens = out[:, length:]
            answers.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
            if on_batch is not None:
                on_batch(len(answers), len(texts))
    finally:
        model.train(was_training)
    return answers
