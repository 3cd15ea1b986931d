"""A deep ensemble (Lakshminarayanan et al. 2017): M networks of one architecture, trained from different seeds.

`Ensemble(x)` returns the mean of the members' logits, the ensemble's single deterministic output (its softmax
columns and the temperature use it). The members' spread is what the ensemble knows beyond one network: MC
prediction (`knowwhen.uncertainty.ensemble_mc`) treats every pass of every member as one sample.
"""
from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    """M member networks mapping the same inputs to logits; forward returns their mean logits (n, K).

    Example:
        >>> ens = Ensemble([net_a, net_b])  # doctest: +SKIP
        >>> ens(x).shape                    # (n, K): the mean of net_a(x) and net_b(x)
    """

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)
        if not len(self.members):
            raise ValueError("an ensemble needs at least one member")

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(M, n, K): every member's logits."""
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_logits(x).mean(0)
