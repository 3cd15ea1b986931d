"""Models: one registry of image classifiers and sequence forecasters, each tagged with its task."""
from . import cnn, dense, resnet, sequence  # noqa: F401  (registers the models)
from .ensemble import Ensemble
from .registry import TASKS, check_model_task, create_model, list_models, model_args, model_task, register_model
from .sequence import VariationalDropout, receptive_field
from .summary import layer_table, model_summary

__all__ = ["Ensemble", "TASKS", "VariationalDropout", "check_model_task", "create_model", "layer_table", "list_models",
           "model_args", "model_summary", "model_task", "receptive_field", "register_model"]
