"""`knowwhen forecast ...`: train, predict, evaluate and describe forecasters of time series."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .app import (LR, MAX_MINUTES, OPTIMIZER, OVERWRITE, QUIET, RESUME, WEIGHT_DECAY, app, handle_errors,
                  parse_pairs)

forecast_app = typer.Typer(no_args_is_help=True, help="Forecast time series with MC-dropout intervals: "
                           "train, predict, evaluate, info.")
app.add_typer(forecast_app, name="forecast")

OWN_SERIES = typer.Argument(None, help="The series to forecast (default: the run's own training series).")
RUN = typer.Argument(..., help="Run directory made by `knowwhen forecast train`.")
SEED = typer.Option(0, help="Seed of the dropout masks and the noise draws.")
BATCH = typer.Option(64, "--batch-size", help="Windows forecast at once; the numbers do not depend on it (to float32 "
                     "rounding).")
MC = typer.Option(100, "--mc", help="MC-dropout passes per window; 0 for the forecast with dropout off only.")
NO_NOISE = typer.Option(False, "--no-noise", help="Interval from the MC passes alone, without the observation noise "
                        "estimated on the validation residuals.")


@forecast_app.command("train")
@handle_errors
def train(
    data: Optional[str] = typer.Argument(None, help="A CSV (a time column, then value columns) or a built-in series: "
                                         "sunspots, nile, co2. Leave out with --resume: the run's saved settings."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    model: str = typer.Option("gru", help="tcn, rnn, gru or lstm (see `knowwhen models`)."),
    window: int = typer.Option(48, help="Past time steps the model sees."),
    horizon: int = typer.Option(1, help="Future time steps forecast from each window."),
    multistep: str = typer.Option("direct", help="direct (all steps at once) or recursive (one step, fed back)."),
    stateful: bool = typer.Option(False, help="rnn/gru/lstm: carry the hidden state across consecutive segments "
                                  "of the series in training, and over the whole history when forecasting."),
    loss: str = typer.Option("mse", help="mse, mae, huber or logcosh."),
    huber_delta: float = typer.Option(1.0, help="Huber's delta, in scaled (standardised) units."),
    epochs: Optional[int] = typer.Option(None, help="Maximum number of epochs [default: 100; with --resume alone: "
                                         "the run's own]."),
    batch_size: int = typer.Option(32, help="Windows per batch."),
    lr: float = LR,
    optimizer: str = OPTIMIZER,
    weight_decay: float = WEIGHT_DECAY,
    patience: int = typer.Option(10, help="Early stopping: epochs without a better validation loss; 0 disables."),
    seed: int = typer.Option(0, help="Seed for initialisation, shuffling and dropout."),
    dropout: Optional[float] = typer.Option(None, help="Dropout rate (recurrent models: on the inputs; set "
                                            "recurrent_dropout with --model-arg)."),
    model_arg: List[str] = typer.Option(None, "--model-arg", help="Model argument KEY=VALUE (hidden, "
                                        "recurrent_dropout, layer_norm, width, levels, kernel_size); repeatable; "
                                        "true/false for flags."),
    time_column: Optional[str] = typer.Option(None, help="The CSV's time column (default: the first)."),
    columns: Optional[str] = typer.Option(None, help="Value columns A,B,... (default: all but the time column)."),
    target: Optional[str] = typer.Option(None, help="The column to forecast (default: the first value column)."),
    fill: Optional[str] = typer.Option(None, help="interpolate: fill missing values linearly instead of stopping."),
    allow_gaps: bool = typer.Option(False, help="Accept irregular time steps instead of stopping."),
    transform: Optional[str] = typer.Option(None, help="sqrt or log1p: learn the transformed series (counts, growth); "
                                            "forecasts and metrics come back in the series' units."),
    val_fraction: float = typer.Option(0.1, help="Fraction of the series (before the test part) for validation."),
    test_fraction: float = typer.Option(0.2, help="The last fraction of the series, kept for testing."),
    max_minutes: Optional[float] = MAX_MINUTES,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
):
    """Train a forecaster on the earlier part of a series and save the run.

    Example: knowwhen forecast train sunspots --model gru --window 24 --horizon 3 --transform sqrt --out runs/sun

    After a crash: knowwhen forecast train --resume --out runs/sun
    """
    from ..config import ForecastConfig, ModelConfig, SeriesConfig
    from ..errors import ConfigError
    from ..forecast import load_forecaster, train_forecaster
    from ..forecast.train import resume_forecaster
    from ..report.text import describe_forecaster

    if data is None:
        if not resume:
            raise ConfigError("SERIES is missing: give the series to train on (e.g. knowwhen forecast train sunspots "
                              "--out runs/sun), or continue a run with --resume --out RUN.")
        return typer.echo(describe_forecaster(load_forecaster(resume_forecaster(out, epochs, not quiet))))

    args = parse_pairs(model_arg, "--model-arg")
    if dropout is not None:
        args["dropout"] = dropout
    config = ForecastConfig(
        SeriesConfig(data, time_column, tuple(columns.split(",")) if columns else (), target, fill, allow_gaps,
                     transform, val_fraction, test_fraction),
        ModelConfig(model, args), window, horizon, multistep, stateful, loss, huber_delta, optimizer=optimizer, lr=lr,
        weight_decay=weight_decay, epochs=epochs or 100, batch_size=batch_size, patience=patience or None, seed=seed,
        max_minutes=max_minutes, progress=not quiet)
    run_dir = train_forecaster(config, out, resume=resume, overwrite=overwrite)
    typer.echo(describe_forecaster(load_forecaster(run_dir)))


@forecast_app.command("predict")
@handle_errors
def predict(
    run: Path = RUN,
    data: Optional[str] = OWN_SERIES,
    out: Path = typer.Option(..., "--out", help="The CSV to write (one row per window and step)."),
    mc: int = MC,
    seed: int = SEED,
    origins: str = typer.Option("last", help="last: forecast past the end of the series; test: every window of the "
                                "test part; all: every window with a full horizon."),
    no_noise: bool = NO_NOISE,
    batch_size: int = BATCH,
    quiet: bool = QUIET,
):
    """Forecast with MC dropout: per step the mean, std, 5%/95% quantiles of the passes and the 90% interval.

    Example: knowwhen forecast predict runs/sun --mc 100 --origins last --out forecast.csv
    """
    from ..forecast import ForecastOptions, predict_forecasts, write_forecast_csv

    options = ForecastOptions(passes=mc, seed=seed, noise=not no_noise, batch_size=batch_size, progress=not quiet)
    loaded, series = _run_and_series(run, data)
    sf = predict_forecasts(loaded, series, origins, options)
    write_forecast_csv(sf, out)
    typer.echo(f"wrote {len(sf.actual)} window(s) x {sf.actual.shape[1]} step(s) of forecasts to {out}")


@forecast_app.command("evaluate")
@handle_errors
def evaluate(
    run: Path = RUN,
    data: Optional[str] = OWN_SERIES,
    out: Path = typer.Option(..., "--out", help="Folder for metrics.json, forecast.csv, per_horizon.csv, report.html."),
    mc: int = MC,
    seed: int = SEED,
    season: Optional[int] = typer.Option(None, help="Seasonal-naive period in steps (default: 11 for sunspots, 52 "
                                         "for co2, none otherwise; 0 leaves it out)."),
    no_noise: bool = NO_NOISE,
    batch_size: int = BATCH,
    quiet: bool = QUIET,
):
    """Score the test part (MAE, RMSE, CRPS, 90% interval coverage) against persistence and seasonal naive.

    Writes metrics.json, forecast.csv, per_horizon.csv, series.csv and report.html to --out.

    Example: knowwhen forecast evaluate runs/sun --mc 100 --out eval/sun
    """
    from ..forecast import ForecastOptions, evaluate_forecaster, format_forecast_summary

    options = ForecastOptions(passes=mc, seed=seed, noise=not no_noise, batch_size=batch_size, progress=not quiet)
    loaded, series = _run_and_series(run, data)
    summary = evaluate_forecaster(loaded, out, series, options, season)
    typer.echo(format_forecast_summary(summary))
    from ..report.build import build_report

    page = build_report(out)
    typer.echo(f"wrote {out}/metrics.json, forecast.csv, per_horizon.csv and the report {page}")


@forecast_app.command("info")
@handle_errors
def info(run: Path = RUN):
    """Describe a forecaster: model, series, window and horizon, scaling, noise estimate, metrics.

    Example: knowwhen forecast info runs/sun
    """
    from ..forecast import load_forecaster
    from ..report.text import describe_forecaster

    typer.echo(describe_forecaster(load_forecaster(run), full=True))


def _run_and_series(run: Path, data: str | None):
    """The forecaster and the series DATA names (None: the run's own, opened by the API)."""
    from ..forecast import load_forecaster

    loaded = load_forecaster(run)
    return loaded, loaded.open_series(data) if data else None
