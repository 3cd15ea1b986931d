import math

import pytest
import torch

from knowwhen.training.losses import huber_loss, logcosh_loss, mae_loss, mse_loss


def test_mse_and_mae_hand_computed():
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 1.0])
    assert mse_loss(pred, target).item() == pytest.approx((0.25 + 0 + 9) / 3)
    assert mae_loss(pred, target).item() == pytest.approx((0.5 + 0 + 3) / 3)


def test_huber_both_branches():
    pred, target = torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0])
    # |e| = 0.5 < delta 1: 0.5 * 0.25 = 0.125 ; |e| = 3 >= 1: 1 * (3 - 0.5) = 2.5
    assert huber_loss(pred, target, delta=1.0).item() == pytest.approx((0.125 + 2.5) / 2)
    # delta 2: 0.125 and 2 * (3 - 1) = 4
    assert huber_loss(pred, target, delta=2.0).item() == pytest.approx((0.125 + 4.0) / 2)
    # agrees with torch's own Huber loss
    assert huber_loss(pred, target, 1.5).item() == pytest.approx(torch.nn.HuberLoss(delta=1.5)(pred, target).item())


def test_logcosh_matches_the_formula_and_stays_finite_for_large_errors():
    e = torch.tensor([0.1, -1.0, 3.0])
    assert logcosh_loss(e, torch.zeros(3)).item() == pytest.approx(
        sum(math.log(math.cosh(v)) for v in e.tolist()) / 3, rel=1e-6)
    big = logcosh_loss(torch.tensor([1000.0, -1000.0]), torch.zeros(2))
    assert math.isfinite(big.item()) and big.item() == pytest.approx(1000 - math.log(2), rel=1e-6)
