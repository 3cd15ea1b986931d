"""Forecasts of a saved forecaster on a series: which windows, MC summaries, the forecast.csv rows."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..tables import write_rows_csv
from ..data.series import Series, inverse_transform, targets, time_at
from .run import ForecastRun
from .sampling import Forecast, ForecastOptions, Units, mc_forecast, stateful_forecast

ORIGINS = ("test", "all", "last")
COLUMNS = ("origin_time", "step", "time", "actual", "point", "mean", "std", "q05", "q95", "low_90", "high_90")


@dataclass
class SeriesForecast:
    """Forecasts from n windows of one series.

    Attributes:
        first_target: (n,) series index of each window's first forecast step (may lie past the end).
        actual: (n, H) true values in the series' units; NaN past the end of the series.
        forecast: the point forecast and the MC summaries, (n, H) each.
    """

    series: Series
    first_target: np.ndarray
    actual: np.ndarray
    forecast: Forecast


def predict_forecasts(run: ForecastRun, series: Series | None = None, origins: str = "test",
                      options: ForecastOptions = ForecastOptions()) -> SeriesForecast:
    """Forecasts `run.config.horizon` steps from windows of `series` (default: the run's training series).

    Args:
        origins: `test` every window whose first target lies in the test part (the last `test_fraction` of
            the series), `all` every window with a full horizon inside the series, `last` the one window
            ending at the last observation: the forecast into the unknown future.
        options: passes, seed, observation noise (`noise=False` makes the interval the MC one alone), batch
            size, progress.

    Example:
        >>> sf = predict_forecasts(run, origins="last", options=ForecastOptions(passes=100))  # doctest: +SKIP
    """
    if origins not in ORIGINS:
        raise ConfigError(f"origins {origins!r}: use one of {', '.join(ORIGINS)}.")
    series = series if series is not None else run.open_series()
    c, t = run.config, run.target
    if origins == "last":
        x = run.last_window(series)
        first = np.array([len(series.values)])
        actual = np.full((1, c.horizon), np.nan)
    else:
        w = run.windows(series)
        idx = w.test if origins == "test" else np.arange(len(w.x))
        if not len(idx):
            raise ConfigError(f"{series.source}: no {origins} windows of {c.window} + {c.horizon} steps; give a "
                              "longer series or use --origins last.")
        x, first = w.x[idx], w.first_target[idx]
        actual = targets(series, first, t, c.horizon)
    return SeriesForecast(series, first, actual, model_forecast(run, series, x, first, actual, options))


def model_forecast(run: ForecastRun, series: Series, x: np.ndarray, first: np.ndarray,
                   actual: np.ndarray | None = None, options: ForecastOptions = ForecastOptions(),
                   transformed: bool = True) -> Forecast:
    """The run's forecasts from windows `x` whose first targets are `first`: window by window, or, for a
    stateful run, from one pass over the whole history. `transformed=False` keeps the transformed scale."""
    c, t, o = run.config, run.target, options
    units = Units(mean=run.mean[t], std=run.std[t], noise_std=run.noise_std,
                  inverse=inverse_transform(c.series.transform) if transformed else None)
    if c.stateful:
        return stateful_forecast(run.model, run.scaled_series(series), first - 1, c.horizon, o, units=units,
                                 actual=actual)
    from tqdm.auto import tqdm

    with tqdm(total=len(x), unit="window", desc=f"MC forecast ({o.passes} passes)",
              disable=not o.progress or not o.passes, leave=False) as bar:
        return mc_forecast(run.model, x, c.horizon, o, recursive=c.multistep == "recursive", units=units,
                           actual=actual, keys=first, on_batch=bar.update)


def forecast_rows(sf: SeriesForecast) -> list[dict]:
    """One row per (window, step): origin_time (the last input), step (1-based), time, actual, point (dropout
    off); with MC: mean, std, q05, q95 over the passes and low_90, high_90 of the predictive interval."""
    f, rows = sf.forecast, []
    for i, s in enumerate(sf.first_target):
        for k in range(sf.actual.shape[1]):
            row = {"origin_time": time_at(sf.series.time, int(s) - 1), "step": k + 1,
                   "time": time_at(sf.series.time, int(s) + k),
                   "actual": "" if np.isnan(sf.actual[i, k]) else float(sf.actual[i, k]),
                   "point": float(f.point[i, k])}
            if f.mean is not None:
                row.update(mean=float(f.mean[i, k]), std=float(f.std[i, k]), q05=float(f.q05[i, k]),
                           q95=float(f.q95[i, k]), low_90=float(f.low[i, k]), high_90=float(f.high[i, k]))
            rows.append(row)
    return rows


def write_forecast_csv(sf: SeriesForecast, out: str | Path) -> Path:
    """Writes forecast.csv atomically; without MC passes the mean, std and quantile columns are absent."""
    rows = forecast_rows(sf)
    write_rows_csv(Path(out), rows, [c for c in COLUMNS if c in rows[0]])
    return Path(out)
