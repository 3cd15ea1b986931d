import numpy as np
from scipy.stats import betabinom

from knowwhen.screen.power import call_probability, critical_count, detectable_fraction
from knowwhen.screen.welltest import WellNull, well_p_value


def _simulated_power(f, n, null, alpha, draws=20_000, seed=0):
    """Wells drawn as the alternative says, each tested by its p-value: the fraction called."""
    rng = np.random.default_rng(seed)
    mu, total = f + (1 - f) * null.mu, 1 / null.rho - 1
    k = betabinom.rvs(n, mu * total, (1 - mu) * total, size=draws, random_state=rng)
    p = {v: well_p_value(int(v), n, null) for v in np.unique(k)}
    return np.mean([p[v] <= alpha for v in k])


def test_the_detectable_fraction_has_80_percent_power_by_simulation():
    null = WellNull(0.05, 0.01, 32, "")
    f = detectable_fraction(null, 100, 384, 0.05)
    assert 0.05 < f < 0.6
    alpha = 0.05 / 384
    assert _simulated_power(f, 100, null, alpha) > 0.8 - 0.015          # 20,000 draws: +-0.006 noise
    assert _simulated_power(f - 0.03, 100, null, alpha) < 0.8
    k = critical_count(100, null, alpha)
    assert well_p_value(k, 100, null) <= alpha < well_p_value(k - 1, 100, null)
    assert call_probability(f, 100, null, k) >= 0.8


def test_more_cells_or_less_spread_find_smaller_fractions_and_too_few_cells_find_none():
    spread, tight = WellNull(0.05, 0.02, 32, ""), WellNull(0.05, 1e-6, 32, "")
    assert detectable_fraction(spread, 400, 384, 0.05) < detectable_fraction(spread, 50, 384, 0.05)
    assert detectable_fraction(tight, 100, 384, 0.05) < detectable_fraction(spread, 100, 384, 0.05)
    assert detectable_fraction(WellNull(0.3, 0.2, 32, ""), 3, 384, 0.05) is None
