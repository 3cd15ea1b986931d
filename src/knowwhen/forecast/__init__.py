"""Forecasting time series with MC-dropout intervals: train, load, predict, evaluate against baselines.

The series themselves are read by `knowwhen.data.series`, the networks live in `knowwhen.models.sequence`, and
the MC passes come from the one engine in `knowwhen.uncertainty.mc`. Training loads Lightning on first use.
"""
from .evaluate import evaluate_forecaster, format_forecast_summary
from .predict import SeriesForecast, predict_forecasts, write_forecast_csv
from .run import ForecastRun, load_forecaster
from .sampling import Forecast, ForecastOptions, Units, mc_forecast, stateful_forecast

__all__ = ["Forecast", "ForecastOptions", "ForecastRun", "SeriesForecast", "Units", "evaluate_forecaster",
           "format_forecast_summary", "load_forecaster", "mc_forecast", "predict_forecasts", "stateful_forecast", "train_forecaster",
           "write_forecast_csv"]


def __getattr__(name):
    if name == "train_forecaster":
        from .train import train_forecaster
        return train_forecaster
    raise AttributeError(f"module 'knowwhen.forecast' has no attribute {name!r}")
