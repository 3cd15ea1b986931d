"""knowwhen: image classification (and forecasting) that knows when it doesn't know.

Every public name is imported on first use (PEP 562): `import knowwhen` and the command line's start-up then
cost milliseconds, not the seconds that torch, Lightning and scikit-learn take, until a command needs them.
"""
__version__ = "0.1.0"

_WHERE = {
    "classify": ("ConformalOptions", "EvaluateOptions", "PredictionBatch", "PredictOptions", "Run", "calibrate_run",
                 "evaluate_run", "load_run", "predict", "predict_dataset", "predict_proba", "run_engine",
                 "write_predictions", "train", "KnowwhenClassifier"),
    "config": ("AugmentConfig", "DataConfig", "ForecastConfig", "ModelConfig", "OptimConfig", "SeriesConfig",
               "TrainConfig"),
    "data": ("ImageDataset", "dataset_from_arrays", "open_dataset"),
    "data.series": ("open_series",),
    "errors": ("CheckpointError", "ConfigError", "DataError", "KnowwhenError"),
    "forecast": ("ForecastOptions", "ForecastRun", "evaluate_forecaster", "load_forecaster", "predict_forecasts",
                 "train_forecaster"),
    "models": ("create_model", "list_models", "model_summary"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'knowwhen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
