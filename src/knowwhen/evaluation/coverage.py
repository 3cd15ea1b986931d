"""How prediction sets did: coverage (with its Wilson interval), set sizes, empty sets, per class and per size.

Arrays in, numbers out: `sets` (N, K) booleans (class k is in image n's set), `y` (N,) true classes.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_labels
from .perclass import wilson_interval


def _checked(sets, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sets = np.asarray(sets, dtype=bool)
    if sets.ndim != 2:
        raise ValueError(f"sets must be (N, K) booleans, got shape {sets.shape}")
    y = check_labels(y, len(sets), sets.shape[1])
    return sets, y, sets[np.arange(len(y)), y]


def set_coverage(sets, y) -> float:
    """Fraction of images whose set holds their true class."""
    return float(_checked(sets, y)[2].mean())


def conformal_summary(sets, y, alpha: float) -> dict:
    """Coverage against the target 1 - alpha with its Wilson 95% interval, mean / median set size, the rate of
    empty sets, coverage by set size and per class (NaN for a class without images)."""
    sets, y, hit = _checked(sets, y)
    sizes = sets.sum(1)
    lo, hi = wilson_interval(int(hit.sum()), len(hit))
    by_size = {int(k): {"images": int((sizes == k).sum()), "coverage": float(hit[sizes == k].mean())}
               for k in np.unique(sizes)}
    per_class = [float(hit[y == k].mean()) if (y == k).any() else float("nan") for k in range(sets.shape[1])]
    return {"alpha": alpha, "target": 1 - alpha, "coverage": float(hit.mean()), "ci_low": lo, "ci_high": hi,
            "mean_size": float(sizes.mean()), "median_size": float(np.median(sizes)),
            "empty_rate": float((sizes == 0).mean()), "by_size": by_size, "per_class": per_class}


def per_class_coverage(sets, y) -> list[dict]:
    """Per class (index k): images, coverage with its Wilson 95% interval, mean set size (NaN without images)."""
    sets, y, hit = _checked(sets, y)
    sizes, rows = sets.sum(1), []
    for k in range(sets.shape[1]):
        mine = y == k
        lo, hi = wilson_interval(int(hit[mine].sum()), int(mine.sum()))
        rows.append({"images": int(mine.sum()), "coverage": float(hit[mine].mean()) if mine.any() else float("nan"),
                     "ci_low": lo, "ci_high": hi,
                     "mean_size": float(sizes[mine].mean()) if mine.any() else float("nan")})
    return rows
