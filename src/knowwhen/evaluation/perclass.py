"""Accuracy with Wilson score intervals, per class and overall; the confusion matrix."""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ._checks import check_labels


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n = 0."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Rounding can put a bound just outside [0, 1] (-7e-18 for 0 successes); a proportion cannot be.
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    y = check_labels(y_true, len(np.asarray(y_true)), n_classes)
    p = check_labels(y_pred, len(y), n_classes)
    return np.bincount(y * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(y_true, y_pred, n_classes: int, confidence: float = 0.95) -> list[dict]:
    """For each class: images, correct, accuracy and its Wilson interval (NaN for a class with no images)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    rows = []
    for k in range(n_classes):
        n, c = int(cm[k].sum()), int(cm[k, k])
        lo, hi = wilson_interval(c, n, confidence)
        rows.append({"class": k, "images": n, "correct": c, "accuracy": c / n if n else float("nan"),
                     "ci_low": lo, "ci_high": hi})
    return rows
