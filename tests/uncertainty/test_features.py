"""Feature-space scores and the fused score, each against an independent computation."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.neighbors import NearestNeighbors

from knowwhen.uncertainty.features import FeatureScorer, FeatureStats, feature_tap
from knowwhen.uncertainty.fusion import combined_score, empirical_p_values


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    dims, classes = 4, 3
    centres = rng.normal(0, 3, (classes, dims))
    y = rng.integers(0, classes, 600)
    f = centres[y] + rng.normal(0, 1, (600, dims)) * np.array([1, 2, 0.5, 1])
    stats = FeatureStats(classes, dims)
    for start in range(0, 600, 128):  # batch after batch, as during prediction
        stats.add(f[start:start + 128], y[start:start + 128], np.arange(start, min(600, start + 128)))
    test = rng.normal(0, 4, (20, dims))
    return f, y, stats.scorer(k=5), test


def test_class_statistics_equal_numpy_on_all_the_features(fitted):
    f, y, scorer, _ = fitted
    for k in range(3):
        np.testing.assert_allclose(scorer.means[k], f[y == k].mean(0), atol=1e-10)
    pooled = sum(np.cov(f[y == k].T) * ((y == k).sum() - 1) for k in range(3)) / (len(y) - 3)
    np.testing.assert_allclose(scorer.shared, pooled, atol=1e-10)
    n0 = (y == 0).sum()
    np.testing.assert_allclose(scorer.per_class[0], ((n0 - 1) * np.cov(f[y == 0].T) + 4 * pooled) / (n0 - 1 + 4),
                               atol=1e-10)


def test_mahalanobis_equals_scipy(fitted):
    _, _, scorer, test = fitted
    vi = np.linalg.inv(scorer.shared)
    expected = [min(mahalanobis(t, m, vi) for m in scorer.means) for t in test]
    np.testing.assert_allclose(scorer.scores(test, np.zeros((20, 3)))["mahalanobis"], expected, rtol=1e-5)


def test_rel_mahalanobis_equals_scipy_with_the_background_of_all_training_features(fitted):
    f, y, scorer, test = fitted
    vi = np.linalg.inv(scorer.shared)
    # the background Gaussian from the raw features: their mean, and the pooled within-class covariance plus the
    # frequency-weighted scatter of the class means (the whole set's covariance, with the within part unbiased)
    mean0 = f.mean(0)
    between = sum((y == k).mean() * np.outer(f[y == k].mean(0) - mean0, f[y == k].mean(0) - mean0) for k in range(3))
    vi0 = np.linalg.inv(scorer.shared + between)
    expected = [min(mahalanobis(t, m, vi) ** 2 for m in scorer.means) - mahalanobis(t, mean0, vi0) ** 2 for t in test]
    got = scorer.scores(test, np.zeros((20, 3)))["rel_mahalanobis"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)  # the ridge: 1e-6 of the variance
    total = np.cov(f.T, bias=True)  # within O(classes / images) of the plain covariance of every training feature
    np.testing.assert_allclose(scorer.background()[1], total, rtol=0.02, atol=0.02)


def test_rel_mahalanobis_discounts_a_direction_every_class_shares():
    # classes differ along feature 0 only; feature 1 varies widely and alike in every class. Two images equally
    # far from class 1 by plain Mahalanobis: one out along the shared feature 1, one out along the class axis;
    # the background Gaussian expects the first kind of deviation, so only the second stays novel
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 4000)
    f = np.c_[np.where(y == 0, -2.0, 2.0) + rng.normal(0, 0.5, 4000), rng.normal(0, 3, 4000)]
    scorer = FeatureStats(2, 2).add(f, y).scorer(k=5)
    c1 = scorer.means[1]
    sd = np.sqrt(np.diag(scorer.shared))
    shared_way, class_way = c1 + [0, 2 * sd[1]], c1 + [2 * sd[0], 0]
    s = scorer.scores(np.array([shared_way, class_way]), np.zeros((2, 2)))
    np.testing.assert_allclose(s["mahalanobis"][0], s["mahalanobis"][1], rtol=0.05)
    assert s["rel_mahalanobis"][1] > s["rel_mahalanobis"][0] + 2


def test_gauss_density_equals_a_scipy_mixture(fitted):
    _, _, scorer, test = fitted
    logs = np.stack([np.log(p) + multivariate_normal(m, c).logpdf(test)
                     for m, c, p in zip(scorer.means, scorer.per_class, scorer.priors)])
    np.testing.assert_allclose(scorer.scores(test, np.zeros((20, 3)))["gauss_density"], -logsumexp(logs, 0),
                               rtol=1e-5)


def test_mahalanobis_tie_equals_scipy(fitted):
    _, _, scorer, test = fitted
    vi = np.linalg.inv(scorer.shared)
    d2 = np.sort([[mahalanobis(t, m, vi) ** 2 for m in scorer.means] for t in test], axis=1)
    # a difference of two distances: the ridge (1e-6 of the variance) moves each by ~1e-5 of its size
    np.testing.assert_allclose(scorer.scores(test, np.zeros((20, 3)))["mahalanobis_tie"], d2[:, 0] - d2[:, 1],
                               rtol=0, atol=1e-5 * d2.max())


def test_own_mahalanobis_uses_the_predicted_class_and_its_own_covariance(fitted):
    _, _, scorer, test = fitted
    logits = np.random.default_rng(5).normal(size=(20, 3))
    predicted = logits.argmax(1)
    expected = [mahalanobis(t, scorer.means[c], np.linalg.inv(scorer.per_class[c])) ** 2
                for t, c in zip(test, predicted)]
    np.testing.assert_allclose(scorer.scores(test, logits)["own_mahalanobis"], expected, rtol=1e-5)


def test_own_mahalanobis_of_a_class_without_statistics_takes_the_nearest_class():
    rng = np.random.default_rng(4)
    f, y = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(8, 1, (40, 2))], np.array([0] * 40 + [2] * 40)
    scorer = FeatureStats(3, 2).add(f, y, np.arange(80)).scorer(k=3)   # class 1 has no training images
    x = np.array([[7.5, 8.0], [0.5, 0.0]])
    got = scorer.scores(x, np.array([[0, 5, 0], [0, 5, 0]]))["own_mahalanobis"]  # both predicted as class 1
    nearest = [mahalanobis(x[0], scorer.means[1], np.linalg.inv(scorer.per_class[1])) ** 2,   # row 1 is class 2
               mahalanobis(x[1], scorer.means[0], np.linalg.inv(scorer.per_class[0])) ** 2]
    np.testing.assert_allclose(got, nearest, rtol=1e-5)


def test_knn_equals_scikit_learn_on_normalised_features(fitted):
    f, _, scorer, test = fitted
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    dist, _ = NearestNeighbors(n_neighbors=5).fit(unit(f)).kneighbors(unit(test))
    np.testing.assert_allclose(scorer.scores(test, np.zeros((20, 3)))["knn"], dist[:, -1], atol=1e-5)


def test_energy_is_minus_logsumexp_of_the_logits(fitted):
    *_, scorer, test = fitted
    logits = np.random.default_rng(1).normal(0, 5, (20, 3))
    np.testing.assert_allclose(scorer.scores(test, logits)["energy"], -logsumexp(logits, 1), rtol=1e-10)


def test_the_bank_keeps_only_the_chosen_keys_and_statistics_round_trip(fitted):
    f, y, scorer, test = fitted
    stats = FeatureStats(3, 4, bank_keys=np.array([3, 7, 500]))
    stats.add(f, y, np.arange(600))
    small = stats.scorer(k=2)
    np.testing.assert_array_equal(small.bank, f[[3, 7, 500]].astype(np.float32))
    again = FeatureScorer.from_arrays(scorer.arrays())
    for name, v in scorer.scores(test, np.zeros((20, 3))).items():
        np.testing.assert_array_equal(again.scores(test, np.zeros((20, 3)))[name], v)


def test_gauss_density_is_defined_for_a_class_smaller_than_the_feature_dimension():
    rng = np.random.default_rng(2)
    f, y = rng.normal(size=(53, 8)), np.array([0] * 50 + [1] * 3)
    s = FeatureStats(2, 8).add(f, y, np.arange(53)).scorer(k=3).scores(f[:5], np.zeros((5, 2)))
    assert np.isfinite(s["gauss_density"]).all()


def test_feature_tap_takes_the_input_of_the_last_linear_layer_on_the_first_call():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).eval()
    x = torch.randn(4, 3)
    with feature_tap(net) as tap:
        net(x)
        net(x * 10)  # later calls (MC passes) do not overwrite the dropout-off features
    torch.testing.assert_close(tap["features"], torch.relu(net[0](x)))


def test_p_values_and_fusion_by_hand():
    ref = np.array([0.3, 0.1, 0.4, 0.2])
    # at a reference score: (1 + #{ref >= s}) / (n + 1); between two, linear; below the smallest, 1
    np.testing.assert_allclose(empirical_p_values(ref, [0.05, 0.2, 0.25, 0.35, 0.4]),
                               [5 / 5, 4 / 5, 3.5 / 5, 2.5 / 5, 2 / 5])
    # beyond the largest reference: an exponential tail from its value 2/5, beta = mean excess of the top two, down to
    # the floor 1 / ((n + 1) 100) = 0.002 (0.9 would be 1.8e-5 unbounded)
    np.testing.assert_allclose(empirical_p_values(ref, [0.41, 0.5, 0.9]),
                               [2 / 5 * np.exp(-0.01 / 0.05), 2 / 5 * np.exp(-0.1 / 0.05), 1 / 500])
    # tied reference scores count once as a knot, with all their images: 0.2 holds 3 of 4 scores >= it
    np.testing.assert_allclose(empirical_p_values([0.1, 0.2, 0.2, 0.3], [0.2, 0.25]), [4 / 5, 3 / 5])
    p1, p2 = np.array([0.2, 1.0]), np.array([0.5, 1.0])
    from scipy.stats import combine_pvalues

    expected = [-np.log10(combine_pvalues([a, b], method="fisher").pvalue) for a, b in zip(p1, p2)]
    np.testing.assert_allclose(combined_score([p1, p2], "fisher"), expected, rtol=1e-10)
    np.testing.assert_allclose(combined_score([p1, p2], "min"), -np.log10([0.4, 1.0]))


def test_p_values_are_continuous_and_never_below_the_step_p_value():
    rng = np.random.default_rng(0)
    ref = np.round(rng.normal(size=500), 2)  # many ties
    s = np.sort(rng.uniform(-3, ref.max(), 5000))
    p = empirical_p_values(ref, s)
    step = (1 + (ref[None] >= s[:, None]).sum(1)) / (len(ref) + 1)
    assert (p >= step - 1e-12).all()
    # a score that moves by a float32 rounding step moves its p-value by as little (the step rule jumps a rank)
    nudged = empirical_p_values(ref, s * (1 + 2 ** -23))
    assert np.abs(nudged - p).max() < 1e-4 < 1 / (len(ref) + 1)
    assert np.all(np.diff(p) <= 1e-15)  # monotone: a higher score never gets a larger p


def test_no_family_exceeds_the_tail_bound():
    """Each family's -log10 p is at most log10(n + 1) + TAIL_DECADES, however far a score goes; below that the
    tail still orders the scores."""
    from knowwhen.uncertainty.fusion import TAIL_DECADES

    rng = np.random.default_rng(3)
    ref = rng.normal(size=300)
    far = np.array([4.0, 5.0, 50.0, 1e6, np.finfo(float).max])
    p = empirical_p_values(ref, far)
    bound = np.log10(len(ref) + 1) + TAIL_DECADES
    assert (-np.log10(p) <= bound + 1e-12).all()
    assert -np.log10(p[-1]) == pytest.approx(bound)
    assert p[0] > p[1]  # just beyond the references the tail still ranks


def test_a_union_member_takes_the_smaller_p_value_doubled_and_keeps_the_bound():
    """A family seen two ways ("a|b") is untypical when either view is: min(1, 2 min(p_a, p_b)), by hand; the bound
    on each family's -log10 p holds for it too."""
    from knowwhen.uncertainty.fusion import TAIL_DECADES, fusion_members, member_p_values

    rng = np.random.default_rng(4)
    ref = {"mahalanobis_tie": np.sort(rng.normal(size=200)), "own_mahalanobis": np.sort(rng.normal(size=200))}
    m = {"mahalanobis_tie": np.array([0.0, 3.0, 1e9, -5.0]), "own_mahalanobis": np.array([2.5, 0.0, 1e9, -5.0])}
    got = member_p_values(ref, m, "mahalanobis_tie|own_mahalanobis")
    pa = empirical_p_values(ref["mahalanobis_tie"], m["mahalanobis_tie"])
    pb = empirical_p_values(ref["own_mahalanobis"], m["own_mahalanobis"])
    np.testing.assert_allclose(got, [min(1.0, 2 * min(a, b)) for a, b in zip(pa, pb)])
    assert got[3] == 1.0 and got[0] == pytest.approx(2 * pb[0]) and got[1] == pytest.approx(2 * pa[1])
    assert -np.log10(got[2]) <= np.log10(201) + TAIL_DECADES
    # the family is fused only when a run has both of its scores
    assert fusion_members(["mutual_info_mc", "energy", "mahalanobis_tie", "own_mahalanobis"])[-1] == \
        "mahalanobis_tie|own_mahalanobis"
    assert fusion_members(["p_max", "energy", "mahalanobis_tie"]) == ("p_max", "energy")
