"""Known vs novel: AUROC, AUPR and FPR at 95% TPR of an uncertainty score.

AUPR is scikit-learn's average precision (a step sum, not the trapezoid). FPR at 95% TPR is not interpolated:
it is the false-positive rate at the first ROC threshold whose true-positive rate reaches 0.95.

Convention, everywhere in knowwhen: novel images are the positive class, and the score is oriented so
that higher = more uncertain (confidences such as p_max are negated by `uncertainty_scores`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_scores


@dataclass(frozen=True)
class NoveltyResult:
    auroc: float
    aupr: float
    fpr_at_95_tpr: float
    fpr: np.ndarray
    tpr: np.ndarray


def _scores_and_truth(known_scores, novel_scores):
    known, novel = check_scores(known_scores, name="known_scores"), check_scores(novel_scores, name="novel_scores")
    if len(known) == 0 or len(novel) == 0:
        raise ValueError("need at least one known and one novel image")
    return np.concatenate([known, novel]), np.concatenate([np.zeros(len(known)), np.ones(len(novel))])


def novelty_metrics(known_scores, novel_scores) -> NoveltyResult:
    """AUROC and AUPR (novel = positive, higher score = more novel) and FPR at 95% TPR, with the ROC curve."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    scores, truth = _scores_and_truth(known_scores, novel_scores)
    fpr, tpr, _ = roc_curve(truth, scores)
    return NoveltyResult(float(roc_auc_score(truth, scores)), float(average_precision_score(truth, scores)),
                         float(fpr[np.searchsorted(tpr, 0.95, side="left")]), fpr, tpr)
