"""Whole-evaluation summaries from per-image arrays: accuracy, calibration, novelty, selective tables.

Arrays in, plain dicts and row lists out (ready for JSON and CSV); no torch, no plotting.
Novelty convention: novel images are the positive class and every score is oriented so that higher
means more uncertain (p_max and p_max_mc are negated).
"""
from __future__ import annotations

import numpy as np

from ..uncertainty.measures import SCORED_MEASURES, uncertainty_scores
from .calibration import (brier_score, expected_calibration_error, maximum_calibration_error,
                          log_softmax, negative_log_likelihood, reliability_bins)
from .novelty import novelty_metrics
from .perclass import per_class_accuracy, wilson_interval
from .selective import oracle_baseline, random_baseline, risk_coverage_curve

NOVELTY_CONVENTION = "novel = positive class; higher score = more uncertain (p_max, p_max_mc negated)"
CURVE_POINTS = 201


def present_measures(measures: dict) -> list[str]:
    """The measures of SCORED_MEASURES found in `measures`, in the canonical order."""
    return [m for m in SCORED_MEASURES if m in measures]


def accuracy_summary(correct) -> dict:
    """Accuracy with its Wilson 95% interval."""
    correct = np.asarray(correct, dtype=bool)
    lo, hi = wilson_interval(int(correct.sum()), len(correct))
    return {"accuracy": float(correct.mean()) if len(correct) else float("nan"), "ci_low": lo, "ci_high": hi,
            "images": int(len(correct))}


def calibration_summary(log_probs_by_name: dict[str, np.ndarray], y: np.ndarray, n_bins: int = 15):
    """Per set of (N, K) log-probabilities (e.g. before / after temperature, MC mean): ECE, MCE, NLL, Brier; and
    reliability rows. The NLL comes from the log-probabilities themselves, the rest from their exponentials."""
    summary, rows = {}, []
    for name, log_probs in log_probs_by_name.items():
        probs = np.exp(np.asarray(log_probs, dtype=np.float64))
        summary[name] = {"ece": expected_calibration_error(probs, y, n_bins),
                         "mce": maximum_calibration_error(probs, y, n_bins),
                         "nll": negative_log_likelihood(log_probs, y), "brier": brier_score(probs, y)}
        b = reliability_bins(probs, y, n_bins)
        rows += [{"probs": name, "bin_low": b.edges[i], "bin_high": b.edges[i + 1], "count": int(b.count[i]),
                  "confidence": b.confidence[i], "accuracy": b.accuracy[i]} for i in range(n_bins)]
    return summary, rows


def deterministic_log_probs(logits: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """Log-softmax of the dropout-off logits without and with the temperature: the blocks `softmax_untempered`
    and `softmax_tempered` (what `p_max` and `predict` use when the temperature is applied)."""
    return {"softmax_untempered": log_softmax(logits), "softmax_tempered": log_softmax(logits / temperature)}


def novelty_table(measures: dict, novel: np.ndarray):
    """Known-vs-novel AUROC, AUPR, FPR at 95% TPR per measure; and ROC curve rows (subsampled)."""
    table, roc = [], []
    for name in present_measures(measures):
        scores = uncertainty_scores(measures, name)
        r = novelty_metrics(scores[~novel], scores[novel])
        table.append({"measure": name, "auroc": r.auroc, "aupr": r.aupr, "fpr_at_95_tpr": r.fpr_at_95_tpr})
        keep = np.unique(np.linspace(0, len(r.fpr) - 1, min(len(r.fpr), CURVE_POINTS)).astype(int))
        roc += [{"measure": name, "fpr": r.fpr[i], "tpr": r.tpr[i]} for i in keep]
    return table, roc


def selective_predictions(measures: dict) -> str:
    """Which predictions a selective table ranks: `pred_mc` (the MC mean's argmax) when MC ran, else `pred`."""
    return "pred_mc" if "pred_mc" in measures else "pred"


def selective_table(measures: dict, y: np.ndarray, coverages=(0.9, 0.8)):
    """Per measure (and random / oracle baselines): AURC and accuracy at `coverages`; curve rows.

    Every row ranks the same predictions (`selective_predictions`), so the rows compare measures, not
    classifiers; each row names them in its `predictions` field.
    """
    table, curve = [], []
    predictions = selective_predictions(measures)
    correct = (measures[predictions] == y).astype(float)
    named = [(m, risk_coverage_curve(correct, uncertainty_scores(measures, m))) for m in present_measures(measures)]
    named += [("random", random_baseline(correct)), ("oracle", oracle_baseline(correct))]
    for name, rc in named:
        table.append({"measure": name, "predictions": predictions, "aurc": rc.aurc,
                      **{f"accuracy_at_{int(c * 100)}": rc.accuracy_at(c) for c in coverages}})
        keep = np.unique(np.linspace(0, len(rc.coverage) - 1, min(len(rc.coverage), CURVE_POINTS)).astype(int))
        curve += [{"measure": name, "coverage": rc.coverage[i], "rejected": rc.rejected[i],
                   "accuracy": rc.accuracy[i]} for i in keep]
    return table, curve


def per_class_table(y: np.ndarray, preds: dict[str, np.ndarray], class_names) -> list[dict]:
    """One row per class: images, and accuracy with its Wilson interval for each prediction kind."""
    rows = [{"class": c} for c in class_names]
    for kind, pred in preds.items():
        suffix = "" if kind == "pred" else "_mc"
        for row, r in zip(rows, per_class_accuracy(y, pred, len(class_names))):
            row.update({"images": r["images"], f"accuracy{suffix}": r["accuracy"],
                        f"ci_low{suffix}": r["ci_low"], f"ci_high{suffix}": r["ci_high"]})
    return rows
