import itertools

import numpy as np
import pytest
from scipy import stats

from knowwhen.forecast import metrics as M


def test_crps_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    samples, actual = rng.normal(size=(7, 3, 2)), rng.normal(size=(3, 2))
    brute = np.empty((3, 2))
    for i, j in itertools.product(range(3), range(2)):
        x = samples[:, i, j]
        brute[i, j] = np.abs(x - actual[i, j]).mean() - 0.5 * np.abs(x[:, None] - x[None]).mean()
    np.testing.assert_allclose(M.crps_ensemble(samples, actual), brute, rtol=1e-12)


def test_crps_of_many_normal_samples_approaches_the_closed_form():
    # CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi)  (Gneiting & Raftery 2007)
    samples = stats.norm.ppf((np.arange(20000) + 0.5) / 20000)[:, None]
    for y in (0.0, 1.3):
        exact = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi)
        assert M.crps_ensemble(samples, np.array([y]))[0] == pytest.approx(exact, abs=1e-4)
    assert M.crps_ensemble(samples, np.array([0.0]))[0] == pytest.approx(0.2337, abs=1e-4)


def test_crps_of_one_sample_is_the_absolute_error():
    np.testing.assert_allclose(M.crps_ensemble(np.array([[2.0, -1.0]]), np.array([5.0, 1.0])), [3.0, 2.0])


def test_errors_coverage_and_width_by_hand():
    pred, actual = np.array([1.0, 2.0, 4.0, 0.0]), np.array([2.0, 2.0, 1.0, np.nan])   # NaN: unknown, skipped
    assert M.mae(pred, actual) == pytest.approx(4 / 3)
    assert M.rmse(pred, actual) == pytest.approx(np.sqrt(10 / 3))
    low, high = np.array([0.0, 2.0, 2.0, 0.0]), np.array([2.0, 3.0, 3.0, 9.0])
    assert M.coverage(low, high, actual) == pytest.approx(2 / 3)   # 2 in [0, 2], 2 in [2, 3], 1 not in [2, 3]
    assert M.mean_width(low, high, actual) == pytest.approx(4 / 3)


def test_baselines_by_hand():
    values = np.arange(10.0) * 10          # 0, 10, ..., 90
    first = np.array([4, 6])
    np.testing.assert_array_equal(M.persistence(values, first, 2), [[30, 30], [50, 50]])
    # season 3, horizon 4: step k uses values[s + k - 3 (k // 3 + 1)]: s=4 -> 1, 2, 3, 1 ; s=6 -> 3, 4, 5, 3
    np.testing.assert_array_equal(M.seasonal_naive(values, first, 4, 3), [[10, 20, 30, 10], [30, 40, 50, 30]])
    assert np.isnan(M.seasonal_naive(values, np.array([1]), 1, 3)[0, 0])   # reaches before the series
