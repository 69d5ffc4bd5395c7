"""Training configurations as plain, commented dataclasses.

Defaults follow the DPO reference implementation (eric-mitchell/direct-preference-optimization,
``config/config.yaml``), which the paper says it used (appendix C): beta 0.1, lr 5e-7, RMSprop,
150 warm-up steps, gradient clipping at 10, max_length 512, max_prompt_length 256, one epoch.
The paper's own batch size is not legible in our copy; we keep the reference's effective batch
of 64 as 8 examples x 8 accumulation steps, which fits small GPUs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .data import DEFAULT_PROMPT_TEMPLATE

__all__ = ["TrainConfig", "SFTConfig", "DPOConfig"]


@dataclass
class TrainConfig:
    """Fields shared by SFT and preference training."""

    lr: float = 5e-7  # peak learning rate (DPO reference default)
    optimizer: Literal["rmsprop", "adamw"] = "rmsprop"  # reference uses RMSprop (less memory than Adam)
    warmup_steps: int = 150  # linear warm-up in optimizer steps, then constant (reference schedule)
    max_grad_norm: float = 10.0  # gradient-norm clip (reference default)
    epochs: int = 1  # passes over the training records; the paper trains one epoch
    batch_size: int = 8  # examples per device per micro-batch
    grad_accum: int = 8  # micro-batches per optimizer step (8 x 8 = reference's batch of 64)
    max_length: int = 512  # prompt + response + EOS tokens (reference default)
    max_prompt_length: int = 256  # prompt tokens kept (its end) when the whole does not fit
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE  # must match the one used at generation
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # accelerate autocast mode
    fused_lm_head: bool = True  # log-probs via TRL's tiled LM head: no (batch, seq, vocab) logits held
    packing: bool = True  # padding-free rows (position ids restart per sequence); padded if the model can't
    pack_length: int = 0  # tokens per packed row; 0 = 2 x max_length (a chosen + rejected pair fits)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30 % slower
    seed: int = 0  # seeds data order, init of any new heads, dropout
    output_dir: str = "runs/alignment"  # checkpoints go to <output_dir>/step-N and /final
    save_every: int = 0  # checkpoint every N optimizer steps (0 = only at the end)
    log_every: int = 1  # call on_step every N optimizer steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, stored in every checkpoint's trainer_state.json."""
        return asdict(self)


@dataclass
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on every collected response (paper 6.1)."""

    output_dir: str = "runs/sft"  # where SFT checkpoints go


@dataclass
class DPOConfig(TrainConfig):
    """(r)DPO + NLL on preference pairs (paper 6.1, appendix C)."""

    output_dir: str = "runs/dpo"  # where preference-training checkpoints go
    beta: float = 0.1  # DPO inverse temperature (reference default)
    nll_weight: float = 1.0  # weight of the NLL-on-chosen term; without it DPO lowers both logps
    nll_reduction: Literal["mean", "sum"] = "mean"  # per-token NLL; "sum" dwarfed the DPO term
    eps_max: float = 0.45  # cap on the rDPO flip rate 1 - confidence (must stay < 0.5)
    precompute_reference: bool = True  # reference log-probs in one no-grad pass before training, not every step
    reference_batch_size: int = 0  # pairs per precompute forward; 0 = 2 x batch_size (no activations kept)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with checkpoints


#: Test queries of an evaluation, held out of SFT (the paper's 300, drawn distinct).
N_TEST_QUERIES = 300
#: Defaults of an evaluation run (the admin form shows them; the job fills what a run leaves out).
EVALUATION_DEFAULTS: dict[str, int] = {"n_queries": N_TEST_QUERIES, "seed": 0, "max_new_tokens": 512}


#: Learning rate summed over the optimizer steps (lr × steps) below which a run is reported as too
#: short to move the model. The DPO reference moves its policy with lr 5e-7 over thousands of
#: steps (~1e-3 summed); the dev release's 315 pairs at the form's defaults give 5 steps (2.5e-6
#: summed) and a reward margin of -0.0004 after training: the policy is still the reference.
#: 2.5e-5 is 50 steps at the default lr.
MIN_LR_STEPS = 2.5e-5


def optimizer_steps(n_records: int, *, batch_size: int, grad_accum: int, epochs: int) -> int:
    """Optimizer steps of a run on one process (the loop's count: micro-batches grouped by grad_accum)."""
    micro_batches = -(-max(n_records, 0) // max(batch_size, 1))
    return -(-micro_batches // max(grad_accum, 1)) * max(epochs, 0)


def short_run_warning(n_records: int, *, batch_size: int, grad_accum: int, epochs: int, lr: float) -> str | None:
    """Why a run is too short to move the model (lr × optimizer steps under :data:`MIN_LR_STEPS`),
    or None. Said before the run starts: such a run ends "succeeded" with a policy equal to its
    start, which nothing else on the page would reveal."""
    steps = optimizer_steps(n_records, batch_size=batch_size, grad_accum=grad_accum, epochs=epochs)
    if lr * steps >= MIN_LR_STEPS * (1 - 1e-9):  # 50 x 5e-7 is 2.4999999999999998e-05 in floats
        return None
    need = math.ceil(MIN_LR_STEPS / lr * (1 - 1e-9)) if lr > 0 else math.inf
    return (f"too short to move the model: {n_records} records → {steps} optimizer steps (batch {batch_size} × "
            f"accumulation {grad_accum}, {epochs} epoch(s)) at learning rate {lr:g}, lr × steps = {lr * steps:.2g} "
            f"(below {MIN_LR_STEPS:g}, e.g. {need:.0f} steps at this rate). Raise the learning rate or the epochs, "
            "or lower the batch size or gradient accumulation.")
