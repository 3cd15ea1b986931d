"""The demo: the course's CNN on Fashion-MNIST (or digits) with one class held out, then MC dropout; and a
forecaster of the yearly sunspots with MC-dropout intervals."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .data.builtin import fashion_mnist_available


def run_demo(out: str | Path, epochs: int = 3, max_minutes: float = 4.0, mc: int = 100, progress: bool = True,
             echo: Callable[[str], None] = print) -> dict:
    """Trains `cnn` without one class, reloads it and evaluates it with MC dropout; returns the summary.

    Fashion-MNIST holds out "Shirt" (the class the course's network finds hardest); digits holds out "9".
    """
    from .classify import ConformalOptions, evaluate_run, load_run, train
    from .config import DataConfig, ModelConfig, TrainConfig
    from .data import open_dataset

    out = Path(out)
    name, held_out = ("fashion-mnist", "Shirt") if fashion_mnist_available() else ("digits", "9")
    if name == "digits":
        echo("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using scikit-learn's digits.")
    echo(f"training the course's CNN on {name} without class {held_out!r} "
         f"for up to {epochs} epochs / {max_minutes:g} minutes")
    ds = open_dataset(name)
    config = TrainConfig(DataConfig(name, holdout_classes=(held_out,)), ModelConfig("cnn"), epochs=epochs,
                         max_minutes=max_minutes, progress=progress, calibration_mc=mc)
    run = load_run(train(config, out / "run", dataset=ds, overwrite=True))
    echo(f"MC dropout with {mc} passes on the test images and the held-out class, with 90% conformal sets")
    summary = evaluate_run(run, ds, out / "eval", mc=mc, progress=progress, conformal=ConformalOptions("aps", 0.1))
    return {"dataset": name, "held_out": held_out, "run": str(run.path), "eval": str(out / "eval"), **summary}


def run_forecast_demo(out: str | Path, epochs: int = 150, mc: int = 100, progress: bool = True,
                      echo: Callable[[str], None] = print) -> dict:
    """Trains `tcn` on the square root of the yearly sunspots (1700-2008), evaluates its one-to-three-year
    forecasts on the last 20% with MC dropout, and writes the forecast report; returns the summary."""
    from .config import ForecastConfig, ModelConfig, SeriesConfig
    from .forecast import evaluate_forecaster, load_forecaster, train_forecaster

    out = Path(out)
    echo(f"forecasting the yearly sunspots 1-3 years ahead with a causal convolutional net (up to {epochs} epochs)")
    config = ForecastConfig(SeriesConfig("sunspots", transform="sqrt"), ModelConfig("tcn", {"kernel_size": 3}),
                            window=24, horizon=3, lr=3e-3, epochs=epochs, patience=30, progress=progress)
    run = load_forecaster(train_forecaster(config, out / "forecast-run", overwrite=True))
    echo(f"MC dropout with {mc} passes on the test years")
    summary = evaluate_forecaster(run, out / "forecast-eval", passes=mc, progress=progress)
    return {"run": str(run.path), "eval": str(out / "forecast-eval"), **summary}
