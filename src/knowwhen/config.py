"""Frozen, validated configuration for each stage; JSON round-trips rebuild the exact dataclass."""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
LOSSES = ("cross_entropy", "hinge")
STRATEGIES = ("auto", "ddp", "ddp_spawn")


def _check(ok: bool, name: str, value: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"`{name}` is {value!r}; {fix}")


def _check_fraction(name: str, value: float, upper_open: bool = True) -> None:
    ok = isinstance(value, (int, float)) and 0 <= value < 1 if upper_open else 0 <= value <= 1
    _check(ok, name, value, "use a value in [0, 1).")


def check_optimisation(c) -> None:
    """Checks the optimiser and schedule fields a TrainConfig and a ForecastConfig share."""
    _check(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"use one of {', '.join(OPTIMIZERS)}.")
    _check(isinstance(c.lr, (int, float)) and 0 < c.lr < 10 and math.isfinite(c.lr),
           "lr", c.lr, "use a positive learning rate such as 0.001.")
    _check(0 <= c.momentum < 1, "momentum", c.momentum, "use a value in [0, 1).")
    _check(c.weight_decay >= 0, "weight_decay", c.weight_decay, "use a value >= 0.")
    _check(isinstance(c.epochs, int) and c.epochs >= 1, "epochs", c.epochs, "use an integer >= 1.")
    _check(isinstance(c.batch_size, int) and c.batch_size >= 1, "batch_size", c.batch_size, "use an integer >= 1.")
    _check(c.patience is None or c.patience >= 1, "patience", c.patience, "use an integer >= 1 or None.")
    _check(c.max_minutes is None or c.max_minutes > 0, "max_minutes", c.max_minutes,
           "use a positive number of minutes or None.")


@dataclass(frozen=True)
class AugmentConfig:
    """Random affine augmentation of training batches (off for validation and prediction).

    Attributes:
        rotation: maximum rotation in degrees, drawn uniformly from [-rotation, rotation].
        zoom: maximum relative zoom; scale drawn from [1 - zoom, 1 + zoom].
        shear: maximum shear angle in degrees.
        shift: maximum shift as a fraction of the image height / width.
        hflip: flip left-right with probability 1/2.
        vflip: flip up-down with probability 1/2.
    """

    rotation: float = 0.0
    zoom: float = 0.0
    shear: float = 0.0
    shift: float = 0.0
    hflip: bool = False
    vflip: bool = False

    def __post_init__(self):
        _check(0 <= self.rotation <= 180, "augment.rotation", self.rotation, "use degrees in [0, 180].")
        _check(0 <= self.zoom < 1, "augment.zoom", self.zoom, "use a value in [0, 1).")
        _check(0 <= self.shear < 90, "augment.shear", self.shear, "use degrees in [0, 90).")
        _check(0 <= self.shift <= 0.5, "augment.shift", self.shift, "use a fraction in [0, 0.5].")

    @property
    def enabled(self) -> bool:
        return bool(self.rotation or self.zoom or self.shear or self.shift or self.hflip or self.vflip)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are split and normalised.

    Attributes:
        source: a path (file or folder) or a built-in name (`digits`, `fashion-mnist`).
        format: force a format (`idx`, `folder`, `csv`, `npz`, `hdf5`, `deeploc`); None detects it.
        options: format options, e.g. {"x_key": "images", "y_key": "labels"} for HDF5.
        val_fraction: fraction of the non-test images kept for validation (early stopping).
        test_fraction: fraction held out for testing, unless the data has its own test split.
        holdout_classes: class names removed from training and validation and kept as "novel".
        clip_percentiles: per-channel (low, high) percentiles to clip at before scaling, e.g. (0.1, 99.9).
        skip_bad: skip unreadable images (each one is listed) instead of stopping.
    """

    source: str
    format: str | None = None
    options: dict = field(default_factory=dict)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    holdout_classes: tuple[str, ...] = ()
    clip_percentiles: tuple[float, float] | None = None
    skip_bad: bool = False

    def __post_init__(self):
        object.__setattr__(self, "source", str(self.source))
        object.__setattr__(self, "holdout_classes", tuple(str(c) for c in self.holdout_classes))
        _check_fraction("data.val_fraction", self.val_fraction)
        _check_fraction("data.test_fraction", self.test_fraction)
        _check(self.val_fraction + self.test_fraction < 1, "data.val_fraction + data.test_fraction",
               self.val_fraction + self.test_fraction, "leave some images for training (sum below 1).")
        if self.clip_percentiles is not None:
            lo, hi = self.clip_percentiles
            object.__setattr__(self, "clip_percentiles", (float(lo), float(hi)))
            _check(0 <= lo < hi <= 100, "data.clip_percentiles", self.clip_percentiles,
                   "use (low, high) with 0 <= low < high <= 100, e.g. (0.1, 99.9).")


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to build and its keyword arguments (see `knowwhen.list_models()`)."""

    name: str = "cnn"
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Everything `knowwhen.train` needs. Saved in the run's config.json.

    Attributes:
        optimizer: `adam` or `sgd` (with `momentum`).
        loss: `cross_entropy` (softmax) or `hinge` (multi-class SVM, margin 1).
        patience: epochs without a better validation loss before stopping; None disables early stopping.
        max_minutes: stop after this much training time (the best epoch so far is kept).
        devices, num_nodes, strategy: Lightning's distributed data parallel settings; `batch_size` is the
            global batch, split across the devices x num_nodes processes.
    """

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str = "cross_entropy"
    epochs: int = 10
    batch_size: int = 128
    patience: int | None = 5
    seed: int = 0
    num_workers: int = 0
    max_minutes: float | None = None
    accelerator: str = "cpu"
    progress: bool = True
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"

    def __post_init__(self):
        _check(self.loss in LOSSES, "loss", self.loss, f"use one of {', '.join(LOSSES)}.")
        check_optimisation(self)
        _check(self.num_workers >= 0, "num_workers", self.num_workers, "use an integer >= 0.")
        _check(isinstance(self.devices, int) and self.devices >= 1, "devices", self.devices, "use an integer >= 1.")
        _check(isinstance(self.num_nodes, int) and self.num_nodes >= 1, "num_nodes", self.num_nodes,
               "use an integer >= 1.")
        _check(self.strategy in STRATEGIES, "strategy", self.strategy, f"use one of {', '.join(STRATEGIES)}.")


def config_to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _nested_configs(cls) -> dict:
    """{field name: dataclass} for the fields of `cls` that are themselves config dataclasses."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def config_from_dict(cls, data: dict, where: str = "config"):
    """Rebuilds `cls` from a dict, raising ConfigError on unknown or missing keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(fields)}.")
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}.")
    nested = _nested_configs(cls)
    kwargs = {}
    for name, value in data.items():
        if name in nested:
            value = config_from_dict(nested[name], value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Reads a TrainConfig from a JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read a JSON config ({e}).") from None
    return config_from_dict(TrainConfig, data, str(path))
