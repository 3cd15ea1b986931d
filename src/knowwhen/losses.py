"""Training losses on logits: softmax cross-entropy and the multi-class SVM (hinge) loss."""
from __future__ import annotations

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
