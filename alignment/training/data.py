"""Prompt formatting, tokenisation and collators for SFT and preference training.

Two decisions here fix mistakes of the paper's original pipeline:

* Responses ALWAYS end with the tokenizer's EOS token.  When a response is too long it is
  truncated first and EOS is appended after the cut, so the model still learns to stop
  (the original cut answers to 256 tokens and dropped EOS, then generated up to 512).
* When the prompt must be shortened we keep its *last* tokens, which sit next to the answer
  (the DPO reference's ``truncation_mode="keep_end"``).

Records are plain dicts: SFT ``{"prompt", "response"}``; preference
``{"pair_id", "prompt", "chosen", "rejected", "confidence"?}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .logps import IGNORE_INDEX

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "format_prompt",
    "tokenize_prompt",
    "tokenize_sft_example",
    "tokenize_preference_example",
    "SFTDataset",
    "TokenizedPairs",
    "SFTCollator",
    "PreferenceCollator",
    "pack_sequences",
    "PackedSFTCollator",
    "PackedPreferenceCollator",
    "REFERENCE_KEYS",
]

#: Columns holding the frozen reference's summed log-probs of a pair (the names of TRL < 1.0's
#: ``precompute_ref_log_probs`` datasets), present once they have been computed.
REFERENCE_KEYS = ("reference_chosen_logps", "reference_rejected_logps")

#: A default template, NOT the paper's verbatim one (the paper does not print it).  It follows
#: the DPO reference's Anthropic-HH style ("Human: ... Assistant:") in a Q/A form that base
#: models without a chat template can continue.  Training and generation must use the same one.
DEFAULT_PROMPT_TEMPLATE = "Question: {prompt}\nAnswer: "


def format_prompt(prompt: str, template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """Insert the raw user query into ``template`` (which must contain ``{prompt}``)."""
    if "{prompt}" not in template:
        raise ValueError("template must contain '{prompt}'")
    return template.replace("{prompt}", prompt)


def _encode(tokenizer: Any, text: str) -> list[int]:
    # No special tokens: some tokenizers (ByT5, T5) append EOS to every encode, which would
    # put an EOS between prompt and answer.  We add EOS ourselves at the end of the response.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _eos_id(tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("tokenizer has no eos_token_id; set one before training")
    return int(eos)


def tokenize_prompt(
    tokenizer: Any, prompt: str, *, max_prompt_length: int, template: str = DEFAULT_PROMPT_TEMPLATE
) -> list[int]:
    """Token ids of the formatted prompt, keeping its last ``max_prompt_length`` tokens."""
    ids = _encode(tokenizer, format_prompt(prompt, template))
    return ids[-max_prompt_length:] if len(ids) > max_prompt_length else ids


def _build_sequence(
    prompt_ids: list[int], response_ids: list[int], eos: int, *, max_length: int
) -> dict[str, list[int]]:
    # Truncate the response so that prompt + response + EOS fits, THEN append EOS.
    room = max_length - len(prompt_ids) - 1
    if room < 0:
        raise ValueError("prompt does not fit: max_length must exceed max_prompt_length")
    response_ids = response_ids[:room] + [eos]
    input_ids = prompt_ids + response_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + response_ids
    return {"input_ids": input_ids, "labels": labels}


def _check_lengths(max_length: int, max_prompt_length: int) -> None:
    if max_prompt_length >= max_length:
        raise ValueError("max_prompt_length must be smaller than max_length")


def tokenize_sft_example(
    tokenizer: Any,
    prompt: str,
    response: str,
    *,
    max_length: int,
    max_prompt_length: int,
    template: str = DEFAULT_PROMPT_TEMPLATE,
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 on the prompt) of one prompt/response example.

    The prompt is shortened (keeping its end) to ``max_prompt_length`` only when the whole
    sequence does not fit in ``max_length``, as in the DPO reference.
    """
    _check_lengths(max_length, max_prompt_length)
    eos = _eos_id(tokenizer)
    prompt_ids = _encode(tokenizer, format_prompt(prompt, template))
    response_ids = _encode(tokenizer, response)
    if len(prompt_ids) + len(response_ids) + 1 > max_length:
        prompt_ids = prompt_ids[-max_prompt_length:]
    return _build_sequence(prompt_ids, response_ids, eos, max_length=max_length)


def tokenize_preference_example(
    tokenizer: Any,
    prompt: str,
    chosen: str,
    rejected: str,
    *,
    max_length: int,
    max_prompt_length: int,
    template: str = DEFAULT_PROMPT_TEMPLATE,
) -> dict[str, list[int]]:
    """Tokenise a pair; both sides share exactly the same (possibly shortened) prompt tokens.

    Returns ``chosen_input_ids``, ``chosen_labels``, ``rejected_input_ids``, ``rejected_labels``.
    """
    _check_lengths(max_length, max_prompt_length)
    eos = _eos_id(tokenizer)
    prompt_ids = _encode(tokenizer, format_prompt(prompt, template))
    chosen_ids = _encode(tokenizer, chosen)
    rejected_ids = _encode(tokenizer, rejected)
    longer = max(len(chosen_ids), len(rejected_ids))
    if len(prompt_ids) + longer + 1 > max_length:
        prompt_ids = prompt_ids[-max_prompt_length:]
    c = _build_sequence(prompt_ids, chosen_ids, eos, max_length=max_length)
    r = _build_sequence(prompt_ids, rejected_ids, eos, max_length=max_length)
    return {
        "chosen_input_ids": c["input_ids"],
        "chosen_labels": c["labels"],
        "rejected_input_ids": r["input_ids"],
        "rejected_labels": r["labels"],
    }


class SFTDataset(Dataset):
    """Tokenised SFT examples from ``{"prompt", "response"}`` records (tokenised up front)."""

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        tokenizer: Any,
        *,
        max_length: int,
        max_prompt_length: int,
        template: str = DEFAULT_PROMPT_TEMPLATE,
    ) -> None:
        self.examples = [
            tokenize_sft_example(
                tokenizer,
                r["prompt"],
                r["response"],
                max_length=max_length,
                max_prompt_length=max_prompt_length,
                template=template,
            )
            for r in records
        ]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.examples[i]


def _confidence(value: Any) -> float:
    """NaN marks a missing confidence (explicit labels); rDPO refuses such pairs later."""
    if value is None:
        return math.nan
    return float(value)


class TokenizedPairs(Dataset):
    """Tokenised pairs from preference records; keeps ``confidence`` (NaN when absent).

    A torch ``Dataset`` for the training loop; not to be confused with the database model
    ``alignment.models.PreferenceDataset`` (the stored pairs these records come from).
    Records that carry ``reference_chosen_logps`` and ``reference_rejected_logps`` keep them, so
    training can skip the reference forward.
    """

    @property
    def has_reference_logps(self) -> bool:
        return all(k in ex for ex in self.examples for k in REFERENCE_KEYS)

    def set_reference_logps(self, chosen: Sequence[float], rejected: Sequence[float]) -> None:
        """Attach precomputed reference log-probs, one per example in dataset order."""
        if len(chosen) != len(self.examples) or len(rejected) != len(self.examples):
            raise ValueError("one reference log-prob per pair and side is needed")
        for ex, c, r in zip(self.examples, chosen, rejected, strict=True):
            ex[REFERENCE_KEYS[0]], ex[REFERENCE_KEYS[1]] = float(c), float(r)

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        tokenizer: Any,
        *,
        max_length: int,
        max_prompt_length: int,
        template: str = DEFAULT_PROMPT_TEMPLATE,
    ) -> None:
        self.examples = []
        for r in records:
            ex: dict[str, Any] = tokenize_preference_example(
                tokenizer,
                r["prompt"],
                r["chosen"],
                r["rejected"],
                max_length=max_length,
                max_prompt_length=max_prompt_length,
                template=template,
            )
            ex["confidence"] = _confidence(r.get("confidence"))
            if all(r.get(k) is not None for k in REFERENCE_KEYS):
                ex.update({k: float(r[k]) for k in REFERENCE_KEYS})
            self.examples.append(ex)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.examples[i]


def _pad(seqs: Sequence[Sequence[int]], value: int, length: int) -> Tensor:
    out = torch.full((len(seqs), length), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def _mask(seqs: Sequence[Sequence[int]], length: int) -> Tensor:
    out = torch.zeros((len(seqs), length), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = 1
    return out


class SFTCollator:
    """Right-pads ``input_ids`` with ``pad_token_id`` and ``labels`` with -100."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        ids = [e["input_ids"] for e in examples]
        length = max(len(s) for s in ids)
        return {
            "input_ids": _pad(ids, self.pad_token_id, length),
            "attention_mask": _mask(ids, length),
            "labels": _pad([e["labels"] for e in examples], IGNORE_INDEX, length),
        }


class PreferenceCollator:
    """Pads chosen AND rejected to one common length so they can be concatenated.

    Also returns ``confidence`` as a float tensor of shape (batch,), NaN where missing.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        length = max(max(len(e["chosen_input_ids"]), len(e["rejected_input_ids"])) for e in examples)
        batch: dict[str, Tensor] = {}
        for side in ("chosen", "rejected"):
            ids = [e[f"{side}_input_ids"] for e in examples]
            batch[f"{side}_input_ids"] = _pad(ids, self.pad_token_id, length)
            batch[f"{side}_attention_mask"] = _mask(ids, length)
            batch[f"{side}_labels"] = _pad([e[f"{side}_labels"] for e in examples], IGNORE_INDEX, length)
        batch["confidence"] = torch.tensor([float(e.get("confidence", math.nan)) for e in examples])
        batch.update(_reference_columns(examples))
        return batch


def _reference_columns(examples: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
    """Precomputed reference log-probs as float32 tensors (the dtype of the live forward's sums),
    when every example has them; a partly filled batch would silently mix precomputed and live
    values."""
    if not all(k in e for e in examples for k in REFERENCE_KEYS):
        return {}
    return {k: torch.tensor([e[k] for e in examples], dtype=torch.float32) for k in REFERENCE_KEYS}


def pack_sequences(
    seqs: Sequence[tuple[Sequence[int], Sequence[int]]], *, capacity: int, pad_token_id: int
) -> dict[str, Tensor]:
    """Pack ``(input_ids, labels)`` sequences into rows of at most ``capacity`` tokens (first fit).

    Padding-free batching: instead of padding every sequence to the longest, sequences sit side
    by side in a row and ``position_ids`` restart at 0 for each one; transformers turns that into
    a block-diagonal causal attention (varlen kernels under flash attention), so no token sees
    another sequence.  Only the tail of each row up to the longest row is padding.

    Returns ``input_ids``, ``labels``, ``position_ids``, ``seq_ids`` (rows, row_len) and
    ``n_seqs``; see ``logps.packed_sequence_logps``.  The first label of every sequence is -100
    (nothing before it in its own sequence predicts it), as in the padded path's shift.
    """
    longest = max(len(ids) for ids, _ in seqs)
    if capacity < longest:
        raise ValueError(f"pack capacity {capacity} is below the longest sequence ({longest} tokens)")
    rows: list[list[int]] = []  # sequence indices per row
    used: list[int] = []
    for i, (ids, _) in enumerate(seqs):
        for r, n in enumerate(used):
            if n + len(ids) <= capacity:
                rows[r].append(i)
                used[r] += len(ids)
                break
        else:
            rows.append([i])
            used.append(len(ids))
    row_len = max(used)
    shape = (len(rows), row_len)
    input_ids = torch.full(shape, pad_token_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    seq_ids = torch.full(shape, -1, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    for r, members in enumerate(rows):
        start = 0
        for i in members:
            ids, labs = seqs[i]
            end = start + len(ids)
            input_ids[r, start:end] = torch.as_tensor(ids, dtype=torch.long)
            labels[r, start:end] = torch.as_tensor(labs, dtype=torch.long)
            labels[r, start] = IGNORE_INDEX
            seq_ids[r, start:end] = i
            position_ids[r, start:end] = torch.arange(len(ids))
            start = end
        # Padding restarts its positions too, so it forms its own block and no real token sees it.
        position_ids[r, start:] = torch.arange(row_len - start)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "seq_ids": seq_ids,
            "n_seqs": torch.tensor(len(seqs))}


class PackedSFTCollator:
    """Packs SFT examples into rows of ``capacity`` tokens (see ``pack_sequences``)."""

    def __init__(self, pad_token_id: int, capacity: int) -> None:
        self.pad_token_id, self.capacity = pad_token_id, capacity

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        seqs = [(e["input_ids"], e["labels"]) for e in examples]
        return pack_sequences(seqs, capacity=self.capacity, pad_token_id=self.pad_token_id)


class PackedPreferenceCollator:
    """Packs chosen and rejected answers of a micro-batch into rows of ``capacity`` tokens.

    Sequence ``i`` is the chosen answer of pair ``i`` and ``n + i`` its rejected one; they are
    placed pair by pair, so the two sides of a pair usually share a row.  ``confidence`` and any
    precomputed reference log-probs come along as in ``PreferenceCollator``.
    """

    def __init__(self, pad_token_id: int, capacity: int) -> None:
        self.pad_token_id, self.capacity = pad_token_id, capacity

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        n = len(examples)
        seqs = [(e[f"{side}_input_ids"], e[f"{side}_labels"]) for side in ("chosen", "rejected") for e in examples]
        order = [j for i in range(n) for j in (i, n + i)]  # chosen_i then rejected_i
        packed = pack_sequences([seqs[j] for j in order], capacity=self.capacity, pad_token_id=self.pad_token_id)
        # Map the placement order back to "chosen 0..n-1, rejected 0..n-1".
        to_index = torch.tensor(order + [-1])  # seq id -1 (padding) stays -1
        packed["seq_ids"] = to_index[packed["seq_ids"]]
        packed["confidence"] = torch.tensor([float(e.get("confidence", math.nan)) for e in examples])
        packed.update(_reference_columns(examples))
        return packed
