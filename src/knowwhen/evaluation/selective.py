"""Selective prediction: keep the most certain images, reject the rest; accuracy vs fraction rejected."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_scores


@dataclass(frozen=True)
class RiskCoverage:
    """Curve over coverages 1/N, 2/N, ..., 1 (the most certain first).

    Attributes:
        coverage: (N,) fraction of images kept.
        accuracy: (N,) accuracy of the kept images.
        aurc: area under the risk (1 - accuracy) vs coverage curve (mean risk over coverages).
    """

    coverage: np.ndarray
    accuracy: np.ndarray
    aurc: float

    @property
    def rejected(self) -> np.ndarray:
        return 1.0 - self.coverage

    def accuracy_at(self, coverage: float) -> float:
        """Accuracy of the most certain `coverage` fraction of the images."""
        k = max(1, int(np.ceil(coverage * len(self.coverage))))
        return float(self.accuracy[k - 1])


def risk_coverage_curve(correct, scores) -> RiskCoverage:
    """Keep images in order of increasing uncertainty score (higher = more uncertain).

    Images with equal scores cannot be ordered, so a tied block enters the curve at its expected value over
    every order of the block: linearly, each kept image adding the block's accuracy (variation ratio at 0, any
    measure at one MC pass). The input order never matters.
    """
    correct = np.asarray(correct, dtype=np.float64)
    s = check_scores(scores, len(correct))
    order = np.argsort(s, kind="stable")
    s, c = s[order], correct[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])                 # first position of each tied block
    sizes = np.diff(np.r_[starts, len(s)])
    block_correct = np.add.reduceat(c, starts)
    block = np.repeat(np.arange(len(starts)), sizes)                      # the block of each position
    before = np.r_[0.0, np.cumsum(block_correct)[:-1]]                    # correct images in earlier blocks
    taken = np.arange(len(s)) - starts[block] + 1                         # images kept so far from the block
    kept_correct = before[block] + taken * block_correct[block] / sizes[block]
    n = np.arange(1, len(correct) + 1)
    accuracy = kept_correct / n
    return RiskCoverage(n / len(correct), accuracy, float(np.mean(1.0 - accuracy)))


def random_baseline(correct) -> RiskCoverage:
    """Expected curve when rejecting at random: accuracy stays at the overall accuracy."""
    correct = np.asarray(correct, dtype=np.float64)
    n = np.arange(1, len(correct) + 1)
    acc = np.full(len(correct), correct.mean())
    return RiskCoverage(n / len(correct), acc, float(1.0 - correct.mean()))


def oracle_baseline(correct) -> RiskCoverage:
    """Best possible curve: every wrong prediction rejected first."""
    correct = np.asarray(correct, dtype=np.float64)
    return risk_coverage_curve(correct, -correct)
