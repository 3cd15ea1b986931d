"""The model registry: register_model, create_model, list_models."""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from ..errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: registers `factory(input_shape, num_classes, **args) -> nn.Module` under `name`."""
    def wrap(factory):
        _MODELS[name] = factory
        return factory
    return wrap


def list_models() -> list[str]:
    """Names of the registered models."""
    return sorted(_MODELS)


def model_args(name: str) -> dict:
    """The keyword arguments a model accepts, with their defaults."""
    params = inspect.signature(_factory(name)).parameters
    return {k: p.default for k, p in params.items() if k not in ("input_shape", "num_classes")}


def _factory(name: str):
    if name not in _MODELS:
        raise ConfigError(f"model {name!r} is unknown; use one of {', '.join(list_models())}.")
    return _MODELS[name]


def create_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **args) -> nn.Module:
    """Builds model `name` for images shaped (C, H, W) and `num_classes` outputs (logits).

    Example:
        >>> net = create_model("cnn", (1, 28, 28), 10, dropout=0.5)
    """
    allowed = model_args(name)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ConfigError(f"model {name!r} has no argument(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(f'{k}={v!r}' for k, v in allowed.items())}.")
    for key, value in args.items():
        if "dropout" in key and not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ConfigError(f"model {name!r}: `{key}` is {value!r}; use a value in [0, 1).")
    model = _factory(name)(tuple(input_shape), int(num_classes), **args)
    glorot_init(model)
    return model.train()


def glorot_init(model: nn.Module) -> None:
    """Glorot (Xavier) uniform weights and zero biases for every conv and dense layer (Keras's default)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
