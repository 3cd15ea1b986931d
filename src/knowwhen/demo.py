"""The demo: the course's CNN on Fashion-MNIST (or digits), trained, reloaded and used to predict."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .data.builtin import fashion_mnist_available


def run_demo(out: str | Path, epochs: int = 3, max_minutes: float = 4.0, progress: bool = True,
             echo: Callable[[str], None] = print) -> dict:
    """Trains `cnn`, reloads the run, predicts its test images; returns the numbers it printed."""
    from .checkpoint import load_run
    from .config import DataConfig, ModelConfig, TrainConfig
    from .data import open_dataset
    from .prediction import write_predictions
    from .training import train

    out = Path(out)
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    if name == "digits":
        echo("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using scikit-learn's digits.")
    echo(f"training the course's CNN on {name} for up to {epochs} epochs / {max_minutes:g} minutes")
    ds = open_dataset(name)
    config = TrainConfig(DataConfig(name), ModelConfig("cnn"), epochs=epochs, max_minutes=max_minutes,
                         progress=progress, batch_size=128)
    run_dir = train(config, out / "run", dataset=ds, overwrite=True)
    run = load_run(run_dir)
    echo(run.summary())
    predictions = write_predictions(run, ds, out / "predictions.csv", progress=progress)
    return {"dataset": name, "run": str(run_dir), "predictions": str(predictions), **run.metrics}
