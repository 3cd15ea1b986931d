"""train_forecaster(config, out): open and window the series, fit with Lightning, write the run directory."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import __version__
from ..config import ForecastConfig, config_to_dict
from ..data.loader import EpochBatchSampler
from ..errors import ConfigError, DataError
from ..models import check_model_task, create_model
from ..seed import seed_everything
from ..data.fingerprint import series_fingerprint
from ..data.series import (Series, Windows, inverse_transform, make_windows, open_configured_series, targets,
                           time_at, time_step, transform_series)
from ..training.callbacks import EpochMetrics
from ..training.rundir import RESUME, prepare_run_dir, resume_message, resumed_config, write_config
from ..training.trainer import make_trainer, quiet_lightning, training_metrics
from .run import TASK, load_forecaster, target_index

log = logging.getLogger("knowwhen")
COLUMNS = ("epoch", "train_loss", "train_mae", "val_loss", "val_mae", "lr", "seconds")


class _WindowBatches(torch.utils.data.Dataset):
    """Positions -> one (x, y) batch of windows."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, positions):
        idx = torch.as_tensor(np.asarray(positions))
        return self.x[idx], self.y[idx]


def _loader(w: Windows, idx: np.ndarray, outputs: int, config: ForecastConfig, shuffle: bool) -> DataLoader:
    # The epoch-seeded sampler makes a resumed run see the batches an uninterrupted one would.
    sampler = EpochBatchSampler(len(idx), config.batch_size, shuffle, config.seed)
    return DataLoader(_WindowBatches(w.x[idx], w.y[idx, :outputs]), sampler=sampler, batch_size=None)


def stateful_batches(scaled: np.ndarray, target: int, horizon: int, end: int, window: int,
                     streams: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches for stateful training from the scaled series (T, D) up to `end` (exclusive).

    Steps 0 .. end - horizon - 1 (every target before `end`) are cut into B = min(streams, steps // (2 window))
    contiguous streams; batch k holds segment k (`window` steps) of every stream, so row b of batch k + 1
    continues row b of batch k. x: (B, D, window); y: (B, window, horizon), the next `horizon` values of the
    target after each step.
    """
    steps = end - horizon
    b = max(1, min(streams, steps // (2 * window)))
    length = steps // b // window * window
    if length < window:
        raise DataError(f"{steps} training steps are too few for stateful segments of {window}; shorten --window.")
    y = np.stack([scaled[t + 1:t + 1 + horizon, target] for t in range(steps)]).astype(np.float32)
    x = scaled.astype(np.float32)
    out = []
    for k in range(length // window):
        rows = [slice(i * length + k * window, i * length + (k + 1) * window) for i in range(b)]
        out.append((torch.from_numpy(np.stack([x[r].T for r in rows])), torch.from_numpy(np.stack([y[r] for r in rows]))))
    return out


def _stateful_loaders(series: Series, w: Windows, config: ForecastConfig):
    scaled = (transform_series(series, config.series.transform).values - w.mean) / w.std
    train = stateful_batches(scaled, w.target, config.horizon, w.train_end, config.window, config.batch_size)
    log.info("stateful training: %d streams x %d segments of %d steps", len(train[0][0]), len(train), config.window)
    val = None
    if len(w.val):
        steps = w.first_target[w.val] - 1                  # the step each validation forecast is made from
        x = torch.from_numpy(scaled[:steps.max() + 1].T[None].astype(np.float32))
        val = DataLoader([(x, torch.from_numpy(w.y[w.val]), torch.from_numpy(steps))], batch_size=None)
    return DataLoader(train, batch_size=None), val


def _time_info(series: Series) -> dict:
    t = series.time
    return {"first": time_at(t, 0), "last": time_at(t, len(t) - 1), "step": time_step(t)}


def _payload(config: ForecastConfig, series: Series, w: Windows, status: str, **extra) -> dict:
    return {
        "knowwhen_version": __version__,
        "task": TASK,
        "status": status,
        "model": {"name": config.model.name, "args": dict(config.model.args)},
        "input_shape": [len(series.names), config.window],
        "forecast": config_to_dict(config),
        "series": {"source": series.source, "columns": list(series.names), "target": series.names[w.target],
                   "fingerprint": series_fingerprint(series.values, series.names),
                   "length": len(series.values), "time": _time_info(series),
                   "sizes": {"train": len(w.train), "val": len(w.val), "test": len(w.test)}},
        "scaler": {"mean": w.mean.tolist(), "std": w.std.tolist()},
        **extra,
    }


def _check_windows(config: ForecastConfig, series: Series, w: Windows) -> None:
    if len(w.train) < 2:
        raise DataError(f"{series.source}: {len(w.train)} training window(s) of {config.window} steps; shorten "
                        "--window or --horizon, or give a longer series.")
    if config.stateful and config.model.name not in ("rnn", "gru", "lstm"):
        raise ConfigError(f"--stateful carries a recurrent state; {config.model.name!r} has none: use rnn, gru or "
                          "lstm, or drop --stateful.")
    if config.multistep == "recursive" and len(series.names) > 1:
        raise ConfigError(f"{series.source}: recursive forecasts need a univariate series (the forecast is fed back "
                          f"as the next input), this one has {len(series.names)} columns; use --multistep direct.")


def _with_resolved_source(config: ForecastConfig) -> ForecastConfig:
    """`config` with a CSV source as an absolute path, so that the saved run finds its series from any directory
    (a built-in name stays as it is)."""
    source = Path(config.series.source)
    if not source.exists():
        return config
    return dataclasses.replace(config, series=dataclasses.replace(config.series, source=str(source.resolve())))


def train_forecaster(config: ForecastConfig, out: str | Path, series: Series | None = None, resume: bool = False,
                     overwrite: bool = False) -> Path:
    """Trains a forecaster as `config` says and writes the run directory `out`; returns its path.

    The series is windowed into (window -> horizon) pairs and split in time order (train, then validation, then
    test); scaling is fitted on the training part only. `out` receives model.safetensors (the epoch with the
    lowest validation loss), config.json (task "forecast", window, horizon, scaler) and metrics.csv.

    Example:
        >>> cfg = ForecastConfig(SeriesConfig("sunspots"), ModelConfig("gru"), window=24)  # doctest: +SKIP
        >>> run_dir = train_forecaster(cfg, "runs/sunspots")
    """
    out = Path(out)
    check_model_task(config.model.name, "forecast")  # before anything is read or written
    config = _with_resolved_source(config)
    quiet_lightning()
    series = series if series is not None else open_configured_series(config.series)
    s = config.series
    target = target_index(series.names, s.target, series.source)
    w = make_windows(transform_series(series, s.transform), config.window, config.horizon, target, s.val_fraction,
                     s.test_fraction)
    _check_windows(config, series, w)
    saved = prepare_run_dir(out, config, resume, overwrite, key="forecast")
    if saved and saved.get("series", {}).get("length") != len(series.values):
        raise ConfigError(f"{out}: the series changed since this run started ({saved['series'].get('length')} "
                          f"steps then, {len(series.values)} now); resume on the same series.")
    has_val = len(w.val) > 0
    trainer = make_trainer(config, out, "val_loss" if has_val else "train_loss", has_val, COLUMNS)
    seed_everything(config.seed)
    net = create_model(config.model.name, (len(series.names), config.window), config.outputs, **config.model.args)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, _payload(config, series, w, "training"))
    log.info("forecaster %s: %d training / %d validation / %d test windows", config.model.name, len(w.train),
             len(w.val), len(w.test))
    if getattr(net, "receptive_field", None):
        log.info("tcn receptive field: %d time steps (window %d)", net.receptive_field, config.window)

    from ..training.regressor import Regressor, StatefulRegressor

    ckpt = out / RESUME if resume and (out / RESUME).exists() else None
    if resume:
        log.info(resume_message(out, ckpt is not None, config.epochs))
    if config.stateful:
        module, (train_loader, val_loader) = StatefulRegressor(net, config), _stateful_loaders(series, w, config)
    else:
        module = Regressor(net, config)
        train_loader = _loader(w, w.train, config.outputs, config, True)
        val_loader = _loader(w, w.val, config.outputs, config, False) if has_val else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt, weights_only=True)
    write_config(out, _payload(config, series, w, "complete", **_final(trainer, out, series, w, config)))
    (out / RESUME).unlink(missing_ok=True)
    return out


def resume_forecaster(out: str | Path, epochs: int | None = None, progress: bool = True) -> Path:
    """Continues the interrupted forecaster run in `out` with the settings it saved; `epochs` may raise its
    maximum."""
    return train_forecaster(resumed_config(out, ForecastConfig, "forecast", epochs, progress), out, resume=True)


def _final(trainer, out: Path, series: Series, w: Windows, config: ForecastConfig) -> dict:
    """Errors of the best epoch's forecast (dropout off) on validation and test, in the series' units, and the
    observation noise per step: the root mean squared validation residual (training residual without a
    validation part) on the transformed scale, which the predictive interval adds to the MC passes."""
    from .metrics import mae, rmse
    from .predict import model_forecast
    from .sampling import ForecastOptions

    epochs = next(c for c in trainer.callbacks if isinstance(c, EpochMetrics))
    run = load_forecaster(out, allow_incomplete=True)
    metrics = training_metrics(trainer, config.epochs)
    residuals, inverse = {}, inverse_transform(config.series.transform)
    for part in ("train", "val", "test"):
        idx = getattr(w, part)
        if len(idx):
            f = model_forecast(run, series, w.x[idx], w.first_target[idx],
                               options=ForecastOptions(passes=0, noise=False), transformed=False)
            residuals[part] = f.point - w.unscale(w.y[idx].astype(np.float64))     # on the transformed scale
            if part != "train":
                actual = targets(series, w.first_target[idx], w.target, config.horizon)
                point = inverse(f.point) if inverse else f.point
                metrics[f"{part}_mae"], metrics[f"{part}_rmse"] = mae(point, actual), rmse(point, actual)
    noise_from = "val" if "val" in residuals else "train"
    noise = np.sqrt((residuals[noise_from] ** 2).mean(0))
    seconds = sum(float(r["seconds"]) for r in epochs.rows)
    return {"metrics": metrics, "train_seconds": round(seconds, 2),
            "noise": {"std": noise.tolist(), "from": noise_from, "windows": len(residuals[noise_from])}}

