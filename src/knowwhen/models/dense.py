"""Models on flattened pixels: softmax regression (`linear`) and a multi-layer perceptron (`mlp`)."""
from __future__ import annotations

import math

from torch import nn

from .registry import register_model


@register_model("linear")
def linear(input_shape, num_classes, dropout: float = 0.0) -> nn.Module:
    """Softmax regression: one dense layer on the pixels (dropout on the input, off by default)."""
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(math.prod(input_shape), num_classes))


@register_model("mlp")
def mlp(input_shape, num_classes, hidden: int = 256, layers: int = 2, dropout: float = 0.5) -> nn.Module:
    """`layers` dense ReLU layers of `hidden` units, each followed by dropout."""
    blocks, width = [nn.Flatten()], math.prod(input_shape)
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*blocks, nn.Linear(width, num_classes))
