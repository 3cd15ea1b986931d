import logging

import numpy as np
import pytest
from scipy.stats import betabinom, binom

from knowwhen.screen.welltest import WellNull, fit_well_null, plate_null, well_p_value


def _counts(mu, rho, wells=200, seed=0):
    rng = np.random.default_rng(seed)
    n = rng.integers(20, 500, wells)
    total = 1 / rho - 1
    return betabinom.rvs(n, mu * total, (1 - mu) * total, random_state=rng), n


def test_the_fit_recovers_a_known_overdispersion_and_beats_a_brute_force_grid():
    k, n = _counts(0.05, 0.02)
    mu, rho = fit_well_null(k, n)
    assert mu == pytest.approx(0.05, rel=0.15) and rho == pytest.approx(0.02, rel=0.5)
    loglik = lambda m, r: betabinom.logpmf(k, n, m * (1 / r - 1), (1 - m) * (1 / r - 1)).sum()  # noqa: E731
    grid = max(loglik(m, r) for m in np.linspace(0.03, 0.07, 41) for r in np.geomspace(1e-4, 0.1, 61))
    assert loglik(mu, rho) >= grid - 1e-6


def test_binomial_counts_give_no_overdispersion():
    rng = np.random.default_rng(1)
    n = rng.integers(50, 300, 100)
    _, rho = fit_well_null(rng.binomial(n, 0.05), n)
    assert rho < 2e-3


def test_p_values_are_the_upper_tail_by_hand(caplog):
    null = WellNull(0.05, 0.02, 32, "")
    a, b = null.shape
    assert a + b == pytest.approx(49) and a == pytest.approx(0.05 * 49)
    assert well_p_value(10, 100, null) == pytest.approx(betabinom.sf(9, 100, a, b), rel=1e-12)
    assert well_p_value(0, 100, null) == 1.0
    # fewer than 3 control wells: the binomial against fpr, said in a warning
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        fallback = plate_null([1, 2], [40, 50], 0.05, "P7")
    assert fallback.rho == 0 and "plate P7: 2 control well(s)" in caplog.text and "binomial" in caplog.text
    assert well_p_value(10, 100, fallback) == pytest.approx(binom.sf(9, 100, 0.05), rel=1e-12)


def test_overdispersed_controls_make_a_spread_well_less_significant():
    k, n = _counts(0.05, 0.03, wells=32)
    null = plate_null(k, n, 0.05, "P1")
    assert null.rho > 0.005 and "32 control wells" in null.source
    # a well at 12% of 200 cells: a strong binomial hit, an ordinary well under the plates' own spread
    assert well_p_value(24, 200, WellNull(0.05, 0.0, 0, "")) < 1e-3 < well_p_value(24, 200, null)


def test_the_rank_null_is_dersimonian_laird_as_statsmodels_computes_it():
    from statsmodels.stats.meta_analysis import combine_effects

    from knowwhen.screen.welltest import auc_variance, plate_rank_null, well_rank_p_value

    rng = np.random.default_rng(0)
    cells, reference = rng.integers(30, 400, 24), 5000
    auc = 0.5 + rng.normal(0, 0.04, 24)               # wells spread beyond their sampling variance
    null = plate_rank_null(auc, cells, reference, "P1")
    sm = combine_effects(auc, np.array([auc_variance(n, reference) for n in cells]), method_re="dl")
    assert null.tau2 == pytest.approx(sm.tau2, rel=1e-9) and null.mean == pytest.approx(sm.mean_effect_re, rel=1e-9)
    from scipy.stats import norm

    v = null.tau2 + auc_variance(100, reference)
    assert well_rank_p_value(0.7, 100, reference, null) == pytest.approx(norm.sf((0.7 - null.mean) / np.sqrt(v)))
    # no spread beyond sampling: tau^2 is 0 (statsmodels leaves it negative), and fewer than 3 wells: no null
    tight = 0.5 + rng.normal(0, 0.001, 24)
    assert plate_rank_null(tight, cells, reference, "P1").tau2 == 0.0
    assert plate_rank_null(auc[:2], cells[:2], reference, "P1") is None


def test_a_column_constant_in_some_wells_only_is_left_out_of_every_well_row():
    """Before: it was carried for the wells where it was constant only, and wells.csv could not be written."""
    from knowwhen.screen.wells import WellSums, well_table

    sums = WellSums(2, ())
    n = 6
    plate, well = np.array(["P"] * n), np.array(["A01", "A01", "A01", "B01", "B01", "B01"])
    meta = {"Metadata_Site": np.array(["1", "1", "1", "1", "2", "2"]), "Metadata_Drug": np.array(["x"] * 3 + ["y"] * 3)}
    sums.add(plate, well, np.zeros(n, bool), np.zeros(n, np.int64), {}, meta, np.zeros(n, bool), np.zeros(n),
             np.full(n, 10))
    rows, _ = well_table(sums, ["a", "b"], 0.05, 0.05, "Metadata_Plate", "Metadata_Well", "binomial")
    assert [r.get("Metadata_Drug") for r in rows] == ["x", "y"]
    assert all("Metadata_Site" not in r for r in rows)
