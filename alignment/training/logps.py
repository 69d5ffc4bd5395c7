"""Sequence log-probabilities for causal language models.

Follows ``_get_batch_logps`` / ``concatenated_forward`` of the DPO reference implementation:
labels of -100 (prompt and padding) are ignored, and chosen + rejected run in one forward pass
so the model sees one batch instead of two (one kernel launch set, one set of activations).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["IGNORE_INDEX", "batch_logps", "concatenated_forward"]

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
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logps, n_tokens = batch_logps(logits, labels)
    return {
        "chosen_logps": logps[:n],
        "rejected_logps": logps[n:],
        "chosen_n_tokens": n_tokens[:n],
        "rejected_n_tokens": n_tokens[n:],
    }
