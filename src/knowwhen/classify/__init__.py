"""Image classification: train, load, predict (streamed, sharded), evaluate, the leave-one-class-out experiment.

Training and the scikit-learn estimator load Lightning / scikit-learn on first use.
"""
from .sets import ConformalOptions, calibrate_run
from .evaluate import EvaluateOptions, evaluate_run
from .predict import PredictionBatch, predict, predict_dataset, predict_proba, run_engine
from .run import Run, load_run
from .write import PredictOptions, write_predictions

__all__ = ["ConformalOptions", "EvaluateOptions", "KnowwhenClassifier", "calibrate_run", "PredictOptions",
           "PredictionBatch", "Run", "evaluate_run", "load_run",
           "novelty_experiment", "predict", "predict_dataset", "predict_proba", "run_engine", "train",
           "write_predictions"]


def __getattr__(name):
    if name == "train":
        from .train_run import train
        return train
    if name == "novelty_experiment":
        from .leave_one_out import novelty_experiment
        return novelty_experiment
    if name == "KnowwhenClassifier":
        from .estimator import KnowwhenClassifier
        return KnowwhenClassifier
    raise AttributeError(f"module 'knowwhen.classify' has no attribute {name!r}")
