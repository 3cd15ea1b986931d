import math

import numpy as np
import pytest

from knowwhen.evaluation import (TemperatureScaler, brier_score, confusion_matrix, expected_calibration_error,
                                 maximum_calibration_error, negative_log_likelihood, novelty_metrics,
                                 oracle_baseline, per_class_accuracy, random_baseline, reliability_bins,
                                 risk_coverage_curve, wilson_interval)


def test_wilson_interval_reproduces_the_deeploc_table():
    n = 4516
    lo, hi = wilson_interval(round(0.963 * n), n)
    assert round(lo * 100, 1) == 95.7 and round(hi * 100, 1) == 96.8


def test_wilson_interval_hand_computed():
    # p = 0.5, n = 10, z = 1.959964: centre 0.5, half = z/(1+z^2/10) * sqrt(0.025 + z^2/400)
    z = 1.959963984540054
    half = z / (1 + z * z / 10) * math.sqrt(0.025 + z * z / 400)
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_ece_hand_computed_with_two_bins():
    # confidences 0.3, 0.4 (bin 1 of 2) and 0.8, 0.9 (bin 2): accuracies 0.5 and 1.0
    probs = np.array([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.9, 0.1]])  # conf 0.7, 0.6, 0.8, 0.9
    y = np.array([0, 1, 1, 0])  # correct, wrong, correct, correct
    # 2 bins: (0, .5] empty; (.5, 1]: conf mean 0.75, acc 0.75 -> ECE 0
    assert expected_calibration_error(probs, y, n_bins=2) == pytest.approx(0.0)
    # 4 bins: (.5,.75]: conf .7,.6 acc .5 -> |.5-.65| = .15 ; (.75,1]: conf .8,.9 acc 1 -> |1-.85| = .15
    assert expected_calibration_error(probs, y, n_bins=4) == pytest.approx(0.5 * 0.15 + 0.5 * 0.15)
    assert maximum_calibration_error(probs, y, n_bins=4) == pytest.approx(0.15)


def test_confidence_of_exactly_one_falls_in_the_last_bin():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    bins = reliability_bins(probs, np.array([0, 0]), n_bins=15)
    assert bins.count[-1] == 2 and bins.count.sum() == 2
    assert expected_calibration_error(probs, np.array([0, 0])) == pytest.approx(0.5)


def test_ece_against_a_direct_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, 500)
    conf, acc = probs.max(1), probs.argmax(1) == y
    ece = 0.0
    for lo, hi in zip(np.linspace(0, 1, 16)[:-1], np.linspace(0, 1, 16)[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(acc[inside].mean() - conf[inside].mean())
    assert expected_calibration_error(probs, y) == pytest.approx(ece)


def test_nll_and_brier_hand_computed():
    probs = np.array([[0.13, 0.87], [0.5, 0.5]])
    y = np.array([0, 1])
    assert negative_log_likelihood(np.log(probs), y) == pytest.approx((-math.log(0.13) - math.log(0.5)) / 2)
    assert brier_score(probs, y) == pytest.approx(((0.87 ** 2 + 0.87 ** 2) + (0.25 + 0.25)) / 2)


def test_nll_of_a_confidently_wrong_image_is_not_capped():
    from scipy.special import logsumexp

    from knowwhen.evaluation import log_softmax

    logits = np.array([[0.0, 86151.0, 3.0], [2.0, 1.0, 0.5]])
    y = np.array([0, 2])
    independent = np.mean(logsumexp(logits, axis=1) - logits[[0, 1], y])   # scipy's logsumexp, by hand
    assert negative_log_likelihood(log_softmax(logits), y) == pytest.approx(independent)
    assert negative_log_likelihood(log_softmax(logits), y) > 40000       # clipped probabilities gave 16.8
    with pytest.raises(ValueError, match="log_probs"):
        negative_log_likelihood(np.array([[0.2, 0.8]]), [0])             # probabilities where logs belong


def test_the_mc_mean_log_probability_is_exact_where_probabilities_underflow():
    from knowwhen.uncertainty import MCSums, measures_from_sums

    log_p = np.array([[[-1000.0, 0.0]], [[-2000.0, 0.0]], [[-1001.0, 0.0]]])   # (T=3, N=1, K=2)
    sums = MCSums.zeros(1, 2).add(np.exp(log_p), log_p)
    exact = np.log(np.exp(-1000.0 - (-1000.0)) + np.exp(-2000.0 + 1000.0) + np.exp(-1001.0 + 1000.0)) - 1000 - np.log(3)
    assert measures_from_sums(sums)["log_probs_mc"][0, 0] == pytest.approx(exact)
    assert measures_from_sums(MCSums.zeros(1, 2).add(np.exp(log_p)))["log_probs_mc"][0, 0] == -np.inf  # from probs


def test_metrics_refuse_logits_where_probabilities_belong():
    with pytest.raises(ValueError, match="not logits"):
        expected_calibration_error(np.array([[2.0, -1.0]]), np.array([0]))


def test_temperature_scaling_recovers_an_overconfident_scale():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(4000, 5)) * 2
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])   # labels drawn from the calibrated model
    ts = TemperatureScaler().fit(true_logits * 3, y)     # a model 3x overconfident
    assert ts.temperature_ == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(np.exp(true_logits * 3) / np.exp(true_logits * 3).sum(1, keepdims=True), y)
    after = expected_calibration_error(ts.transform(true_logits * 3), y)
    assert after < before / 3


def test_auroc_matches_the_mann_whitney_count_and_its_orientation():
    rng = np.random.default_rng(0)
    known, novel = rng.normal(0, 1, 300), rng.normal(1, 1, 200)
    pairs = (novel[:, None] > known[None, :]).mean() + 0.5 * (novel[:, None] == known[None, :]).mean()
    r = novelty_metrics(known, novel)
    assert r.auroc == pytest.approx(pairs)
    assert novelty_metrics(-known, -novel).auroc == pytest.approx(1 - pairs)
    assert novelty_metrics([0.1, 0.2], [0.8, 0.9]).auroc == 1.0


def test_fpr_at_95_tpr_and_aupr_on_a_hand_case():
    known = np.array([0.1, 0.2, 0.3, 0.4])
    novel = np.array([0.35, 0.5, 0.6])
    r = novelty_metrics(known, novel)
    # all novel caught (TPR 1 >= .95) at threshold 0.35: known above it: 0.4 -> FPR 1/4
    assert r.fpr_at_95_tpr == pytest.approx(0.25)
    # precision at each novel hit, ranked 0.6, 0.5, 0.4(k), 0.35: 1, 1, 3/4 -> AP = (1 + 1 + .75) / 3
    assert r.aupr == pytest.approx((1 + 1 + 0.75) / 3)


def test_risk_coverage_hand_case_and_baselines():
    correct = np.array([1, 0, 1, 1])
    scores = np.array([0.1, 0.9, 0.2, 0.5])  # the wrong one is the most uncertain
    rc = risk_coverage_curve(correct, scores)
    np.testing.assert_allclose(rc.accuracy, [1, 1, 1, 0.75])
    assert rc.accuracy_at(0.75) == 1.0 and rc.aurc == pytest.approx(0.25 / 4)
    assert oracle_baseline(correct).aurc == pytest.approx(rc.aurc)
    np.testing.assert_allclose(random_baseline(correct).accuracy, 0.75)


def test_tied_scores_enter_the_curve_at_their_expected_value():
    import itertools

    correct = np.array([1, 0, 1, 1, 0])
    scores = np.array([0.0, 0.0, 0.5, 0.0, 0.9])             # a tied block of three, one of them wrong
    rc = risk_coverage_curve(correct, scores)
    # independent: average the cumulative accuracy over every order of the tied block
    curves = []
    for perm in itertools.permutations([0, 1, 3]):
        order = list(perm) + [2, 4]
        curves.append(np.cumsum(correct[order]) / np.arange(1, 6))
    np.testing.assert_allclose(rc.accuracy, np.mean(curves, axis=0))
    # all scores tied (one MC pass, variation ratio at 0): exactly the random baseline, whatever the file order
    for perm in ([1, 0, 1, 1, 0], [0, 0, 1, 1, 1]):
        np.testing.assert_allclose(risk_coverage_curve(np.array(perm), np.zeros(5)).accuracy,
                                   random_baseline(np.array(perm)).accuracy)


def test_every_row_of_a_selective_table_ranks_the_same_predictions():
    from knowwhen.evaluation.summary import selective_table

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.6, y, (y + 1) % 3)
    pred_mc = np.where(rng.random(300) < 0.8, y, (y + 1) % 3)          # a better classifier than pred
    measures = {"p_max": rng.random(300), "pred": pred, "pred_mc": pred_mc, "entropy_mc": rng.random(300)}
    table, _ = selective_table(measures, y)
    rows = {r["measure"]: r for r in table}
    assert {r["predictions"] for r in table} == {"pred_mc"}
    assert rows["random"]["accuracy_at_90"] == pytest.approx(np.mean(pred_mc == y))


def test_confusion_and_per_class_against_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm

    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    np.testing.assert_array_equal(confusion_matrix(y, p, 4), sk_cm(y, p, labels=range(4)))
    rows = per_class_accuracy(y, p, 5)
    assert [r["images"] for r in rows[:4]] == np.bincount(y, minlength=4).tolist()
    assert math.isnan(rows[4]["accuracy"])
    assert rows[0]["ci_low"] <= rows[0]["accuracy"] <= rows[0]["ci_high"]
