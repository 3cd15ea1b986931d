"""Split conformal prediction sets: classes that hold the true one with probability >= 1 - alpha.

Arrays in, sets out (NumPy; no torch). Given the probabilities of n labelled calibration images that are
exchangeable with the images to predict, a score s(x, k) (high = k fits x badly) and the finite-sample quantile
q = the ceil((n + 1)(1 - alpha))-th smallest calibration score, the set {k : s(x, k) <= q} contains the true
class with probability at least 1 - alpha (and at most 1 - alpha + 1/(n + 1) for continuous scores). It promises
nothing when the new images differ from the calibration images (a new plate, a new microscope).

Scores, for probabilities p (N, K) of any source (the tempered softmax or the MC mean):

| name   | s(x, k)                                                                                  |
|--------|------------------------------------------------------------------------------------------|
| `lac`  | 1 - p_k (Sadinle et al. 2019)                                                            |
| `aps`  | mass of the classes ranked above k, plus U * p_k with U ~ Uniform(0, 1) (Romano et al. 2020) |
| `raps` | aps + lam * max(0, rank_k - k_reg), rank from 1 (Angelopoulos et al. 2021)                |

`aps` and `raps` draw one U per image from a hash of (seed, image key), so a set does not depend on the batch it
is computed in; `randomized=False` uses U = 1 (the cumulative mass including k).

Empty sets. Under `lac` an empty set means that no class reaches probability 1 - q: the model can name no class,
a real signal of doubt. Under randomised `aps` / `raps` an empty set means something else: the top class's score
U * p_top exceeded q, which happens for the *surest* images (p_top near 1) when U is large. So `aps` and `raps`
always keep the most probable class (as RAPS's reference code does, `allow_zero_sets=False`); this only adds
classes, so coverage stays >= 1 - alpha, and their sets are never empty.
Class-conditional ("Mondrian") thresholds fit one quantile per class on that class's calibration images.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("knowwhen")
METHODS = ("lac", "aps", "raps")


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ceil((n + 1)(1 - alpha))-th smallest of n scores; +inf when that rank exceeds n (too few scores
    for this alpha: the set must then hold every class)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    s = np.sort(np.asarray(scores, dtype=np.float64))
    k = math.ceil((len(s) + 1) * (1 - alpha))
    return float(s[k - 1]) if k <= len(s) else math.inf


def uniforms(n: int, seed: int, keys: np.ndarray | None = None, stream: int = 0) -> np.ndarray:
    """(n,) the U of each image for randomised scores: a hash (SplitMix64) of (seed, stream, key) per image (keys
    default to 0..n-1), so that an image keeps its U whatever batch it is in, and millions are drawn at once.
    Calibration (stream 0) and prediction (stream 1) draw apart, so that no test image shares its U with a
    calibration image."""
    keys = np.arange(n) if keys is None else np.asarray(keys)
    with np.errstate(over="ignore"):
        state = _splitmix(_splitmix(np.uint64(seed) ^ _splitmix(np.uint64(stream))) ^ keys.astype(np.uint64))
    return (state >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def string_keys(ids) -> np.ndarray:
    """(n,) uint64 keys of strings (e.g. image ids), the first 8 bytes of their BLAKE2b digest: an image keyed by
    its id draws the same U wherever it sits in a dataset."""
    import hashlib

    return np.array([int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little")
                     for i in ids], dtype=np.uint64)


def _splitmix(x):
    """One step of SplitMix64 (Steele et al. 2014): a bijective 64-bit mix whose outputs pass BigCrush."""
    x = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def class_scores(probs: np.ndarray, method: str, u: np.ndarray | None = None, k_reg: int = 1,
                 lam: float = 0.0) -> np.ndarray:
    """(N, K) the score s(x, k) of every class k for every image (see the module's table).

    Args:
        u: (N,) the uniforms of `aps` / `raps`; None: U = 1 (not randomised).
    """
    p = _check_probs(probs)
    if method not in METHODS:
        raise ValueError(f"method {method!r}: use one of {', '.join(METHODS)}")
    if method == "lac":
        return 1.0 - p
    order = np.argsort(-p, axis=1, kind="stable")                    # classes from the most probable down
    sorted_p = np.take_along_axis(p, order, axis=1)
    above = np.cumsum(sorted_p, axis=1) - sorted_p                     # mass of the classes ranked above
    u = np.ones(len(p)) if u is None else np.asarray(u, dtype=np.float64)
    s_sorted = above + u[:, None] * sorted_p
    if method == "raps":
        rank = np.arange(1, p.shape[1] + 1)[None]
        s_sorted = s_sorted + lam * np.maximum(0, rank - k_reg)
    scores = np.empty_like(s_sorted)
    np.put_along_axis(scores, order, s_sorted, axis=1)
    return scores


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or not np.isfinite(p).all() or (p < -1e-6).any() or not np.allclose(p.sum(1), 1, atol=1e-3):
        raise ValueError(f"probs must be (N, K) rows of probabilities summing to 1, got shape {p.shape}")
    return p


@dataclass
class ConformalClassifier:
    """Fits conformal thresholds on calibration probabilities and turns probabilities into prediction sets.

    Example:
        >>> cp = ConformalClassifier("aps", alpha=0.1).fit(cal_probs, cal_labels)  # doctest: +SKIP
        >>> sets = cp.predict_sets(test_probs)       # (N, K) booleans: class k is in image n's set
    """

    method: str = "aps"
    alpha: float = 0.1
    by_class: bool = False
    k_reg: int = 1
    lam: float = 0.01
    randomized: bool = True
    seed: int = 0
    class_names: tuple[str, ...] | None = None  # for messages only; classes are indices everywhere else

    def fit(self, probs: np.ndarray, y: np.ndarray, keys: np.ndarray | None = None) -> "ConformalClassifier":
        """Thresholds from calibration probabilities (N, K) and labels (N,); `keys` identify the images for
        their uniforms. Sets `threshold_` (one, or (K,) with `by_class`) and `counts_` (calibration images
        per class)."""
        p, y = _check_probs(probs), np.asarray(y, dtype=np.int64)
        s = self._scores(p, keys, stream=0)[np.arange(len(y)), y]
        self.counts_ = np.bincount(y, minlength=p.shape[1])
        if not self.by_class:
            self.threshold_ = conformal_quantile(s, self.alpha)
            return self
        self.threshold_ = np.array([conformal_quantile(s[y == k], self.alpha) for k in range(p.shape[1])])
        self._warn_small_classes()
        return self

    def _warn_small_classes(self) -> None:
        need = math.ceil(1 / self.alpha - 1)
        small = np.flatnonzero(self.counts_ < need)
        if len(small):
            log.warning("classes %s have fewer than %d calibration images, the least alpha=%g needs per class: "
                        "their sets always hold every class (threshold +inf); calibrate on more images or raise "
                        "alpha.", ", ".join(str(self.class_names[k]) if self.class_names else str(k) for k in small),
                        need, self.alpha)

    def _scores(self, p: np.ndarray, keys, stream: int) -> np.ndarray:
        u = uniforms(len(p), self.seed, keys, stream) if self.randomized and self.method != "lac" else None
        return class_scores(p, self.method, u, self.k_reg, self.lam)

    def predict_sets(self, probs: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
        """(N, K) booleans: class k belongs to image n's set. With `by_class`, class k joins when its score is
        within class k's threshold."""
        p = _check_probs(probs)
        s = self._scores(p, keys, stream=1)
        sets = s <= np.broadcast_to(self.threshold_, s.shape[1:])[None]
        if self.method != "lac":  # never empty: an empty randomised set marks a sure image, not a doubtful one
            sets[np.arange(len(p)), np.argsort(-p, axis=1, kind="stable")[:, 0]] = True
        return sets
