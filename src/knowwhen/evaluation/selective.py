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
    """Keep images in order of increasing uncertainty score (higher = more uncertain); ties keep input order."""
    correct = np.asarray(correct, dtype=np.float64)
    s = check_scores(scores, len(correct))
    order = np.argsort(s, kind="stable")
    kept_correct = np.cumsum(correct[order])
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
