"""Sequences: causal dilated convolutions and recurrent nets with variational dropout (in the model registry)."""
from . import models  # noqa: F401  (registers tcn, rnn, gru, lstm)
from .models import receptive_field

__all__ = ["receptive_field"]
