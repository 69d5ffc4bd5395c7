"""Preference and likelihood losses as pure tensor functions.

Kept apart from the training loop so the maths can be read (and unit-tested) in one place,
as in the DPO reference implementation (eric-mitchell/direct-preference-optimization).

References
----------
DPO:  Rafailov et al. 2023, "Direct Preference Optimization", eq. 7.
rDPO: Chowdhury et al. 2024, "Provably Robust DPO: Aligning Language Models with Noisy
      Feedback", eq. 8 (unbiased loss under a label-flip rate epsilon).
NLL:  Pang et al. 2024, "Iterative Reasoning Preference Optimization" (DPO + NLL on chosen).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["preference_loss", "nll_loss", "flip_rate_from_confidence"]


def _as_epsilon(epsilon: Tensor | float | None, like: Tensor) -> Tensor | None:
    """Return epsilon as a tensor on ``like``'s device/dtype, validated to lie in [0, 0.5)."""
    if epsilon is None:
        return None
    eps = torch.as_tensor(epsilon, dtype=like.dtype, device=like.device)
    if torch.isnan(eps).any():
        raise ValueError("epsilon contains NaN (missing confidence?)")
    if (eps < 0).any():
        raise ValueError("epsilon (label-flip rate) must be >= 0")
    if (eps >= 0.5).any():
        # At 0.5 the labels carry no information and the rDPO normaliser 1/(1-2eps) is infinite;
        # above it the loss would push towards the *rejected* answer.
        raise ValueError("epsilon (label-flip rate) must be < 0.5; clamp it with eps_max")
    return eps


def preference_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    *,
    beta: float,
    epsilon: Tensor | float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """DPO loss, or rDPO loss when a label-flip rate ``epsilon`` is given.

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps : Tensor, shape (batch,)
        Summed log-probabilities of the chosen / rejected responses under the policy.
    reference_chosen_logps, reference_rejected_logps : Tensor, shape (batch,)
        The same under the frozen reference model.
    beta : float
        Inverse temperature of the implicit reward (DPO reference default 0.1).
    epsilon : Tensor of shape (batch,) or float or None
        Probability that each pair's label is flipped.  ``None`` or 0 gives plain DPO.

    Returns
    -------
    losses : Tensor, shape (batch,)
        ``h = (pi_c - pi_r) - (ref_c - ref_r)``;
        DPO:  ``-log sigmoid(beta h)``;
        rDPO: ``((1-eps)(-log sigmoid(beta h)) - eps(-log sigmoid(-beta h))) / (1-2eps)``.
    chosen_rewards, rejected_rewards : Tensor, shape (batch,)
        Implicit rewards ``beta (pi - ref)`` (detached, for logging).
    """
    if beta <= 0:
        raise ValueError("beta must be > 0")
    margin = (policy_chosen_logps - policy_rejected_logps) - (
        reference_chosen_logps - reference_rejected_logps
    )
    logits = beta * margin
    loss_correct = -F.logsigmoid(logits)  # label as given
    eps = _as_epsilon(epsilon, logits)
    if eps is None:
        losses = loss_correct
    else:
        loss_flipped = -F.logsigmoid(-logits)  # label flipped
        # rDPO eq. 8: an unbiased estimate of the clean-label loss under flip rate eps.
        losses = ((1 - eps) * loss_correct - eps * loss_flipped) / (1 - 2 * eps)
    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards


def nll_loss(logps_sum: Tensor, n_tokens: Tensor, *, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of each sequence, shape (batch,).

    ``reduction="mean"`` divides by the number of response tokens (per-token NLL, a few nats),
    which keeps it on the scale of the DPO term (~0.7).  ``"sum"`` is the summed NLL, which
    the original pipeline used and which dwarfed the DPO term (hundreds of nats).
    """
    if reduction == "mean":
        return -logps_sum / n_tokens.clamp(min=1).to(logps_sum.dtype)
    if reduction == "sum":
        return -logps_sum
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def flip_rate_from_confidence(confidence: Tensor | float, eps_max: float = 0.45) -> Tensor:
    """Per-pair label-flip rate ``clamp(1 - confidence, 0, eps_max)``.

    ``confidence`` must be the probability of the *predicted winner* (in [0.5, 1]), not
    P(class 1): with P(class 1) every pair predicted "response 2" would get the maximum flip
    rate.  ``eps_max`` < 0.5 keeps the rDPO normaliser finite for coin-flip pairs.
    """
    if not 0 <= eps_max < 0.5:
        raise ValueError("eps_max must be in [0, 0.5)")
    conf = torch.as_tensor(confidence, dtype=torch.float32)
    if torch.isnan(conf).any():
        raise ValueError("confidence contains NaN; rDPO needs a confidence for every pair")
    return (1 - conf).clamp(min=0.0, max=eps_max)
