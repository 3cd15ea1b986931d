import math

import numpy as np
import pytest

from knowwhen.uncertainty.conformal import ConformalClassifier, class_scores, conformal_quantile, uniforms


def test_the_quantile_is_the_finite_sample_one():
    scores = np.array([0.4, 0.1, 0.3, 0.2])
    assert conformal_quantile(scores, 0.3) == 0.4                     # rank ceil(5 * 0.7) = 4 of 4
    assert np.quantile(scores, 0.7) == pytest.approx(0.31)             # the plain quantile is lower
    lac = class_scores(np.array([[0.65, 0.35]]), "lac")[0]             # scores 0.35 and 0.65
    assert (lac <= 0.4).tolist() == [True, False]                       # the conformal set: {class 0}
    assert (lac <= 0.31).tolist() == [False, False]                     # the plain quantile's: empty
    assert conformal_quantile(scores, 0.1) == math.inf                 # rank 5 of 4: the full set


def test_scores_by_hand():
    p = np.array([[0.2, 0.5, 0.3]])
    np.testing.assert_allclose(class_scores(p, "lac"), [[0.8, 0.5, 0.7]])
    np.testing.assert_allclose(class_scores(p, "aps"), [[1.0, 0.5, 0.8]])           # U = 1: cumulative mass
    np.testing.assert_allclose(class_scores(p, "aps", np.array([0.5])), [[0.9, 0.25, 0.65]])
    np.testing.assert_allclose(class_scores(p, "raps", np.array([0.5]), k_reg=1, lam=0.1), [[1.1, 0.25, 0.75]])


def test_raps_with_no_penalty_is_aps():
    p = np.random.default_rng(0).dirichlet(np.ones(6), size=50)
    u = np.random.default_rng(1).random(50)
    np.testing.assert_array_equal(class_scores(p, "raps", u, k_reg=2, lam=0.0), class_scores(p, "aps", u))


def test_randomised_aps_keeps_the_top_class_so_its_sets_are_never_empty():
    cal = np.tile([0.5, 0.3, 0.2], (19, 1))                            # 19 identical images of class 0
    test = np.tile([0.5, 0.3, 0.2], (200, 1))
    plain = ConformalClassifier("aps", 0.1, randomized=False).fit(cal, np.zeros(19, int))
    randomised = ConformalClassifier("aps", 0.1, randomized=True).fit(cal, np.zeros(19, int))
    assert plain.predict_sets(test).sum(1).tolist() == [1] * 200       # every set is {class 0}
    # U * 0.5 above the threshold would empty the set: the most probable class is kept instead
    u = uniforms(200, 0, stream=1)
    assert (u * 0.5 > randomised.threshold_).any()
    assert randomised.predict_sets(test)[:, 0].all()


def test_only_lac_sets_are_empty_and_coverage_holds(digits_probs):
    p, y = digits_probs
    cal, test = np.arange(0, 450), np.arange(450, len(y))
    for method in ("aps", "raps", "lac"):
        clf = ConformalClassifier(method, 0.1).fit(p[cal], y[cal], cal)
        sets = clf.predict_sets(p[test], test)
        assert sets[np.arange(len(test)), y[test]].mean() >= 0.9 - 3 * np.sqrt(0.1 * 0.9 / len(test))
        if method == "lac":
            assert (sets.sum(1) == 0).any()   # no class reaches 1 - q: the model can name none
        else:
            assert (sets.sum(1) >= 1).all() and sets[np.arange(len(test)), p[test].argmax(1)].all()


def test_uniforms_follow_the_image_not_the_batch():
    keys = np.array([7, 3, 11])
    np.testing.assert_array_equal(uniforms(3, 0, keys)[1], uniforms(1, 0, keys[1:2])[0])
    assert uniforms(1, 0, keys[:1], stream=0)[0] != uniforms(1, 0, keys[:1], stream=1)[0]


@pytest.fixture(scope="module")
def digits_probs():
    """Real probabilities: logistic regression trained on half of scikit-learn's digits, on the other half."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    train, rest = order[:900], order[900:]
    model = LogisticRegression(max_iter=200, C=0.05).fit(x[train] / 16, y[train])
    return model.predict_proba(x[rest] / 16), y[rest]


@pytest.mark.parametrize("method", ["lac", "aps", "raps"])
def test_the_coverage_guarantee_over_200_random_splits(digits_probs, method):
    p, y = digits_probs
    alpha, n_cal = 0.1, 400
    u = np.random.default_rng(5).random(len(y))                        # one U per image, independent
    scores = class_scores(p, method, u, k_reg=1, lam=0.05)
    rng, coverage, per_class = np.random.default_rng(1), [], []
    for _ in range(200):
        order = rng.permutation(len(y))
        cal, test = order[:n_cal], order[n_cal:]
        q = conformal_quantile(scores[cal, y[cal]], alpha)
        coverage.append(np.mean(scores[test, y[test]] <= q))
        qk = np.array([conformal_quantile(scores[cal][y[cal] == k, k], alpha) for k in range(10)])
        per_class.append([np.mean(scores[test][y[test] == k, k] <= qk[k]) for k in range(10)])
    mean, se = np.mean(coverage), np.std(coverage) / np.sqrt(200)
    assert 1 - alpha - 4 * se <= mean <= 1 - alpha + 1 / (n_cal + 1) + 4 * se
    class_mean = np.mean(per_class, axis=0)                             # Mondrian: every class gets its coverage
    assert class_mean.min() >= 1 - alpha - 0.02, class_mean


def test_class_conditional_thresholds_and_the_small_class_warning(digits_probs, caplog):
    import logging

    p, y = digits_probs
    cp = ConformalClassifier("lac", 0.1, by_class=True).fit(p[:300], y[:300])
    assert cp.threshold_.shape == (10,) and np.isfinite(cp.threshold_).all()
    sets = cp.predict_sets(p[300:])
    assert sets.shape == (len(y) - 300, 10)
    few = np.r_[np.flatnonzero(y[:300] != 3), np.flatnonzero(y[:300] == 3)[:4]]   # class 3: 4 images < 9
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        cp = ConformalClassifier("lac", 0.1, by_class=True).fit(p[few], y[few])
    assert "classes 3 have fewer than 9 calibration images" in caplog.text and cp.threshold_[3] == math.inf
    assert cp.predict_sets(p[300:])[:, 3].all()                          # class 3 always in: full coverage


def test_uniforms_are_uniform_and_independent_of_their_neighbours():
    from scipy.stats import kstest

    u = uniforms(20_000, seed=3, stream=1)
    assert kstest(u, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.03
    assert not np.array_equal(u, uniforms(20_000, seed=4, stream=1))


def test_the_small_class_warning_names_the_classes(caplog):
    import logging

    p = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    y = np.array([0] * 25 + [1] * 3 + [2] * 2)
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        ConformalClassifier("lac", 0.1, by_class=True, class_names=("Nucleus", "ER", "Golgi")).fit(p, y)
    assert "classes ER, Golgi have fewer than 9" in caplog.text
