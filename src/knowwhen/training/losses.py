"""Training losses on logits: softmax cross-entropy and the multi-class SVM (hinge) loss."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def multiclass_hinge_loss(scores: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean over examples of sum_{j != y} max(0, s_j - s_y + margin) (Weston-Watkins / CS231n SVM loss).

    torch's MultiMarginLoss divides this sum by the number of classes; the course's loss does not.

    Args:
        scores: (N, K) class scores.
        target: (N,) true class indices.
    """
    true = scores.gather(1, target[:, None])                     # (N, 1)
    margins = (scores - true + margin).clamp(min=0)              # (N, K)
    margins = margins.scatter(1, target[:, None], 0.0)           # the true class adds nothing
    return margins.sum(dim=1).mean()


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy in nats."""
    return F.cross_entropy(logits, target)


LOSSES = {"cross_entropy": cross_entropy_loss, "hinge": multiclass_hinge_loss}


# Regression losses (sequences and other real-valued targets); each is the mean over all elements.
def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return ((pred - target) ** 2).mean()


def mae_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return (pred - target).abs().mean()


def huber_loss(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """0.5 e^2 where |e| < delta, else delta (|e| - 0.5 delta): quadratic near 0, linear for outliers."""
    e = (pred - target).abs()
    return torch.where(e < delta, 0.5 * e ** 2, delta * (e - 0.5 * delta)).mean()


def logcosh_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean log(cosh(e)), computed as |e| + log1p(exp(-2|e|)) - log 2 so that large errors do not overflow."""
    e = (pred - target).abs()
    return (e + torch.log1p(torch.exp(-2 * e)) - math.log(2.0)).mean()


REGRESSION_LOSSES = {"mse": mse_loss, "mae": mae_loss, "huber": huber_loss, "logcosh": logcosh_loss}
