"""Prediction samples of a deep ensemble: every MC-dropout pass of every member (M x T samples), or with no MC
dropout the M members' own outputs (the plain deep ensemble). Every measure of `knowwhen.uncertainty.measures`
takes them as it takes the passes of one network.

Member m's masks come from its own seed (`member_seed`; member 0 keeps the seed itself), so an ensemble of one
member gives exactly the numbers of that network alone. `mc_engine` picks the engine for any model.
"""
from __future__ import annotations

import logging

import torch

from ..models.ensemble import Ensemble
from .mc import MCDropout

log = logging.getLogger("knowwhen")


def member_seed(seed: int, member: int) -> int:
    """The dropout-mask seed of member `member`: `seed` for member 0, a derived one for the others."""
    return seed if member == 0 else (int(seed) * 1_000_003 + 7_919 * member) % 2**62


class EnsembleMC(MCDropout):
    """Samples of an Ensemble: `passes` MC passes per member (0: one dropout-off output per member).

    Attributes:
        passes: samples per input, M x T (or M).
        per_member: T, the MC passes of each member (0 for none).

    Example:
        >>> det, samples = EnsembleMC(ensemble, passes=100).pass_logits(x)  # doctest: +SKIP
        >>> samples.shape                                                 # (M * 100, n, K), member after member
    """

    def __init__(self, model: Ensemble, passes: int = 0, seed: int = 0, engine: str = "auto", chunk: int = 10,
                 temperature: float = 1.0):
        self.model, self.seed, self.engine, self.chunk, self.temperature = model, seed, engine, chunk, temperature
        self.per_member = int(passes or 0)
        self.engines = [MCDropout(m, self.per_member, member_seed(seed, i), engine, chunk)
                        for i, m in enumerate(model.members)] if self.per_member else []
        self.passes = len(model.members) * max(self.per_member, 1)
        how = f"{self.engines[0].engine_} MC engine, {self.per_member} passes each" if self.engines else "no MC dropout"
        self.engine_ = f"ensemble of {len(model.members)} ({how})"
        self._announced = False

    @torch.no_grad()
    def pass_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ensemble's logits (n, K) (the members' mean, dropout off) and the samples' logits (M x T, n, K)."""
        if not self._announced:
            log.info("prediction samples: %s", self.engine_)
            self._announced = True
            for e in self.engines:
                e._announced = True
        self.model.eval()
        if not self.engines:
            z = self.model.member_logits(x)
            return z.mean(0), z
        det, z = zip(*(e.pass_logits(x) for e in self.engines))
        return torch.stack(det).mean(0), torch.cat(z)

    def sample(self, x, forward=None, block=None):
        raise NotImplementedError("ensembles of forecasters are not supported")


def mc_engine(model: torch.nn.Module, passes: int | None, seed: int = 0, engine: str = "auto",
              temperature: float = 1.0) -> MCDropout | None:
    """The sampling engine of `model`: EnsembleMC for an Ensemble (with or without MC passes), MCDropout with
    `passes` passes for a single network, None for a single network without MC dropout."""
    if isinstance(model, Ensemble):
        return EnsembleMC(model, passes or 0, seed, engine, temperature=temperature)
    return MCDropout(model, passes, seed, engine, temperature=temperature) if passes else None


def samples_per_image(model: torch.nn.Module, passes: int | None) -> int:
    """How many prediction samples each image gets: M x T (M without MC) for an Ensemble, T for one network."""
    if isinstance(model, Ensemble):
        return len(model.members) * max(int(passes or 0), 1)
    return int(passes or 0)
