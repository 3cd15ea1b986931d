"""Frozen configuration of a forecaster: which series, how it is windowed, which model and how it is trained."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ModelConfig, _check, _check_fraction, check_optimisation
from ..losses import REGRESSION_LOSSES
from .series import TRANSFORMS

MULTISTEP = ("direct", "recursive")


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
class ForecastConfig:
    """Everything `train_forecaster` needs. Saved in the run's config.json.

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
        patience: epochs without a better validation loss before stopping; None disables early stopping.
    """

    series: SeriesConfig
    model: ModelConfig = field(default_factory=lambda: ModelConfig("gru"))
    window: int = 48
    horizon: int = 1
    multistep: str = "direct"
    stateful: bool = False
    loss: str = "mse"
    huber_delta: float = 1.0
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 100
    batch_size: int = 32
    patience: int | None = 10
    seed: int = 0
    max_minutes: float | None = None
    accelerator: str = "cpu"
    progress: bool = True

    def __post_init__(self):
        _check(isinstance(self.window, int) and self.window >= 1, "window", self.window, "use an integer >= 1.")
        _check(isinstance(self.horizon, int) and self.horizon >= 1, "horizon", self.horizon, "use an integer >= 1.")
        _check(self.multistep in MULTISTEP, "multistep", self.multistep, f"use one of {', '.join(MULTISTEP)}.")
        _check(self.loss in REGRESSION_LOSSES, "loss", self.loss, f"use one of {', '.join(REGRESSION_LOSSES)}.")
        _check(self.huber_delta > 0, "huber_delta", self.huber_delta, "use a positive number such as 1.0.")
        _check(not (self.stateful and self.multistep == "recursive"), "multistep", self.multistep,
               "stateful forecasters forecast every step directly; use multistep='direct'.")
        check_optimisation(self)

    @property
    def outputs(self) -> int:
        """Values the network predicts per window: the horizon (direct) or one step (recursive)."""
        return self.horizon if self.multistep == "direct" else 1
