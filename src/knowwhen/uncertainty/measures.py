"""Uncertainty measures from MC-dropout passes (NumPy; no torch).

Every measure has one formula, written beside it. For T passes with softmax vectors p_t (over K classes)
and the MC mean p* = mean_t p_t:

| name                 | formula                                                        | uncertain when |
|----------------------|----------------------------------------------------------------|----------------|
| `p_max`              | max_k p_k of the deterministic (dropout off) softmax           | low            |
| `p_max_mc`           | max_k p*_k                                                     | low            |
| `sigma_mc`           | sqrt( sum_k Var_t(p_t,k) ), population variance (divide by T)  | high           |
| `entropy_mc`         | H(p*) = -sum_k p*_k ln p*_k  (predictive entropy, nats)         | high           |
| `mutual_info_mc`     | H(p*) - mean_t H(p_t)  (BALD; epistemic part of the entropy)   | high           |
| `variation_ratio_mc` | 1 - (passes whose argmax is the modal class) / T               | high           |

The measures are computed from running sums (`MCSums`), so that T passes over millions of images need
memory for one batch only; `measures_from_passes` computes the same from a full (T, N, K) array and is
the reference the tests compare with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEASURES = ("p_max", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc")
# Scores in the network's feature space (`knowwhen.uncertainty.features`), higher = more novel.
FEATURE_SCORES = ("energy", "mahalanobis", "rel_mahalanobis", "gauss_density", "knn", "mahalanobis_tie",
                  "own_mahalanobis")
# What evaluations score as doubt, where present: the MC measures, the feature scores, the fused `novelty`
# (`knowwhen.uncertainty.fusion`) and `set_size` (classes in a conformal set).
SCORED_MEASURES = (*MEASURES, *FEATURE_SCORES, "novelty", "set_size")
# Measures for which a higher value means more certain; every other measure: higher = more uncertain.
CONFIDENCE_MEASURES = ("p_max", "p_max_mc")


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """-sum p ln p along `axis`, in nats, with 0 ln 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def vote_counts(probs: np.ndarray) -> np.ndarray:
    """(N, K) number of passes in `probs` (T, N, K) whose argmax is class k."""
    return (probs.argmax(2)[..., None] == np.arange(probs.shape[2])).sum(0)


@dataclass
class MCSums:
    """Running sums over MC passes for N images and K classes.

    Attributes:
        t: number of passes added so far.
        sum_p: (N, K) sum_t p_t.
        sum_p2: (N, K) sum_t p_t ** 2.
        sum_entropy: (N,) sum_t H(p_t).
        votes: (N, K) number of passes whose argmax is k.
        lse_log_p: (N, K) ln sum_t p_t, kept as a log-sum-exp of the passes' log-probabilities, so that ln p*
            stays exact where p* rounds to 0 (the NLL of the MC mean).
    """

    t: int
    sum_p: np.ndarray
    sum_p2: np.ndarray
    sum_entropy: np.ndarray
    votes: np.ndarray
    lse_log_p: np.ndarray

    @classmethod
    def zeros(cls, n: int, k: int) -> "MCSums":
        return cls(0, np.zeros((n, k)), np.zeros((n, k)), np.zeros(n), np.zeros((n, k), dtype=np.int64),
                   np.full((n, k), -np.inf))

    def add(self, probs: np.ndarray, log_probs: np.ndarray | None = None) -> "MCSums":
        """Adds passes `probs` of shape (T, N, K) (or (N, K) for one pass); returns self. Give their
        `log_probs` too (e.g. log_softmax) to keep ln p* exact where a probability underflows."""
        probs = np.asarray(probs, dtype=np.float64)
        probs = probs[None] if probs.ndim == 2 else probs
        if log_probs is None:
            with np.errstate(divide="ignore"):
                log_probs = np.log(probs)
        log_probs = np.asarray(log_probs, dtype=np.float64)
        log_probs = log_probs[None] if log_probs.ndim == 2 else log_probs
        self.lse_log_p = np.logaddexp(self.lse_log_p, np.logaddexp.reduce(log_probs, axis=0))
        self.t += probs.shape[0]
        self.sum_p += probs.sum(0)
        self.sum_p2 += (probs ** 2).sum(0)
        self.sum_entropy += entropy(probs).sum(0)
        self.votes += vote_counts(probs)
        return self


def measures_from_sums(sums: MCSums, deterministic_probs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The MC measures (and `p_max`/`pred` when the deterministic softmax is given), each of shape (N,)."""
    t = sums.t
    p_star = sums.sum_p / t
    variance = np.maximum(sums.sum_p2 / t - p_star ** 2, 0.0)   # population variance per class
    h = entropy(p_star)
    out = {
        "p_max_mc": p_star.max(1),
        "pred_mc": p_star.argmax(1),
        "sigma_mc": np.sqrt(variance.sum(1)),
        "entropy_mc": h,
        "mutual_info_mc": np.maximum(h - sums.sum_entropy / t, 0.0),  # >= 0 up to rounding (Jensen)
        "variation_ratio_mc": 1.0 - sums.votes.max(1) / t,
        "probs_mc": p_star,
        "log_probs_mc": sums.lse_log_p - np.log(t),   # ln p*, exact also where p* underflows
    }
    if deterministic_probs is not None:
        deterministic_probs = np.asarray(deterministic_probs, dtype=np.float64)
        out["p_max"], out["pred"] = deterministic_probs.max(1), deterministic_probs.argmax(1)
    return out


def measures_from_passes(probs: np.ndarray, deterministic_probs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The same measures straight from all passes `probs` (T, N, K): the reference for small sets."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3:
        raise ValueError(f"probs must be (T, N, K), got shape {probs.shape}")
    p_star = probs.mean(0)
    h = entropy(p_star)
    modal = np.array([[(row == k).sum() for k in range(probs.shape[2])] for row in probs.argmax(2).T]).max(1)
    out = {
        "p_max_mc": p_star.max(1), "pred_mc": p_star.argmax(1),
        "sigma_mc": np.sqrt(probs.var(0).sum(1)),
        "entropy_mc": h,
        "mutual_info_mc": h - entropy(probs).mean(0),
        "variation_ratio_mc": 1.0 - modal / probs.shape[0],
        "probs_mc": p_star,
    }
    if deterministic_probs is not None:
        out["p_max"], out["pred"] = np.max(deterministic_probs, 1), np.argmax(deterministic_probs, 1)
    return out


# The doubt score of an empty conformal set: above a set of every class (only LAC sets can be empty, and an empty
# LAC set means that no class is probable enough: the model can name none, which `set_flag` flags too).
EMPTY_SET_DOUBT = 1e6


def uncertainty_scores(measures: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Measure `name` oriented so that higher = more uncertain: confidences are negated, and a `set_size` of 0 (an
    empty set) scores EMPTY_SET_DOUBT, above every non-empty set."""
    values = np.asarray(measures[name], dtype=np.float64)
    if name == "set_size":
        return np.where(values == 0, EMPTY_SET_DOUBT, values)
    return -values if name in CONFIDENCE_MEASURES else values
