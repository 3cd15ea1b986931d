"""knowwhen: image classification (and forecasting) that knows when it doesn't know."""
__version__ = "0.1.0"

from .checkpoint import Run, load_run
from .config import AugmentConfig, DataConfig, ModelConfig, TrainConfig
from .data import ImageDataset, dataset_from_arrays, open_dataset
from .errors import CheckpointError, ConfigError, DataError, KnowwhenError
from .models import create_model, list_models, model_summary
from .sequences.config import ForecastConfig, SeriesConfig
from .sequences.run import ForecastRun, load_forecaster
from .sequences.series import open_series

__all__ = [
    "AugmentConfig", "CheckpointError", "ConfigError", "DataConfig", "DataError", "ImageDataset",
    "KnowwhenError", "ModelConfig", "Run", "TrainConfig", "create_model", "dataset_from_arrays",
    "list_models", "load_run", "model_summary", "open_dataset", "train", "KnowwhenClassifier",
    "predict", "predict_proba", "predict_dataset", "write_predictions",
    "ForecastConfig", "ForecastRun", "SeriesConfig", "load_forecaster", "open_series", "train_forecaster",
    "predict_forecasts", "evaluate_forecaster",
]


def __getattr__(name):
    # Lightning takes seconds to import: load training, prediction and the estimator on first use.
    if name == "train":
        from .training import train
        return train
    if name in ("predict", "predict_proba", "predict_dataset", "write_predictions"):
        from . import prediction
        return getattr(prediction, name)
    if name == "train_forecaster":
        from .sequences.train import train_forecaster
        return train_forecaster
    if name == "predict_forecasts":
        from .sequences.predict import predict_forecasts
        return predict_forecasts
    if name == "evaluate_forecaster":
        from .sequences.evaluate import evaluate_forecaster
        return evaluate_forecaster
    if name == "KnowwhenClassifier":
        from .estimator import KnowwhenClassifier
        return KnowwhenClassifier
    raise AttributeError(f"module 'knowwhen' has no attribute {name!r}")
