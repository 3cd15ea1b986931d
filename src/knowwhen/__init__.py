"""knowwhen: image classification that knows when it doesn't know."""
__version__ = "0.1.0"

from .checkpoint import Run, load_run
from .config import AugmentConfig, DataConfig, ModelConfig, TrainConfig
from .data import ImageDataset, dataset_from_arrays, open_dataset
from .errors import CheckpointError, ConfigError, DataError, KnowwhenError
from .models import create_model, list_models, model_summary

__all__ = [
    "AugmentConfig", "CheckpointError", "ConfigError", "DataConfig", "DataError", "ImageDataset",
    "KnowwhenError", "ModelConfig", "Run", "TrainConfig", "create_model", "dataset_from_arrays",
    "list_models", "load_run", "model_summary", "open_dataset", "train", "KnowwhenClassifier",
    "predict", "predict_proba", "predict_dataset", "write_predictions",
]


def __getattr__(name):
    # Lightning takes seconds to import: load training, prediction and the estimator on first use.
    if name == "train":
        from .training import train
        return train
    if name in ("predict", "predict_proba", "predict_dataset", "write_predictions"):
        from . import prediction
        return getattr(prediction, name)
    if name == "KnowwhenClassifier":
        from .estimator import KnowwhenClassifier
        return KnowwhenClassifier
    raise AttributeError(f"module 'knowwhen' has no attribute {name!r}")
