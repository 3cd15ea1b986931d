"""Input checks shared by the metrics: shapes, lengths and value ranges, raising ValueError."""
from __future__ import annotations

import numpy as np


def check_probs(probs, name: str = "probs") -> np.ndarray:
    """(N, K) probabilities: finite, in [0, 1], rows summing to 1 (within 1e-3)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"{name} must be (N, K) with N > 0, got shape {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1 + 1e-6:
        raise ValueError(f"{name} must hold probabilities in [0, 1]; pass softmax outputs, not logits")
    if np.abs(p.sum(1) - 1).max() > 1e-3:
        raise ValueError(f"rows of {name} must sum to 1; pass softmax outputs, not logits")
    return p


def check_labels(y_true, n: int, k: int | None = None) -> np.ndarray:
    """(N,) integer class indices in [0, K)."""
    y = np.asarray(y_true)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y_true must have shape ({n},), got {y.shape}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or (k is not None and y.max() >= k)):
        raise ValueError(f"y_true must be class indices in [0, {k}), got values {y.min()}..{y.max()}")
    return y.astype(np.int64)


def check_scores(scores, n: int | None = None, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or (n is not None and len(s) != n):
        raise ValueError(f"{name} must have shape ({n if n is not None else 'N'},), got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite")
    return s
