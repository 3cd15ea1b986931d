"""Models: a registry of image classifiers, each built for an input shape and a number of classes."""
from . import cnn, dense, resnet  # noqa: F401  (registers the models)
from .registry import create_model, list_models, model_args, register_model
from .summary import layer_table, model_summary

__all__ = ["create_model", "layer_table", "list_models", "model_args", "model_summary", "register_model"]

from ..sequences import models as _sequence_models  # noqa: E402,F401  (registers tcn, rnn, gru, lstm)
