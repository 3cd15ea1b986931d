import numpy as np
import pytest

from knowwhen.evaluation.calibration import fit_mc_temperature, mc_mean_nll


def _passes(seed=0, n=400, k=4, t=30):
    """Pass logits of a noisy, over-confident model and labels drawn from its noise-free probabilities."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 2, (n, k))
    p = np.exp(base) / np.exp(base).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return 3 * base[None] + rng.normal(0, 1.5, (t, n, k)), y


def test_mc_mean_nll_equals_a_direct_numpy_computation():
    z, y = _passes()
    for tau in (0.5, 1.0, 3.0):
        probs = np.exp(z / tau) / np.exp(z / tau).sum(2, keepdims=True)
        assert mc_mean_nll(z, y, tau) == pytest.approx(-np.log(probs.mean(0)[np.arange(len(y)), y]).mean(), rel=1e-10)


def test_the_fitted_mc_temperature_minimises_the_nll():
    z, y = _passes()
    tau = fit_mc_temperature(z, y)
    assert 1.5 < tau < 6  # the passes are about 3x over-confident
    best = mc_mean_nll(z, y, tau)
    for factor in (0.9, 0.97, 1.03, 1.1):
        assert mc_mean_nll(z, y, tau * factor) > best
