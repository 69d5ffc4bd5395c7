import math

import pytest
import torch

from alignment.training.losses import flip_rate_from_confidence, nll_loss, preference_loss


def _logps(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(n, generator=g) * 50 + 1) for _ in range(4)]


def test_rdpo_equals_dpo_at_zero_epsilon():
    pc, pr, rc, rr = _logps()
    dpo, cr, rr_ = preference_loss(pc, pr, rc, rr, beta=0.1)
    rdpo, cr2, rr2 = preference_loss(pc, pr, rc, rr, beta=0.1, epsilon=torch.zeros(6))
    assert torch.allclose(dpo, rdpo)
    assert torch.allclose(cr, cr2) and torch.allclose(rr_, rr2)


def test_rdpo_differs_from_dpo_when_epsilon_positive():
    pc, pr, rc, rr = _logps()
    dpo, _, _ = preference_loss(pc, pr, rc, rr, beta=0.1)
    rdpo, _, _ = preference_loss(pc, pr, rc, rr, beta=0.1, epsilon=0.2)
    assert not torch.allclose(dpo, rdpo)


@pytest.mark.parametrize("epsilon", [None, 0.0, 0.1, 0.3, 0.45, torch.tensor([0.0, 0.2, 0.44])])
def test_zero_margin_gives_ln2(epsilon):
    pc = torch.tensor([-10.0, -20.0, -5.0])
    pr = torch.tensor([-12.0, -7.0, -9.0])
    # reference margin equal to policy margin -> h = 0
    losses, _, _ = preference_loss(pc, pr, pc - 3.0, pr - 3.0, beta=0.1, epsilon=epsilon)
    assert torch.allclose(losses, torch.full((3,), math.log(2.0)), atol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.25, 0.4])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_gradient_at_zero_margin(eps, beta):
    pc = torch.tensor([-10.0], requires_grad=True)
    pr = torch.tensor([-10.0])
    losses, _, _ = preference_loss(pc, pr, torch.tensor([-10.0]), torch.tensor([-10.0]), beta=beta, epsilon=eps)
    losses.sum().backward()
    expected = -beta / 2 / (1 - 2 * eps)
    assert pc.grad.item() == pytest.approx(expected, rel=1e-5)


def test_label_direction_raising_chosen_logp_lowers_loss():
    rc, rr = torch.tensor([-10.0]), torch.tensor([-10.0])
    pr = torch.tensor([-10.0])
    for eps in (None, 0.2):
        low, _, _ = preference_loss(torch.tensor([-10.0]), pr, rc, rr, beta=0.1, epsilon=eps)
        high, _, _ = preference_loss(torch.tensor([-8.0]), pr, rc, rr, beta=0.1, epsilon=eps)
        assert high.item() < low.item()
        # Swapping chosen and rejected must reverse the effect.
        swapped, _, _ = preference_loss(pr, torch.tensor([-8.0]), rr, rc, beta=0.1, epsilon=eps)
        assert swapped.item() > low.item()


def test_rewards_are_beta_times_log_ratio():
    pc, pr, rc, rr = _logps()
    _, cr, rjr = preference_loss(pc, pr, rc, rr, beta=0.3)
    assert torch.allclose(cr, 0.3 * (pc - rc))
    assert torch.allclose(rjr, 0.3 * (pr - rr))
    assert not cr.requires_grad


@pytest.mark.parametrize("bad", [0.5, 0.7, torch.tensor([0.1, 0.5]), -0.1, float("nan")])
def test_bad_epsilon_rejected(bad):
    pc, pr, rc, rr = (torch.zeros(2) for _ in range(4))
    with pytest.raises(ValueError, match="epsilon"):
        preference_loss(pc, pr, rc, rr, beta=0.1, epsilon=bad)


def test_nll_reductions():
    logps = torch.tensor([-20.0, -30.0])
    n = torch.tensor([10, 5])
    assert torch.allclose(nll_loss(logps, n, reduction="mean"), torch.tensor([2.0, 6.0]))
    assert torch.allclose(nll_loss(logps, n, reduction="sum"), torch.tensor([20.0, 30.0]))
    with pytest.raises(ValueError):
        nll_loss(logps, n, reduction="max")


def test_flip_rate_from_confidence():
    conf = torch.tensor([1.0, 0.9, 0.6, 0.5, 0.3])
    eps = flip_rate_from_confidence(conf, eps_max=0.45)
    assert torch.allclose(eps, torch.tensor([0.0, 0.1, 0.4, 0.45, 0.45]))
    assert flip_rate_from_confidence(0.8).item() == pytest.approx(0.2)
    with pytest.raises(ValueError):
        flip_rate_from_confidence(conf, eps_max=0.5)
