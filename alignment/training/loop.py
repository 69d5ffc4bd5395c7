"""Compact SFT and (r)DPO training loops on top of 🤗 accelerate.

Why our own ~300-line loop instead of TRL's ``DPOTrainer``:

* TRL has no per-pair label-flip rate: its ``robust`` loss takes ONE global
  ``label_smoothing``, while rDPO as used in the paper needs epsilon_i = 1 - confidence_i for
  every pair.  Adding it means overriding ``_compute_loss`` (~330 lines that mix forward
  passes, reference/PEFT branches and a 15-way loss dispatch).
* The loss lives in one readable place (``losses.preference_loss``) and the loop reads top to
  bottom, like the DPO reference implementation the paper modified.
* We need hooks a Celery worker can use: ``on_step`` for progress and ``should_stop`` for
  cancellation, and checkpoints that resume exactly.

What we do take from TRL is its fused LM head (``logps.fused_lm_head``): the part where it is
faster and leaner than a plain loop, so we match its memory instead of re-deriving the kernel.
Where we go past it: the frozen reference's log-probs are computed once before training
(``reference.compute_reference_logps``; TRL does so only on request) and micro-batches are
packed padding-free (``data.pack_sequences``; TRL 1.16 has switched its ``padding_free`` off).
Both keep the micro-batch contents, so steps, resume positions and losses are unchanged.

``accelerate`` still gives devices, mixed precision and multi-GPU (``accelerate launch``).
Gradient accumulation is done by hand (``no_sync`` + dividing by the group size) so the
optimizer-step boundaries are the same in every epoch and after a resume.

Checkpoint layout (``<output_dir>/step-N`` and ``<output_dir>/final``)::

    config.json, model.safetensors, tokenizer files   # save_pretrained: loadable for generation
    accelerate_state/                                  # optimizer, scheduler, RNG (save_state)
    trainer_state.json                                 # step, epoch, position, metrics, config
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import set_seed
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from .config import DPOConfig, SFTConfig, TrainConfig
from .data import (
    REFERENCE_KEYS,
    PackedPreferenceCollator,
    PackedSFTCollator,
    PreferenceCollator,
    SFTCollator,
    SFTDataset,
    TokenizedPairs,
)
from .logps import fused_lm_head, packed_sequence_logps, preference_forward, sequence_logps, supports_packing
from .losses import flip_rate_from_confidence, nll_loss, preference_loss
from .reference import compute_reference_logps

__all__ = ["train_sft", "train_preference", "disable_dropout", "OnStep", "ShouldStop"]

OnStep = Callable[[int, int, dict[str, float]], None]
ShouldStop = Callable[[], bool]

STATE_FILE = "trainer_state.json"


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (as the DPO reference does).

    With dropout, policy and reference log-probs of the same text differ at random, which adds
    noise to the implicit reward margin that the DPO loss is computed from.
    """
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def _pad_id(tokenizer: Any) -> int:
    # GPT-2/Llama tokenizers have no pad token; padding is masked and labelled -100 anyway.
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("tokenizer needs a pad or eos token")
    return int(pad)


def _fresh_accelerator(cfg: TrainConfig) -> Accelerator:
    # accelerate keeps process-wide singletons; reset them (but not the distributed
    # PartialState) so that SFT and then DPO can run in one process with their own settings.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    return Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=1)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def _epoch_loader(dataset: Dataset, collator: Callable, cfg: TrainConfig, epoch: int) -> DataLoader:
    # The order depends only on (seed, epoch), so a resumed run sees the same batches.
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    order = torch.randperm(len(dataset), generator=g).tolist()
    return DataLoader(Subset(dataset, order), batch_size=cfg.batch_size, shuffle=False, collate_fn=collator)


def scaled_warmup(warmup_steps: int, total_steps: int) -> tuple[int, list[str]]:
    """Warm-up actually used, and why it differs from the configured one.

    The reference's 150 warm-up steps assume thousands of steps; on a small dataset (23 steps
    for a default SFT on the dev release) the learning rate would never leave ~lr/150. When the
    warm-up is not shorter than the run, it is scaled to a tenth of the run (at least 1 step).
    """
    if total_steps <= 0 or warmup_steps < total_steps:
        return warmup_steps, []
    scaled = max(1, total_steps // 10)
    return scaled, [
        f"warm-up of {warmup_steps} steps is not shorter than the run ({total_steps} optimizer steps): "
        f"scaled to {scaled} steps so the learning rate reaches its peak"
    ]


class _Trainer:
    """State and mechanics shared by SFT and preference training (one run)."""

    def __init__(
        self,
        *,
        kind: str,
        model: nn.Module,
        tokenizer: Any,
        dataset: Dataset,
        collator: Callable,
        cfg: TrainConfig,
        loss_fn: Callable[[_Trainer, Mapping[str, Tensor]], tuple[Tensor, dict[str, Tensor]]],
        on_step: OnStep | None,
        should_stop: ShouldStop | None,
        validate: Callable[[_Trainer], dict[str, float]] | None = None,
    ) -> None:
        if len(dataset) == 0:
            raise ValueError("no training records")
        self.kind, self.cfg, self.tokenizer = kind, cfg, tokenizer
        self.dataset, self.collator, self.loss_fn = dataset, collator, loss_fn
        self.on_step, self.should_stop, self.validate = on_step, should_stop, validate
        self.accelerator = _fresh_accelerator(cfg)
        set_seed(cfg.seed)
        if cfg.gradient_checkpointing:
            # Non-reentrant: works with inputs that need no grad and inside no_sync.
            # (transformers 5 renamed gradient_checkpointing_enable; the old name warns.)
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        optimizer = _optimizer(model, cfg)
        n_batches = len(self.accelerator.prepare(_epoch_loader(dataset, collator, cfg, 0)))
        self.n_batches = n_batches
        self.steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup_steps, self.warnings = scaled_warmup(cfg.warmup_steps, self.total_steps)
        warmup = self.warmup_steps
        # Reference schedule: linear warm-up to lr, then constant.  Not passed to prepare():
        # accelerate would step it once per process and warm up N times faster on N GPUs.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1))
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.step, self.epoch, self.batches_done = 0, 0, 0
        self.history: list[dict[str, float]] = []
        self.last_metrics: dict[str, float] = {}
        self.last_checkpoint: str | None = None

    # ---- checkpoints -------------------------------------------------------------------
    def save(self, name: str, *, finished: bool) -> str:
        """Write a loadable model + tokenizer and the full resumable state to output_dir/name."""
        acc = self.accelerator
        path = Path(self.cfg.output_dir) / name
        acc.wait_for_everyone()
        state_dict = acc.get_state_dict(self.model)
        if acc.is_main_process:
            path.mkdir(parents=True, exist_ok=True)
            acc.unwrap_model(self.model).save_pretrained(path, state_dict=state_dict)
            self.tokenizer.save_pretrained(path)
        acc.save_state(str(path / "accelerate_state"))
        if acc.is_main_process:
            state = {
                "kind": self.kind,
                "step": self.step,
                "total_steps": self.total_steps,
                "epoch": self.epoch,
                "batches_done": self.batches_done,
                "finished": finished,
                "metrics": self.last_metrics,
                "history": self.history,
                "config": self.cfg.to_dict(),
            }
            (path / STATE_FILE).write_text(json.dumps(state, indent=2))
        acc.wait_for_everyone()
        self.last_checkpoint = str(path)
        return str(path)

    def resume(self, path: str | Path) -> None:
        """Restore weights, optimizer, scheduler, RNG and data position from a checkpoint."""
        path = Path(path)
        state = json.loads((path / STATE_FILE).read_text())
        if state["kind"] != self.kind:
            raise ValueError(f"checkpoint is a {state['kind']} run, not {self.kind}")
        if state["total_steps"] != self.total_steps:
            raise ValueError("checkpoint was made with other data/batch settings (total_steps differ)")
        self.accelerator.load_state(str(path / "accelerate_state"))
        self.step, self.epoch, self.batches_done = state["step"], state["epoch"], state["batches_done"]
        self.history = state["history"]
        self.last_metrics = state["metrics"]

    # ---- the loop ----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg, acc = self.cfg, self.accelerator
        stopped = False
        while self.epoch < cfg.epochs and not stopped:
            loader = acc.prepare(_epoch_loader(self.dataset, self.collator, cfg, self.epoch))
            n_batches = len(loader)
            if self.batches_done:
                loader = acc.skip_first_batches(loader, self.batches_done)
            group: list[dict[str, Tensor]] = []
            for i, batch in enumerate(loader, start=self.batches_done):
                group_start = i - i % cfg.grad_accum
                group_size = min(cfg.grad_accum, n_batches - group_start)
                last_in_group = i == group_start + group_size - 1
                # Skip the gradient all-reduce on all but the last micro-batch of a group.
                ctx = acc.no_sync(self.model) if not last_in_group else contextlib.nullcontext()
                with ctx:
                    loss, metrics = self.loss_fn(self, batch)
                    acc.backward(loss / group_size)
                group.append({k: v.detach().float() for k, v in metrics.items()})
                self.batches_done = i + 1
                if not last_in_group:
                    continue
                grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                self._log(group, grad_norm)
                group = []
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save(f"step-{self.step}", finished=False)
                if self._stop_requested():
                    if self.last_checkpoint != str(Path(cfg.output_dir) / f"step-{self.step}"):
                        self.save(f"step-{self.step}", finished=False)
                    stopped = True
                    break
            if not stopped:
                self.epoch += 1
                self.batches_done = 0
                self._validate()
        if not stopped:
            self.save("final", finished=True)
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "stopped": stopped,
            "checkpoint": self.last_checkpoint,
            "metrics": self.last_metrics,
            "history": self.history,
            "warmup_steps": self.warmup_steps,
            "warnings": self.warnings,
        }

    def _validate(self) -> None:
        """Metrics on the held-out split at the end of an epoch, appended to the history (a row
        with ``valid/...`` keys at the epoch's last step) and kept in the final metrics."""
        if self.validate is None:
            return
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                metrics = self.validate(self)
        finally:
            self.model.train(was_training)
        if not metrics:
            return
        self.history.append({"step": self.step, "epoch": float(self.epoch), **metrics})
        self.last_metrics = {**self.last_metrics, **metrics}
        if self.on_step is not None and self.accelerator.is_main_process:
            self.on_step(self.step, self.total_steps, self.last_metrics)

    def _stop_requested(self) -> bool:
        """Ask ``should_stop`` on the main process only and share the answer with all ranks,
        so every process leaves the loop at the same step (no collective left hanging)."""
        if self.should_stop is None:
            return False
        local = bool(self.should_stop()) if self.accelerator.is_main_process else False
        flag = torch.tensor([1.0 if local else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    def _log(self, group: Sequence[dict[str, Tensor]], grad_norm: Tensor | float | None) -> None:
        keys = group[0].keys()
        local = torch.stack([torch.stack([g[k] for g in group]).mean() for k in keys])
        mean = self.accelerator.reduce(local, reduction="mean")
        metrics = {k: float(v) for k, v in zip(keys, mean.tolist(), strict=True)}
        metrics["grad_norm"] = float(grad_norm) if grad_norm is not None else math.nan
        metrics["lr"] = float(self.scheduler.get_last_lr()[0])
        metrics["epoch"] = self.epoch + self.batches_done / self.n_batches
        self.last_metrics = metrics
        if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
            self.history.append({"step": self.step, **metrics})
            if self.on_step is not None and self.accelerator.is_main_process:
                self.on_step(self.step, self.total_steps, metrics)


def _real_tokens(batch: Mapping[str, Tensor]) -> Tensor:
    """Non-padding input tokens of a padded or packed batch: what throughput should count."""
    if "seq_ids" in batch:
        return (batch["seq_ids"] >= 0).sum().float()
    return sum(v.sum() for k, v in batch.items() if k.endswith("attention_mask")).float()


def _packing(model: nn.Module, cfg: TrainConfig, warnings: list[str]) -> bool:
    if cfg.packing and not supports_packing(model):
        warnings.append(f"{type(model).__name__} does not keep packed sequences apart: padded batches used")
        return False
    return cfg.packing


def _pack_length(cfg: TrainConfig) -> int:
    return cfg.pack_length or 2 * cfg.max_length


def _sft_loss(trainer: _Trainer, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    if "position_ids" in batch:
        logps, n_tokens = packed_sequence_logps(trainer.model, batch)
    else:
        logps, n_tokens = sequence_logps(trainer.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    loss = -logps.sum() / n_tokens.sum().clamp(min=1)  # token-mean NLL over the micro-batch
    return loss, {"loss/train": loss, "tokens/train": n_tokens.sum().float(), "tokens_in/train": _real_tokens(batch)}


def train_sft(
    model: nn.Module,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    cfg: SFTConfig,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume_from: str | Path | None = None,
) -> dict[str, Any]:
    """Supervised fine-tuning on ``{"prompt", "response"}`` records (token-mean NLL).

    Returns ``{"step", "total_steps", "epoch", "stopped", "checkpoint", "metrics", "history"}``.
    ``checkpoint`` is the last directory written (``final`` unless stopped).
    """
    disable_dropout(model)
    dataset = SFTDataset(
        records, tokenizer, max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
        template=cfg.prompt_template,
    )
    warnings: list[str] = []
    pad = _pad_id(tokenizer)
    collator = PackedSFTCollator(pad, _pack_length(cfg)) if _packing(model, cfg, warnings) else SFTCollator(pad)
    with fused_lm_head(model, enabled=cfg.fused_lm_head):
        trainer = _Trainer(
            kind="sft", model=model, tokenizer=tokenizer, dataset=dataset, collator=collator,
            cfg=cfg, loss_fn=_sft_loss, on_step=on_step, should_stop=should_stop,
        )
        trainer.warnings += warnings
        if resume_from is not None:
            trainer.resume(resume_from)
        return trainer.run()


def _preference_loss_fn(reference: nn.Module | None, cfg: DPOConfig, method: str) -> Callable:
    def loss_fn(trainer: _Trainer, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        policy = preference_forward(trainer.model, batch)
        if REFERENCE_KEYS[0] in batch:  # precomputed: no reference forward in this step
            ref = {"chosen_logps": batch[REFERENCE_KEYS[0]], "rejected_logps": batch[REFERENCE_KEYS[1]]}
        else:
            if reference is None:
                raise ValueError("no reference model and no precomputed reference log-probs")
            with torch.no_grad(), trainer.accelerator.autocast():
                ref = preference_forward(reference, batch)
        epsilon = None
        if method == "rdpo":
            epsilon = flip_rate_from_confidence(batch["confidence"], cfg.eps_max)
        losses, chosen_rewards, rejected_rewards = preference_loss(
            policy["chosen_logps"], policy["rejected_logps"], ref["chosen_logps"], ref["rejected_logps"],
            beta=cfg.beta, epsilon=epsilon,
        )
        nll = nll_loss(policy["chosen_logps"], policy["chosen_n_tokens"], reduction=cfg.nll_reduction)
        pref = losses.mean()
        loss = pref + cfg.nll_weight * nll.mean()
        metrics = {
            "loss/train": loss,
            "loss_pref/train": pref,
            "loss_nll/train": nll.mean(),
            "rewards_train/chosen": chosen_rewards.mean(),
            "rewards_train/rejected": rejected_rewards.mean(),
            "rewards_train/margins": (chosen_rewards - rejected_rewards).mean(),
            "rewards_train/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
            "logps_train/chosen": policy["chosen_logps"].detach().mean(),
            "logps_train/rejected": policy["rejected_logps"].detach().mean(),
            "tokens_in/train": _real_tokens(batch),
        }
        if epsilon is not None:
            metrics["epsilon_train/mean"] = epsilon.mean()
        return loss, metrics

    return loss_fn


def _preference_validation(valid: TokenizedPairs, collator: Callable, cfg: DPOConfig) -> Callable:
    """Reward accuracy, mean reward margin and the chosen answers' NLL on the validation pairs.

    Implicit rewards are ``beta (log pi - log ref)`` as in training, without label smoothing or
    flip rates: the numbers say whether the policy ranks held-out chosen answers above rejected
    ones, and whether it still assigns them likelihood (NLL per token).
    """

    def validate(trainer: _Trainer) -> dict[str, float]:
        device = trainer.accelerator.device
        margins, nlls = [], []
        loader = DataLoader(valid, batch_size=cfg.reference_batch_size or 2 * cfg.batch_size, shuffle=False,
                            collate_fn=collator)
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with trainer.accelerator.autocast():
                policy = preference_forward(trainer.model, batch)
            chosen = cfg.beta * (policy["chosen_logps"].float() - batch[REFERENCE_KEYS[0]])
            rejected = cfg.beta * (policy["rejected_logps"].float() - batch[REFERENCE_KEYS[1]])
            margins.append((chosen - rejected).cpu())
            n_tokens = policy["chosen_n_tokens"].float().clamp(min=1)
            nlls.append((-policy["chosen_logps"].float() / n_tokens).cpu())
        margin, nll = torch.cat(margins), torch.cat(nlls)
        return {
            "valid/reward_accuracy": float((margin > 0).float().mean()),
            "valid/reward_margin": float(margin.mean()),
            "valid/nll": float(nll.mean()),
            "valid/pairs": float(len(margin)),
        }

    return validate


def train_preference(
    policy: nn.Module,
    reference: nn.Module | None,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    cfg: DPOConfig,
    *,
    method: str = "dpo",
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume_from: str | Path | None = None,
    valid_records: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """(r)DPO + NLL on preference records (paper 6.1).

    ``valid_records`` (the dataset's validation split) are scored at the end of every epoch:
    reward accuracy, reward margin and NLL of the chosen answers (``valid/...`` in the history
    and the final metrics). Their reference log-probs come with the records or are computed
    once with ``reference`` before training.

    ``reference`` should be the SFT model (a separate copy), not the pretrained base: the
    original rDPO runs used the base model and so measured rewards against the wrong anchor.
    It is frozen (``requires_grad=False``, eval mode) and never stepped.

    With ``cfg.precompute_reference`` the reference log-probs are computed once, before the
    first step (``reference.compute_reference_logps``), and the reference is then moved off the
    accelerator; records that already carry ``reference_chosen_logps``/``reference_rejected_logps``
    (e.g. from the dataset's cache) use those, and ``reference`` may then be None.

    ``method="dpo"`` ignores ``confidence``; ``"rdpo"`` uses epsilon_i = clamp(1 - confidence_i,
    0, eps_max) per pair and refuses records without a confidence.
    Loss = preference loss + ``nll_weight`` x NLL(chosen) (per-token mean by default).
    Returns what ``train_sft`` returns, plus ``reference_precompute_s`` (0 when not computed here).
    """
    if method not in ("dpo", "rdpo"):
        raise ValueError("method must be 'dpo' or 'rdpo'")
    if policy is reference:
        raise ValueError("policy and reference must be separate model objects")
    if method == "rdpo":
        confs = [r.get("confidence") for r in records]
        if any(c is None or not (0.0 <= float(c) <= 1.0) for c in confs):
            raise ValueError("rDPO needs a confidence in [0, 1] for every record; use method='dpo' for explicit labels")
    disable_dropout(policy)
    dataset = TokenizedPairs(
        records, tokenizer, max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
        template=cfg.prompt_template,
    )
    if not cfg.precompute_reference:
        for ex in dataset.examples:  # the live path was asked for: ignore any cached values
            for key in REFERENCE_KEYS:
                ex.pop(key, None)
    if reference is None and not dataset.has_reference_logps:
        raise ValueError("a reference model is needed: the records carry no precomputed reference log-probs")
    if reference is not None:
        disable_dropout(reference)
        reference.eval()
        reference.requires_grad_(False)
    warnings: list[str] = []
    pad = _pad_id(tokenizer)
    packing = _packing(policy, cfg, warnings)
    collator = PackedPreferenceCollator(pad, _pack_length(cfg)) if packing else PreferenceCollator(pad)
    valid = None
    if valid_records:
        valid = TokenizedPairs(valid_records, tokenizer, max_length=cfg.max_length,
                               max_prompt_length=cfg.max_prompt_length, template=cfg.prompt_template)
        if not valid.has_reference_logps and reference is None:
            warnings.append("validation pairs have no reference log-probs and no reference model is loaded: "
                            "no validation metrics")
            valid = None
    models = (policy,) if reference is None else (policy, reference)
    with fused_lm_head(*models, enabled=cfg.fused_lm_head):
        trainer = _Trainer(
            kind=f"preference-{method}", model=policy, tokenizer=tokenizer, dataset=dataset,
            collator=collator, cfg=cfg,
            loss_fn=_preference_loss_fn(reference, cfg, method), on_step=on_step, should_stop=should_stop,
            validate=_preference_validation(valid, collator, cfg) if valid is not None else None,
        )
        trainer.warnings += warnings
        if valid is not None and not valid.has_reference_logps:
            reference.to(trainer.accelerator.device)
            chosen, rejected = compute_reference_logps(
                reference, valid, pad_token_id=pad, batch_size=cfg.reference_batch_size or 2 * cfg.batch_size,
                packing=packing, pack_length=cfg.pack_length, mixed_precision=cfg.mixed_precision,
                device=trainer.accelerator.device,
            )
            valid.set_reference_logps(chosen, rejected)
        precompute_s = 0.0
        if reference is not None and not dataset.has_reference_logps:
            reference.to(trainer.accelerator.device)
            if cfg.precompute_reference:
                started = time.perf_counter()
                chosen, rejected = compute_reference_logps(
                    reference, dataset, pad_token_id=pad, batch_size=cfg.reference_batch_size or 2 * cfg.batch_size,
                    packing=packing, pack_length=cfg.pack_length, mixed_precision=cfg.mixed_precision,
                    device=trainer.accelerator.device,
                )
                dataset.set_reference_logps(chosen, rejected)
                precompute_s = time.perf_counter() - started
                reference.to("cpu")  # not needed any more: its accelerator memory goes to training
        if resume_from is not None:
            trainer.resume(resume_from)
        result = trainer.run()
    result["reference_precompute_s"] = precompute_s
    return result
