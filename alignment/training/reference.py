"""Reference log-probs computed once per dataset, instead of once per training step.

The DPO reference model is frozen, so its summed log-probs of each pair's chosen and rejected
answers are constants of the dataset.  Computing them in a separate no-grad pass (as TRL's
``precompute_ref_log_probs`` does) takes the reference forward out of every training step and
lets training run without the reference in accelerator memory.  The values depend on the pair
texts, the tokenisation settings and the reference weights, which is what ``cache_key`` hashes:
any change there gives a new key and so a recomputation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .data import PackedPreferenceCollator, PreferenceCollator, TokenizedPairs
from .logps import preference_forward, supports_packing

__all__ = ["compute_reference_logps", "reference_fingerprint", "cache_key", "settings_for_key"]

#: Files whose content or identity makes up a checkpoint's weights and tokenisation.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _autocast(device: torch.device, mixed_precision: str) -> contextlib.AbstractContextManager:
    if mixed_precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


def _batches(loader: DataLoader, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    for batch in loader:
        yield {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def compute_reference_logps(
    reference: nn.Module,
    pairs: TokenizedPairs,
    *,
    pad_token_id: int,
    batch_size: int = 16,
    packing: bool = True,
    pack_length: int = 0,
    mixed_precision: str = "no",
    device: torch.device | str | None = None,
) -> tuple[list[float], list[float]]:
    """Summed log-probs of every pair's chosen and rejected answer under the frozen ``reference``.

    Parameters
    ----------
    reference : nn.Module
        The frozen reference (eval mode is set here; no gradients are taken).
    pairs : TokenizedPairs
        The tokenised training pairs, in the order the values are returned.
    batch_size : int
        Pairs per forward pass; with no activations kept for a backward pass it can be larger
        than the training micro-batch.
    packing, pack_length : bool, int
        Pack chosen and rejected answers padding-free (``data.pack_sequences``) when the model
        supports it; ``pack_length`` 0 means twice the longest sequence.
    mixed_precision : {"no", "bf16", "fp16"}
        Autocast mode, the same one the training run uses, so that the values match what a live
        reference forward would give.

    Returns
    -------
    chosen, rejected : list of float, length ``len(pairs)``
    """
    device = torch.device(device) if device is not None else next(reference.parameters()).device
    was_training = reference.training
    reference.eval()
    examples = pairs.examples
    longest = max((max(len(e["chosen_input_ids"]), len(e["rejected_input_ids"])) for e in examples), default=1)
    if packing and supports_packing(reference):
        collator: Any = PackedPreferenceCollator(pad_token_id, max(pack_length, 2 * longest))
    else:
        collator = PreferenceCollator(pad_token_id)
    loader = DataLoader(examples, batch_size=batch_size, shuffle=False, collate_fn=collator)
    chosen: list[float] = []
    rejected: list[float] = []
    try:
        for batch in _batches(loader, device):
            with _autocast(device, mixed_precision):
                out = preference_forward(reference, batch)
            chosen += out["chosen_logps"].float().cpu().tolist()
            rejected += out["rejected_logps"].float().cpu().tolist()
    finally:
        reference.train(was_training)
    return chosen, rejected


def reference_fingerprint(path: str | Path) -> str:
    """A cheap identity of a saved checkpoint: its config and the name, size and mtime of its files.

    Hashing several GB of weights would take longer than some training runs; a checkpoint that
    is rewritten in place changes its files' mtimes, which is what this catches.
    """
    root = Path(path)
    h = hashlib.sha256()
    config = root / "config.json"
    h.update(config.read_bytes() if config.exists() else b"")
    for f in sorted(root.iterdir()) if root.is_dir() else []:
        if f.is_file() and (f.suffix in _WEIGHT_SUFFIXES or f.name.startswith("tokenizer")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cache_key(
    *, dataset: Mapping[str, Any], reference_path: str | Path, fingerprint: str, settings: Mapping[str, Any]
) -> str:
    """Key of one set of reference log-probs: dataset identity and version, reference, settings.

    ``dataset`` names the data (e.g. ``{"id": 3, "version": ...}``), ``settings`` whatever changes
    tokenisation or numerics (``max_length``, ``max_prompt_length``, ``prompt_template``,
    ``mixed_precision``).
    """
    blob = json.dumps(
        {"dataset": dict(dataset), "reference": str(Path(reference_path).resolve()), "fingerprint": fingerprint,
         "settings": dict(settings)},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def settings_for_key(cfg: Any) -> dict[str, Any]:
    """The training settings the reference log-probs depend on."""
    return {k: getattr(cfg, k) for k in ("max_length", "max_prompt_length", "prompt_template", "mixed_precision")}

