"""The model registry: register_model, create_model, list_models. Every model is tagged with its task."""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from ..errors import ConfigError

TASKS = ("classify", "forecast")
_MODELS: dict[str, tuple[str, Callable[..., nn.Module]]] = {}


def register_model(name: str, task: str = "classify"):
    """Decorator: registers `factory(input_shape, outputs, **args) -> nn.Module` under `name` for `task`.

    `outputs` is the number of classes of a classifier, or the values a forecaster predicts per window.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r}: use one of {', '.join(TASKS)}")

    def wrap(factory):
        _MODELS[name] = (task, factory)
        return factory
    return wrap


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered models (of one task, when given)."""
    return sorted(n for n, (t, _) in _MODELS.items() if task in (None, t))


def model_task(name: str) -> str:
    """The task model `name` is built for: "classify" (images -> logits) or "forecast" (series -> values)."""
    return _entry(name)[0]


def check_model_task(name: str, task: str) -> None:
    """Raises ConfigError when model `name` is unknown or built for another task, naming the command for it."""
    actual = model_task(name)
    if actual != task:
        kind, command = {"classify": ("an image classifier", "knowwhen train"),
                         "forecast": ("a forecaster of time series", "knowwhen forecast train")}[actual]
        raise ConfigError(f"model {name!r} is {kind}; train it with `{command}`, or choose one of "
                          f"{', '.join(list_models(task))}.")


def model_args(name: str) -> dict:
    """The keyword arguments a model accepts, with their defaults."""
    params = list(inspect.signature(_entry(name)[1]).parameters.values())[2:]  # after (input_shape, outputs)
    return {p.name: p.default for p in params}


def _entry(name: str) -> tuple[str, Callable[..., nn.Module]]:
    if name not in _MODELS:
        raise ConfigError(f"model {name!r} is unknown; use one of {', '.join(list_models())}.")
    return _MODELS[name]


def create_model(name: str, input_shape: tuple[int, ...], outputs: int, **args) -> nn.Module:
    """Builds model `name` for inputs shaped `input_shape` ((C, H, W) images, (D, window) series) with
    `outputs` outputs (class logits, or forecast values).

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
    try:
        model = _entry(name)[1](tuple(input_shape), int(outputs), **args)
    except TypeError as e:  # a value of the wrong type (e.g. a text where a tuple belongs)
        raise ConfigError(f"model {name!r}: cannot be built with {args} ({e}); "
                          f"its arguments and defaults: {', '.join(f'{k}={v!r}' for k, v in allowed.items())}."
                          ) from None
    glorot_init(model)
    return model.train()


def glorot_init(model: nn.Module) -> None:
    """Glorot (Xavier) uniform weights and zero biases for every conv and dense layer (Keras's default)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
