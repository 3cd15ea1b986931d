"""knowwhen: image classification (and forecasting) that knows when it doesn't know."""
__version__ = "0.1.0"

from .classify import (ConformalOptions, PredictionBatch, PredictOptions, Run, calibrate_run, evaluate_run, load_run,
                       predict, predict_dataset, predict_proba, write_predictions)
from .config import AugmentConfig, DataConfig, ForecastConfig, ModelConfig, OptimConfig, SeriesConfig, TrainConfig
from .data import ImageDataset, dataset_from_arrays, open_dataset
from .data.series import open_series
from .errors import CheckpointError, ConfigError, DataError, KnowwhenError
from .forecast import ForecastRun, evaluate_forecaster, load_forecaster, predict_forecasts
from .models import create_model, list_models, model_summary

__all__ = [
    "AugmentConfig", "CheckpointError", "ConfigError", "DataConfig", "DataError", "ImageDataset",
    "KnowwhenError", "ModelConfig", "OptimConfig", "Run", "TrainConfig", "create_model", "dataset_from_arrays",
    "list_models", "load_run", "model_summary", "open_dataset", "train", "KnowwhenClassifier",
    "PredictOptions", "PredictionBatch", "evaluate_run", "predict", "predict_proba", "predict_dataset",
    "write_predictions", "ForecastConfig", "ForecastRun", "SeriesConfig", "load_forecaster", "open_series",
    "train_forecaster", "predict_forecasts", "evaluate_forecaster", "ConformalOptions", "calibrate_run",
]


def __getattr__(name):
    # Lightning and scikit-learn's estimator machinery take seconds to import: loaded on first use.
    if name in ("train", "KnowwhenClassifier"):
        from . import classify
        return getattr(classify, name)
    if name == "train_forecaster":
        from .forecast import train_forecaster
        return train_forecaster
    raise AttributeError(f"module 'knowwhen' has no attribute {name!r}")
