"""Sequence log-probabilities for causal language models.

Follows ``_get_batch_logps`` / ``concatenated_forward`` of the DPO reference implementation:
labels of -100 (prompt and padding) are ignored, and chosen + rejected run in one forward pass
so the model sees one batch instead of two (one kernel launch set, one set of activations).

Two ways to get there, same numbers:

* ``batch_logps`` on full logits: plain and obviously right; it is the reference the tests hold
  the fused path to.
* the fused LM head of TRL (``trl.trainer.add_fused_lm_head``, the one its ``DPOTrainer``
  uses): the LM head is applied in tiles and only log-probs come back, so the
  ``(2 x batch, seq_len, vocab)`` logits and their float32 log-softmax are never held.  With a
  150k vocabulary that tensor is larger than the activations of the whole backbone.  We reuse
  TRL's kernel rather than write one (Triton on GPU, chunked torch elsewhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn

__all__ = [
    "IGNORE_INDEX",
    "batch_logps",
    "concatenated_forward",
    "fused_lm_head",
    "packed_concatenated_forward",
    "packed_sequence_logps",
    "preference_forward",
    "sequence_logps",
    "supports_packing",
    "token_logps",
]

IGNORE_INDEX = -100


def batch_logps(logits: Tensor, labels: Tensor, *, average: bool = False) -> tuple[Tensor, Tensor]:
    """Log-probability of the labelled tokens of each sequence.

    Parameters
    ----------
    logits : Tensor, shape (batch, seq_len, vocab)
        Causal-LM logits; position t predicts token t+1, hence the shift below.
    labels : Tensor, shape (batch, seq_len)
        Token ids with -100 where no loss is wanted (prompt, padding).
    average : bool
        Return the per-token mean instead of the sum.

    Returns
    -------
    logps : Tensor, shape (batch,)
    n_tokens : Tensor, shape (batch,)  number of labelled tokens (after the shift).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree")
    labels = labels[:, 1:]
    logits = logits[:, :-1, :]
    mask = labels != IGNORE_INDEX
    safe_labels = labels.masked_fill(~mask, 0)  # gather needs a valid index everywhere
    token_logps = torch.gather(logits.float().log_softmax(-1), 2, safe_labels.unsqueeze(2)).squeeze(2)
    token_logps = token_logps * mask
    n_tokens = mask.sum(-1)
    logps = token_logps.sum(-1)
    if average:
        logps = logps / n_tokens.clamp(min=1)
    return logps, n_tokens


@contextlib.contextmanager
def fused_lm_head(*models: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Let ``models`` take ``fused_lm_head=True`` (see ``sequence_logps``) inside the block.

    TRL patches ``forward`` on the instance with a closure over the original bound method; a
    ``copy.deepcopy`` of a patched model would call the *old* model on the plain path.  So the
    patch lives only as long as a training run and is undone afterwards.
    """
    if not enabled:
        yield
        return
    from trl.trainer import add_fused_lm_head

    saved = []
    try:
        for model in models:
            saved.append((model, model.__dict__.get("forward")))
            add_fused_lm_head(model)
            model._ifllm_fused_lm_head = True
        yield
    finally:
        for model, previous in saved:
            model.__dict__.pop("_ifllm_fused_lm_head", None)
            if previous is None:
                model.__dict__.pop("forward", None)
            else:
                model.forward = previous


def _is_fused(model: nn.Module) -> bool:
    # Wrappers (DDP) forward to the patched module, which carries the flag.
    return bool(getattr(getattr(model, "module", model), "_ifllm_fused_lm_head", False))


def token_logps(model: nn.Module, input_ids: Tensor, labels: Tensor, **model_kwargs: Tensor) -> Tensor:
    """Per-token log-probability of each next-token label, 0 where the label is -100.

    Returns shape ``(rows, seq_len - 1)``: entry ``t`` scores ``labels[:, t + 1]`` from position
    ``t``.  Uses the fused LM head when ``model`` is inside ``fused_lm_head``, full logits otherwise.
    ``model_kwargs`` (``attention_mask`` or ``position_ids``) go to the model unchanged.
    """
    # use_cache=False: a cache would also make transformers ignore packed position_ids.
    if _is_fused(model):
        out = model(input_ids=input_ids, labels=labels, fused_lm_head=True, **model_kwargs)
        return out.log_probs.float()  # 0 where the label is -100
    logits = model(input_ids=input_ids, use_cache=False, **model_kwargs).logits[:, :-1, :]
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    safe = shifted.masked_fill(~mask, 0)
    per_token = torch.gather(logits.float().log_softmax(-1), 2, safe.unsqueeze(2)).squeeze(2)
    return per_token * mask


def sequence_logps(
    model: nn.Module, input_ids: Tensor, attention_mask: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor]:
    """Summed log-probability of the labelled tokens of each (padded) sequence, and their count.

    Uses the fused LM head when ``model`` is inside ``fused_lm_head``, full logits otherwise.
    """
    n_tokens = (labels[:, 1:] != IGNORE_INDEX).sum(-1)
    return token_logps(model, input_ids, labels, attention_mask=attention_mask).sum(-1), n_tokens


def supports_packing(model: nn.Module) -> bool:
    """Whether ``model`` keeps packed sequences apart when given restarting ``position_ids``.

    transformers builds a block-diagonal causal mask from ``position_ids`` (``masking_utils.
    find_packed_sequence_indices``; varlen kernels with flash attention) only in models whose
    backbone makes its mask with ``masking_utils.create_causal_mask``.  Older or remote-code
    models ignore the boundaries and would let one sequence attend to another, so they get
    the padded path.
    """
    import sys

    from transformers import masking_utils

    inner = getattr(model, "module", model)
    backbone = getattr(inner, "base_model", inner)
    module = sys.modules.get(type(backbone).__module__)
    uses_masking_utils = getattr(module, "create_causal_mask", None) is masking_utils.create_causal_mask
    attn = getattr(getattr(inner, "config", None), "_attn_implementation", None)
    return uses_masking_utils and attn in {"sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"}


def packed_sequence_logps(model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Summed log-probability and labelled-token count of every sequence of a packed batch.

    Parameters
    ----------
    batch : Mapping with
        ``input_ids``, ``labels``, ``position_ids`` : Tensor, shape (rows, row_len)
            Several sequences side by side in a row; ``position_ids`` restart at 0 for each one,
            which makes the attention block-diagonal; labels are -100 on prompts, on the first
            token of every sequence (it predicts nothing across a boundary) and on padding.
        ``seq_ids`` : Tensor, shape (rows, row_len)
            Index (0 .. n_seqs-1) of the sequence each token belongs to, -1 on padding.
        ``n_seqs`` : Tensor, shape ()  number of sequences.

    Returns
    -------
    logps, n_tokens : Tensor, shape (n_seqs,)
    """
    per_token = token_logps(model, batch["input_ids"], batch["labels"], position_ids=batch["position_ids"])
    n = int(batch["n_seqs"])
    owner = batch["seq_ids"][:, 1:]  # the sequence of the token being predicted
    labelled = batch["labels"][:, 1:] != IGNORE_INDEX
    index = owner.clamp(min=0).reshape(-1)
    logps = per_token.new_zeros(n).index_add(0, index, (per_token * labelled).reshape(-1))
    n_tokens = torch.zeros(n, dtype=torch.long, device=index.device).index_add(0, index, labelled.reshape(-1).long())
    return logps, n_tokens


def concatenated_forward(model: nn.Module, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Run chosen and rejected sequences through ``model`` in one forward pass.

    ``batch`` must hold ``chosen_input_ids``, ``chosen_attention_mask``, ``chosen_labels`` and
    the same for ``rejected_``; the preference collator pads both to one common length.

    Returns a dict with ``chosen_logps``, ``rejected_logps`` (summed, shape (batch,)) and
    ``chosen_n_tokens``, ``rejected_n_tokens``.
    """
    n = batch["chosen_input_ids"].shape[0]
    if batch["chosen_input_ids"].shape[1] != batch["rejected_input_ids"].shape[1]:
        raise ValueError("chosen and rejected must be padded to the same length")
    input_ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]], dim=0)
    attention_mask = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]], dim=0)
    labels = torch.cat([batch["chosen_labels"], batch["rejected_labels"]], dim=0)
    logps, n_tokens = sequence_logps(model, input_ids, attention_mask, labels)
    return {
        "chosen_logps": logps[:n],
        "rejected_logps": logps[n:],
        "chosen_n_tokens": n_tokens[:n],
        "rejected_n_tokens": n_tokens[n:],
    }


def packed_concatenated_forward(model: nn.Module, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``concatenated_forward`` for a packed batch (``data.PackedPreferenceCollator``).

    Sequences ``0 .. n-1`` are the chosen answers and ``n .. 2n-1`` the rejected ones, so the
    result has the same keys and order as the padded path.
    """
    logps, n_tokens = packed_sequence_logps(model, batch)
    n = logps.shape[0] // 2
    return {
        "chosen_logps": logps[:n],
        "rejected_logps": logps[n:],
        "chosen_n_tokens": n_tokens[:n],
        "rejected_n_tokens": n_tokens[n:],
    }


def preference_forward(model: nn.Module, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Chosen/rejected log-probs of a padded or a packed batch (packed ones carry ``position_ids``)."""
    if "position_ids" in batch:
        return packed_concatenated_forward(model, batch)
    return concatenated_forward(model, batch)
