"""Saved forecasters: model.safetensors + config.json with task "forecast" (window, horizon, scaler). No pickle."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ..config import ForecastConfig, config_from_dict
from ..data.fingerprint import series_fingerprint
from ..data.series import Series, Windows, last_window, make_windows, open_configured_series, transform_series
from ..errors import CheckpointError, DataError, KnowwhenError
from ..models import create_model
from ..training.rundir import CONFIG, config_field, load_weights, read_config

TASK = "forecast"


@dataclass
class ForecastRun:
    """A trained forecaster with the scaling and windowing it was trained with.

    Attributes:
        path: the run directory.
        model: the network (eval mode): scaled (n, D, window) -> scaled (n, outputs).
        config: the ForecastConfig it was trained with.
        columns: the series' value columns, in the order the model reads them.
        mean, std: (D,) the scaling fitted on the training part of the series (after its transform, if any).
        info: the rest of config.json: sizes, metrics, timing.
    """

    path: Path
    model: nn.Module
    config: ForecastConfig
    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def target(self) -> int:
        """Index of the forecast column in `columns`."""
        return target_index(self.columns, self.config.series.target, str(self.path))

    @property
    def metrics(self) -> dict:
        return self.info.get("metrics", {})

    @property
    def noise_std(self) -> np.ndarray | None:
        """(horizon,) observation noise per step, estimated on validation residuals at training; in the series'
        units, or on the transformed scale when the run has a transform."""
        noise = self.info.get("noise")
        return np.asarray(noise["std"], dtype=np.float64) if noise else None

    def open_series(self, source: str | Path | None = None) -> Series:
        """The training series (default) or another one with the same columns, checked and filled alike.

        The training series must still hold what the run learned (its content fingerprint): a file edited
        since would make its "test part" something else without a word.
        """
        series = open_configured_series(self.config.series, source)
        if tuple(series.names) != self.columns:
            raise DataError(f"{series.source}: columns {', '.join(series.names)} but the run {self.path} was "
                            f"trained on {', '.join(self.columns)}; give a series with those columns.")
        saved = self.info.get("series", {}).get("fingerprint")
        if source is None and saved and series_fingerprint(series.values, series.names) != saved:
            raise DataError(f"{series.source}: the series changed since run {self.path} was trained on it (its "
                            "content differs), so its test part is no longer the one the run held out; give the "
                            "series explicitly (forecast predict RUN SERIES) to forecast it anyway.")
        return series

    def windows(self, series: Series) -> Windows:
        """`series` windowed like the training series: transformed, then scaled with the run's statistics."""
        s, c = self.config.series, self.config
        return make_windows(transform_series(series, s.transform), c.window, c.horizon, self.target, s.val_fraction,
                            s.test_fraction, scaler=(self.mean, self.std))

    def scaled_series(self, series: Series) -> np.ndarray:
        """(1, D, T) the whole series transformed and scaled as the model reads it (stateful forecasts)."""
        values = transform_series(series, self.config.series.transform).values
        return ((values - self.mean) / self.std).T[None].astype(np.float32)

    def last_window(self, series: Series) -> np.ndarray:
        """(1, D, window) model inputs ending at the last observation of `series`."""
        return last_window(transform_series(series, self.config.series.transform), self.config.window,
                           self.mean, self.std)


def target_index(columns, target: str | None, where: str) -> int:
    """Index of `target` among `columns` (default the first), or a DataError naming the choices."""
    if target is None:
        return 0
    if target not in columns:
        raise DataError(f"{where}: no column {target!r} to forecast (columns: {', '.join(columns)}).")
    return list(columns).index(target)


def load_forecaster(run_dir: str | Path, allow_incomplete: bool = False) -> ForecastRun:
    """Loads a forecaster run directory made by `train_forecaster` / `knowwhen forecast train`."""
    run_dir = Path(run_dir)
    payload = read_config(run_dir, "knowwhen forecast train")
    if payload.get("task") != TASK:
        raise CheckpointError(f"{run_dir}: an image classifier, not a forecaster; use `knowwhen predict` for it, "
                              "or train a forecaster with `knowwhen forecast train`.")
    if payload.get("status") != "complete" and not allow_incomplete:
        raise CheckpointError(f"{run_dir}: training did not finish (status {payload.get('status')!r}); "
                              "continue it with `knowwhen forecast train ... --resume`.")
    try:
        config = config_from_dict(ForecastConfig, config_field(payload, "forecast", run_dir),
                                  f"{run_dir / CONFIG}: forecast", saved=True)
        model_cfg = config_field(payload, "model", run_dir)
        model = create_model(model_cfg["name"], tuple(config_field(payload, "input_shape", run_dir)), config.outputs,
                             **model_cfg.get("args", {}))
        series = config_field(payload, "series", run_dir)
        scaler = config_field(payload, "scaler", run_dir)
        mean, std = np.asarray(scaler["mean"], dtype=np.float64), np.asarray(scaler["std"], dtype=np.float64)
        columns = tuple(series["columns"])
    except (KnowwhenError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{run_dir / CONFIG}: cannot rebuild the forecaster ({e}).") from None
    load_weights(model, run_dir)
    info = {k: v for k, v in payload.items() if k not in ("model", "forecast", "scaler")}
    return ForecastRun(run_dir, model.eval(), config, columns, mean, std, info)
