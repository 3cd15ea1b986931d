"""Forecast metrics and baselines: arrays in, arrays or numbers out. Missing actuals (NaN) are skipped."""
from __future__ import annotations

import numpy as np


def mae(pred: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error over the finite actuals."""
    ok = np.isfinite(actual)
    return float(np.abs(pred - actual)[ok].mean())


def rmse(pred: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error over the finite actuals."""
    ok = np.isfinite(actual)
    return float(np.sqrt(((pred - actual) ** 2)[ok].mean()))


def coverage(low: np.ndarray, high: np.ndarray, actual: np.ndarray) -> float:
    """Fraction of actuals inside [low, high] (both ends included)."""
    ok = np.isfinite(actual)
    return float(((actual >= low) & (actual <= high))[ok].mean())


def mean_width(low: np.ndarray, high: np.ndarray, actual: np.ndarray | None = None) -> float:
    """Mean of high - low (over the entries with a finite actual, when `actual` is given)."""
    w = high - low
    return float(w[np.isfinite(actual)].mean() if actual is not None else w.mean())


def crps_ensemble(samples: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of `samples` (T, ...) at `actual` (...), elementwise.

    CRPS = E|X - y| - 0.5 E|X - X'| with X, X' drawn from the T samples (the energy form; E|X - X'| averages
    all T^2 pairs, computed in O(T log T) from the sorted samples: sum_ij |x_i - x_j| = 2 sum_i (2i - T - 1) x_(i)).
    For one sample (a point forecast) it is the absolute error. NaN where `actual` is NaN.
    """
    t = samples.shape[0]
    first = np.abs(samples - actual[None]).mean(0)
    ranks = (2 * np.arange(1, t + 1) - t - 1).reshape((t,) + (1,) * (samples.ndim - 1))
    spread = 2 * (ranks * np.sort(samples, axis=0)).sum(0) / t ** 2
    return first - 0.5 * spread


def persistence(values: np.ndarray, first_target: np.ndarray, horizon: int) -> np.ndarray:
    """(n, horizon): every step forecast as the last observed value before the first target."""
    return np.repeat(values[first_target - 1][:, None], horizon, axis=1)


def seasonal_naive(values: np.ndarray, first_target: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(n, horizon): step k forecast as the value one season earlier, from observed values only.

    Step k (0-based) takes values[s + k - season * (k // season + 1)], the latest observed value at the same
    phase of the cycle; NaN where the series does not reach that far back.
    """
    k = np.arange(horizon)
    idx = first_target[:, None] + k[None] - season * (k[None] // season + 1)
    out = values[np.clip(idx, 0, None)].astype(np.float64)
    out[idx < 0] = np.nan
    return out
