"""Evaluation metrics: arrays in, numbers out (NumPy and scikit-learn; no torch)."""
from .calibration import (ReliabilityBins, TemperatureScaler, brier_score, expected_calibration_error,
                          log_softmax, maximum_calibration_error, negative_log_likelihood, reliability_bins,
                          softmax)
from .coverage import conformal_summary, set_coverage
from .novelty import NoveltyResult, novelty_metrics
from .perclass import confusion_matrix, per_class_accuracy, wilson_interval
from .selective import RiskCoverage, oracle_baseline, random_baseline, risk_coverage_curve

__all__ = ["NoveltyResult", "ReliabilityBins", "RiskCoverage", "TemperatureScaler", "brier_score",
           "confusion_matrix", "expected_calibration_error", "log_softmax", "maximum_calibration_error",
           "negative_log_likelihood", "novelty_metrics", "oracle_baseline", "per_class_accuracy",
           "random_baseline", "reliability_bins", "risk_coverage_curve", "softmax", "wilson_interval",
           "conformal_summary", "set_coverage"]
