"""Convolutional nets: the course's Keras MNIST `cnn` and the DeepLoc-style `vgg`."""
from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .registry import register_model


def _flat_size(model: nn.Module, input_shape) -> int:
    """Features per image after `model`, from one zero image (batch norm in eval mode only meanwhile)."""
    import torch

    model.eval()
    try:
        with torch.no_grad():
            return model(torch.zeros(1, *input_shape)).numel()
    finally:
        model.train()


@register_model("cnn")
def cnn(input_shape, num_classes, filters: int = 32, dense: int = 128, conv_dropout: float = 0.25,
        dropout: float = 0.5) -> nn.Module:
    """conv 3x3 ReLU, conv 3x3 ReLU, max-pool 2, dropout 0.25, dense 128 ReLU, dropout 0.5, dense K."""
    c, h, w = input_shape
    if min(h, w) < 6:
        raise ConfigError(f"model 'cnn' needs images of at least 6x6 pixels, got {h}x{w}; use 'mlp' or 'linear'.")
    features = nn.Sequential(
        nn.Conv2d(c, filters, 3), nn.ReLU(),            # (N, 32, H-2, W-2)
        nn.Conv2d(filters, filters, 3), nn.ReLU(),      # (N, 32, H-4, W-4)
        nn.MaxPool2d(2), nn.Dropout(conv_dropout),      # (N, 32, (H-4)/2, (W-4)/2)
        nn.Flatten(),
    )
    width = _flat_size(features, input_shape)
    return nn.Sequential(*features, nn.Linear(width, dense), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(dense, num_classes))


@register_model("vgg")
def vgg(input_shape, num_classes, widths: tuple = (32, 64, 128), convs_per_block: int = 2,
        dense: int = 256, dropout: float = 0.5) -> nn.Module:
    """DeepLoc-style blocks of (conv 3x3, batch norm, ReLU) x n and max-pool 2, then dropout and dense layers."""
    c, h, w = input_shape
    if min(h, w) < 2 ** len(widths):
        raise ConfigError(f"model 'vgg' with {len(widths)} pooling blocks needs images of at least "
                          f"{2 ** len(widths)} pixels, got {h}x{w}; pass fewer `widths`.")
    layers, channels = [], c
    for width in widths:
        for _ in range(convs_per_block):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))                  # halves H and W
    layers.append(nn.Flatten())
    flat = _flat_size(nn.Sequential(*layers), input_shape)
    return nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(flat, dense), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(dense, num_classes))
