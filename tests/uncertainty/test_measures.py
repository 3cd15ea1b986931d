import math

import numpy as np
import pytest

from knowwhen.uncertainty import MEASURES, MCSums, measures_from_passes, measures_from_sums, uncertainty_scores


def _random_passes(t=7, n=5, k=4, seed=0):
    logits = np.random.default_rng(seed).normal(size=(t, n, k)) * 2
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_identical_passes_have_no_spread():
    p = np.tile(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])[None], (10, 1, 1))
    m = measures_from_passes(p)
    np.testing.assert_allclose(m["sigma_mc"], 0, atol=1e-12)
    np.testing.assert_allclose(m["mutual_info_mc"], 0, atol=1e-12)
    np.testing.assert_allclose(m["variation_ratio_mc"], 0)
    np.testing.assert_allclose(m["p_max_mc"], [0.7, 0.8])


def test_uniform_passes_have_entropy_ln_k():
    k = 6
    m = measures_from_passes(np.full((4, 3, k), 1 / k))
    np.testing.assert_allclose(m["entropy_mc"], math.log(k))
    np.testing.assert_allclose(m["mutual_info_mc"], 0, atol=1e-12)


def test_hand_worked_two_pass_example():
    # Pass 1 says class 0 for sure, pass 2 class 1: p* = (0.5, 0.5).
    p = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    m = measures_from_passes(p)
    assert m["entropy_mc"][0] == pytest.approx(math.log(2))          # H(p*) = ln 2
    assert m["mutual_info_mc"][0] == pytest.approx(math.log(2))      # each pass has entropy 0
    assert m["sigma_mc"][0] == pytest.approx(math.sqrt(0.25 + 0.25))  # population variance 0.25 per class
    assert m["variation_ratio_mc"][0] == pytest.approx(0.5)
    assert m["p_max_mc"][0] == pytest.approx(0.5)


def test_running_sums_equal_the_full_array_in_any_chunking():
    p = _random_passes(t=9)
    ref = measures_from_passes(p)
    sums = MCSums.zeros(5, 4).add(p[:2]).add(p[2]).add(p[3:])
    got = measures_from_sums(sums)
    for name in MEASURES[1:]:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-10, atol=1e-12)
    assert np.array_equal(got["pred_mc"], ref["pred_mc"])


def test_sigma_matches_numpy_population_std_and_mi_is_non_negative():
    p = _random_passes(t=20, seed=3)
    m = measures_from_sums(MCSums.zeros(5, 4).add(p))
    np.testing.assert_allclose(m["sigma_mc"], np.sqrt((p.std(0, ddof=0) ** 2).sum(1)))
    assert (m["mutual_info_mc"] >= 0).all() and (m["mutual_info_mc"] <= m["entropy_mc"] + 1e-12).all()


def test_scores_are_oriented_higher_is_more_uncertain():
    m = {"p_max": np.array([0.9, 0.4]), "entropy_mc": np.array([0.1, 1.0])}
    assert uncertainty_scores(m, "p_max")[1] > uncertainty_scores(m, "p_max")[0]
    assert uncertainty_scores(m, "entropy_mc")[1] > uncertainty_scores(m, "entropy_mc")[0]


def test_an_empty_conformal_set_scores_as_the_most_uncertain():
    from knowwhen.uncertainty.measures import uncertainty_scores

    doubt = uncertainty_scores({"set_size": np.array([1.0, 0.0, 3.0, 10.0])}, "set_size")
    assert np.argsort(doubt).tolist() == [0, 2, 3, 1]  # {one class} < 3 < every class < {} (no class fits)
    assert np.isfinite(doubt).all()
