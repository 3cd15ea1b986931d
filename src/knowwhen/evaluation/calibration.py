"""Calibration: ECE, MCE, reliability bins, NLL, Brier; temperature scaling fitted on logits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_labels, check_probs


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width confidence bins over [0, 1]; bin b holds confidences in (edges[b], edges[b+1]],
    the first bin also 0, so a confidence of exactly 1.0 falls in the last bin.

    Attributes:
        edges: (B + 1,) bin edges.
        count: (B,) images per bin.
        confidence: (B,) mean confidence per bin (NaN where empty).
        accuracy: (B,) accuracy per bin (NaN where empty).
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


def reliability_bins(probs, y_true, n_bins: int = 15) -> ReliabilityBins:
    """Confidence (max probability) vs accuracy in `n_bins` equal-width bins (Guo et al. 2017)."""
    p = check_probs(probs)
    y = check_labels(y_true, len(p), p.shape[1])
    conf, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins (lo, hi]; clip puts 0.0 into the first bin and 1.0 stays in the last.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(idx, conf, n_bins) / count
        accuracy = np.bincount(idx, correct, n_bins) / count
    return ReliabilityBins(edges, count, confidence, accuracy)


def expected_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """ECE = sum_b (n_b / N) |acc_b - conf_b| over equal-width confidence bins (15 by default)."""
    b = reliability_bins(probs, y_true, n_bins)
    full = b.count > 0
    return float(np.sum(b.count[full] / b.count.sum() * np.abs(b.accuracy[full] - b.confidence[full])))


def maximum_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """MCE = max_b |acc_b - conf_b| over the non-empty bins."""
    b = reliability_bins(probs, y_true, n_bins)
    full = b.count > 0
    return float(np.max(np.abs(b.accuracy[full] - b.confidence[full])))


def negative_log_likelihood(log_probs, y_true) -> float:
    """Mean -ln p(true class), in nats, from (N, K) log-probabilities (e.g. `log_softmax(logits)`).

    Takes log-probabilities, not probabilities: a probability rounded to 0 (or clipped) caps the NLL of a
    confidently wrong image, while its log-probability keeps the true value (logits (0, 1e5): 1e5 nats, not 27.6).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2 or np.isnan(lp).any() or (lp > 1e-6).any():
        raise ValueError(f"log_probs must be an (N, K) array of values <= 0, got shape {lp.shape}")
    y = check_labels(y_true, len(lp), lp.shape[1])
    return float(-np.mean(lp[np.arange(len(y)), y]))


def brier_score(probs, y_true) -> float:
    """Mean over images of sum_k (p_k - 1[k = y])^2 (multi-class Brier score, range [0, 2])."""
    p = check_probs(probs)
    y = check_labels(y_true, len(p), p.shape[1])
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def log_softmax(logits) -> np.ndarray:
    """Row-wise log-softmax of (N, K) logits, in float64: z - logsumexp(z), exact for any logit size."""
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(1, keepdims=True))


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


class TemperatureScaler:
    """One scalar T > 0 dividing the logits, fitted by minimising the NLL on held-out data.

    Takes logits, not probabilities: softmax(logits / T). Example:
        >>> ts = TemperatureScaler().fit(val_logits, val_labels)   # doctest: +SKIP
        >>> calibrated = ts.transform(test_logits)                 # probabilities
    """

    def fit(self, logits, y_true) -> "TemperatureScaler":
        from scipy.optimize import minimize_scalar

        z = _check_logits(logits)
        y = check_labels(y_true, len(z), z.shape[1])

        def nll(log_t: float) -> float:
            zt = z / np.exp(log_t)
            zt = zt - zt.max(1, keepdims=True)
            return float(np.mean(np.log(np.exp(zt).sum(1)) - zt[np.arange(len(y)), y]))

        # NLL is convex in 1/T, so a bounded 1-D search on log T finds the optimum.
        res = minimize_scalar(nll, bounds=(np.log(0.01), np.log(100.0)), method="bounded",
                              options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(res.x))
        return self

    def transform(self, logits) -> np.ndarray:
        """softmax(logits / temperature_) as (N, K) probabilities."""
        return softmax(_check_logits(logits) / self.temperature_)


def _check_logits(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or not np.isfinite(z).all():
        raise ValueError(f"logits must be a finite (N, K) array, got shape {z.shape}")
    return z


def mc_mean_nll(pass_logits, y_true, temperature: float) -> float:
    """NLL (nats) of the MC mean p* = mean_t softmax(z_t / temperature), from pass logits (T, N, K); exact as a
    log-mean-exp of the passes' log-probabilities."""
    from scipy.special import logsumexp

    z = np.asarray(pass_logits, dtype=np.float64) / temperature
    y = check_labels(y_true, z.shape[1], z.shape[2])
    log_p = z - logsumexp(z, axis=2, keepdims=True)                               # (T, N, K)
    log_mean = logsumexp(log_p[:, np.arange(len(y)), y], axis=0) - np.log(z.shape[0])
    return float(-log_mean.mean())


def fit_mc_temperature(pass_logits, y_true) -> float:
    """The temperature tau minimising the NLL of the MC mean of softmax(z_t / tau) over pass logits (T, N, K):
    dividing each pass's logits before averaging (a temperature after averaging cannot undo the averaging's
    under-confidence in the same way). A bounded 1-D search on log tau in [0.01, 100]."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(pass_logits, dtype=np.float64)
    if z.ndim != 3 or not np.isfinite(z).all():
        raise ValueError(f"pass logits must be a finite (T, N, K) array, got shape {z.shape}")
    res = minimize_scalar(lambda log_t: mc_mean_nll(z, y_true, float(np.exp(log_t))),
                          bounds=(np.log(0.01), np.log(100.0)), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))
