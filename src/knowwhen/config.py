"""Frozen, validated configuration for each stage; JSON round-trips rebuild the exact dataclass."""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
LOSSES = ("cross_entropy", "hinge")
# The names only: the loss functions live in training/losses.py (torch), which this module does not import.
REGRESSION_LOSSES = ("mse", "mae", "huber", "logcosh")
TRANSFORMS = ("sqrt", "log1p")
MULTISTEP = ("direct", "recursive")
STRATEGIES = ("auto", "ddp", "ddp_spawn")


def _check(ok: bool, name: str, value: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"`{name}` is {value!r}; {fix}")


def check_counts(**counts) -> None:
    """A ConfigError naming the option (`batch_size` as --batch-size) for a count below its least value: `mc` >= 0
    (0: no MC dropout), every other >= 1. Options objects call it before anything is written."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (0 if name == "mc" else 1):
            fix = "0 for none or a number of passes, e.g. 100" if name == "mc" else "an integer >= 1"
            raise ConfigError(f"--{name.replace('_', '-')} {value}: use {fix}.")


def _check_fraction(name: str, value: float, upper_open: bool = True) -> None:
    ok = isinstance(value, (int, float)) and 0 <= value < 1 if upper_open else 0 <= value <= 1
    _check(ok, name, value, "use a value in [0, 1).")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """How a network is optimised; shared by `TrainConfig` (classifiers) and `ForecastConfig` (forecasters).

    Keyword-only, so that each task's own fields come first when its config is built positionally.

    Attributes:
        optimizer: `adam` or `sgd` (with `momentum`).
        patience: epochs without a better validation loss before stopping; None disables early stopping.
        max_minutes: stop after this much training time (the best epoch so far is kept).
        seed: seeds initialisation, shuffling, augmentation and training dropout.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    patience: int | None = 5
    seed: int = 0
    max_minutes: float | None = None
    accelerator: str = "cpu"
    progress: bool = True

    def __post_init__(self):
        _check(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"use one of {', '.join(OPTIMIZERS)}.")
        _check(isinstance(self.lr, (int, float)) and 0 < self.lr < 10 and math.isfinite(self.lr),
               "lr", self.lr, "use a positive learning rate such as 0.001.")
        _check(0 <= self.momentum < 1, "momentum", self.momentum, "use a value in [0, 1).")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "use a value >= 0.")
        _check(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", self.epochs, "use an integer >= 1.")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", self.batch_size,
               "use an integer >= 1.")
        _check(self.patience is None or self.patience >= 1, "patience", self.patience, "use an integer >= 1 or None.")
        _check(self.max_minutes is None or self.max_minutes > 0, "max_minutes", self.max_minutes,
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
        calibration_fraction: fraction of the non-test images set aside (stratified, disjoint from train, val and
            test) to calibrate conformal prediction sets; 0 keeps none.
    """

    source: str
    format: str | None = None
    options: dict = field(default_factory=dict)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    holdout_classes: tuple[str, ...] = ()
    clip_percentiles: tuple[float, float] | None = None
    skip_bad: bool = False
    calibration_fraction: float = 0.1
    # What a run saved before a field existed did: it had no calibration split.
    SAVED_BEFORE = {"calibration_fraction": 0.0}

    def __post_init__(self):
        object.__setattr__(self, "source", str(self.source))
        object.__setattr__(self, "holdout_classes", tuple(str(c) for c in self.holdout_classes))
        _check_fraction("data.val_fraction", self.val_fraction)
        _check_fraction("data.test_fraction", self.test_fraction)
        _check_fraction("data.calibration_fraction", self.calibration_fraction)
        total = self.val_fraction + self.test_fraction + self.calibration_fraction
        _check(total < 1, "data.val_fraction + data.test_fraction + data.calibration_fraction", total,
               "leave some images for training (sum below 1).")
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
class TrainConfig(OptimConfig):
    """Everything `knowwhen.train` needs (with the `OptimConfig` fields). Saved in the run's config.json.

    Attributes:
        loss: `cross_entropy` (softmax) or `hinge` (multi-class SVM, margin 1).
        calibration_mc: MC-dropout passes over the calibration split at the end of training, for conformal sets
            on the MC mean (use the same T with `predict --mc`); 0: the softmax only.
        devices, num_nodes, strategy: Lightning's distributed data parallel settings; `batch_size` is the
            global batch, split across the devices x num_nodes processes.
        ensemble: members of a deep ensemble (1: a single network). Every member trains on the same split with
            its own initialisation, data order, augmentation and training dropout.
        member: which member this config trains (0 for a single network); see `training_seed`.
    """

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: str = "cross_entropy"
    num_workers: int = 0
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    calibration_mc: int = 100
    ensemble: int = 1
    member: int = 0

    def __post_init__(self):
        super().__post_init__()
        _check(isinstance(self.ensemble, int) and self.ensemble >= 1, "ensemble", self.ensemble,
               "use an integer >= 1 (e.g. 5 members).")
        _check(isinstance(self.member, int) and self.member >= 0, "member", self.member, "use an integer >= 0.")
        _check(isinstance(self.calibration_mc, int) and self.calibration_mc >= 0, "calibration_mc",
               self.calibration_mc, "use an integer >= 0 (e.g. 100, the T of predict --mc).")
        _check(self.loss in LOSSES, "loss", self.loss, f"use one of {', '.join(LOSSES)}.")
        _check(self.num_workers >= 0, "num_workers", self.num_workers, "use an integer >= 0.")
        _check(isinstance(self.devices, int) and self.devices >= 1, "devices", self.devices, "use an integer >= 1.")
        _check(isinstance(self.num_nodes, int) and self.num_nodes >= 1, "num_nodes", self.num_nodes,
               "use an integer >= 1.")
        _check(self.strategy in STRATEGIES, "strategy", self.strategy, f"use one of {', '.join(STRATEGIES)}.")

    @property
    def training_seed(self) -> int:
        """Seeds initialisation, data order, augmentation and training dropout: `seed` for member 0 (so a single
        network and the first member of an ensemble are the same network), a seed derived from (seed, member) for
        the others. Splits and normalisation always use `seed`, so every member sees the same split."""
        return self.seed if self.member == 0 else (self.seed * 1_000_003 + 7_919 * self.member) % 2**31


@dataclass(frozen=True)
class SeriesConfig:
    """Where the series comes from and how it is split in time.

    Attributes:
        source: a CSV (time column, then value columns) or a built-in series: sunspots, nile, co2.
        time_column: the CSV's time column (default: its first column).
        value_columns: the columns used as inputs (default: every other column).
        target: the column to forecast (default: the first value column).
        fill: None stops on missing values; "interpolate" fills them linearly.
        allow_gaps: accept irregular time steps instead of stopping.
        transform: None, "sqrt" or "log1p": the model learns the transformed series (variance-stabilised);
            forecasts, intervals and metrics are mapped back to the series' units.
        val_fraction, test_fraction: the last parts of the series, in time order, kept for validation and test.
    """

    source: str
    time_column: str | None = None
    value_columns: tuple[str, ...] = ()
    target: str | None = None
    fill: str | None = None
    allow_gaps: bool = False
    transform: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "source", str(self.source))
        object.__setattr__(self, "value_columns", tuple(str(c) for c in self.value_columns))
        _check(self.fill in (None, "interpolate"), "series.fill", self.fill, "use None or 'interpolate'.")
        _check(self.transform in (None, *TRANSFORMS), "series.transform", self.transform,
               "use None, 'sqrt' or 'log1p'.")
        _check_fraction("series.val_fraction", self.val_fraction)
        _check_fraction("series.test_fraction", self.test_fraction)
        _check(self.val_fraction + self.test_fraction < 1, "series.val_fraction + series.test_fraction",
               self.val_fraction + self.test_fraction, "leave some of the series for training (sum below 1).")


@dataclass(frozen=True)
class ForecastConfig(OptimConfig):
    """Everything `train_forecaster` needs (with the `OptimConfig` fields). Saved in the run's config.json.

    Attributes:
        window: past time steps the model sees.
        horizon: future time steps forecast from each window.
        multistep: `direct` (the model outputs all `horizon` steps at once) or `recursive` (the model outputs
            one step and is fed its own forecast `horizon` times; univariate series only).
        stateful: recurrent models only: train on the series cut into `batch_size` contiguous streams of
            `window`-step segments, carrying the hidden state from one segment to the next (gradients stop at
            segment borders), with a loss at every step; forecasts then run over the whole history before
            each origin instead of one window. Direct multi-step only.
        loss: mse, mae, huber (with `huber_delta`, in scaled units) or logcosh.
    """

    series: SeriesConfig
    model: ModelConfig = field(default_factory=lambda: ModelConfig("gru"))
    window: int = 48
    horizon: int = 1
    multistep: str = "direct"
    stateful: bool = False
    loss: str = "mse"
    huber_delta: float = 1.0
    # A series gives few windows: more epochs of smaller batches than an image set, and more patience.
    epochs: int = field(default=100, kw_only=True)
    batch_size: int = field(default=32, kw_only=True)
    patience: int | None = field(default=10, kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        _check(isinstance(self.window, int) and self.window >= 1, "window", self.window, "use an integer >= 1.")
        _check(isinstance(self.horizon, int) and self.horizon >= 1, "horizon", self.horizon, "use an integer >= 1.")
        _check(self.multistep in MULTISTEP, "multistep", self.multistep, f"use one of {', '.join(MULTISTEP)}.")
        _check(self.loss in REGRESSION_LOSSES, "loss", self.loss, f"use one of {', '.join(REGRESSION_LOSSES)}.")
        _check(self.huber_delta > 0, "huber_delta", self.huber_delta, "use a positive number such as 1.0.")
        _check(not (self.stateful and self.multistep == "recursive"), "multistep", self.multistep,
               "stateful forecasters forecast every step directly; use multistep='direct'.")

    @property
    def outputs(self) -> int:
        """Values the network predicts per window: the horizon (direct) or one step (recursive)."""
        return self.horizon if self.multistep == "direct" else 1


def config_to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _nested_configs(cls) -> dict:
    """{field name: dataclass} for the fields of `cls` that are themselves config dataclasses."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def config_from_dict(cls, data: dict, where: str = "config", saved: bool = False):
    """Rebuilds `cls` from a dict, raising ConfigError on unknown or missing keys.

    `saved`: the dict comes from a run's config.json; a field it lacks (saved by an older knowwhen) takes the
    value in the class's `SAVED_BEFORE` (what that version did), else its default."""
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
            value = config_from_dict(nested[name], value, f"{where}.{name}", saved)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    if saved:
        kwargs = {**{k: v for k, v in getattr(cls, "SAVED_BEFORE", {}).items() if k not in data}, **kwargs}
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
