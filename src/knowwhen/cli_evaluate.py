"""The evaluation commands of the `knowwhen` CLI: evaluate, novelty, report, explain."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .cli import DATA_FORMAT, DATA_OPTION, SKIP_BAD, _open, app, handle_errors, parse_pairs
from .errors import ConfigError
from .report.text import format_summary


@app.command()
@handle_errors
def evaluate(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    data: str = typer.Argument(..., help="Labelled images: a path or built-in name. For the run's own training "
                               "data, its test split and held-out classes are used."),
    out: Path = typer.Option(..., "--out", help="Folder for metrics.json and the CSV tables."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes per image; 0 for deterministic only."),
    seed: int = typer.Option(0, help="Seed of the dropout masks."),
    novel: Optional[str] = typer.Option(None, help="Images of classes the run never saw (all counted as novel)."),
    no_temperature: bool = typer.Option(False, "--no-temperature", help="Ignore the run's fitted temperature."),
    batch_size: int = typer.Option(512, help="Images per batch."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Evaluate a run: accuracy with intervals, calibration, novelty (AUROC) and selective prediction.

    Example: knowwhen evaluate runs/fmnist fashion-mnist --mc 100 --out eval/
    """
    from .checkpoint import load_run
    from .evaluate import evaluate_run

    loaded = load_run(run)
    ds = _open(data, fmt, option, skip_bad)
    novel_ds = _open(novel, fmt, option, skip_bad) if novel else None
    summary = evaluate_run(loaded, ds, out, mc or None, seed, novel_ds, not no_temperature, batch_size, not quiet)
    typer.echo(format_summary(summary))
    typer.echo(f"wrote {out}/metrics.json, the tables beside it and the report {out}/report.html")


@app.command()
@handle_errors
def novelty(
    data: str = typer.Argument(..., help="Labelled images: a path or built-in name."),
    out: Path = typer.Option(..., "--out", help="Folder for the runs, evaluations and novelty.csv."),
    classes: str = typer.Option("all", help="Classes to hold out one at a time: all, or A,B,..."),
    model: str = typer.Option("cnn", help="Model name (see `knowwhen models`)."),
    epochs: int = typer.Option(5, help="Epochs per class."),
    batch_size: int = typer.Option(128, help="Images per batch."),
    lr: float = typer.Option(1e-3, help="Learning rate."),
    dropout: Optional[float] = typer.Option(None, help="Dropout rate before the dense layers."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes per image."),
    seed: int = typer.Option(0, help="Seed for splits, training and dropout masks."),
    max_minutes: Optional[float] = typer.Option(None, help="Training time limit per class, in minutes."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Leave-one-class-out novelty detection: for each class, train without it and score it as novel.

    Resumable: classes already done are skipped when the command is run again.

    Example: knowwhen novelty fashion-mnist --model cnn --classes Shirt,Bag --epochs 3 --out novelty/
    """
    from .config import DataConfig, ModelConfig, TrainConfig
    from .novelty_experiment import auroc_table, novelty_experiment

    args = {"dropout": dropout} if dropout is not None else {}
    config = TrainConfig(DataConfig(data, fmt, parse_pairs(option, "--option")), ModelConfig(model, args),
                         epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_minutes=max_minutes,
                         progress=not quiet)
    chosen = None if classes == "all" else [c.strip() for c in classes.split(",") if c.strip()]
    rows = novelty_experiment(config, out, chosen, mc, seed, progress=not quiet)
    typer.echo(auroc_table(rows))
    typer.echo(f"wrote {out}/novelty.csv")


@app.command()
@handle_errors
def report(
    eval_dir: Path = typer.Argument(..., help="Folder written by `knowwhen evaluate` or `knowwhen forecast evaluate`."),
    novelty_table: Optional[Path] = typer.Option(None, help="A leave-one-class-out novelty.csv to show as a heat map "
                                                 "(default: the one of `knowwhen novelty` two folders up, if any)."),
):
    """Rebuild report.html from the numbers an evaluation saved (no images are predicted again).

    Example: knowwhen report eval/
    """
    from .report.build import build_report

    typer.echo(f"wrote {build_report(eval_dir, novelty_table)}")


@app.command()
@handle_errors
def explain(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNG files."),
    image: Optional[Path] = typer.Option(None, help="One image file (PNG, JPEG, TIFF) for the activation maps."),
    index: Optional[int] = typer.Option(None, help="Index of the image in --data for the activation maps."),
    data: Optional[str] = typer.Option(None, help="Dataset that --index points into."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
):
    """Write first-layer filters, activation maps for one image, and class-maximising inputs as PNG files.

    Example: knowwhen explain runs/fmnist --index 0 --data fashion-mnist --out explain/
    """
    from .checkpoint import load_run
    from .report.explain import write_explanations

    loaded = load_run(run)
    picture = None
    if image is not None:
        from .data.images import decoded_image

        picture = decoded_image(image).astype("float32")
    elif index is not None:
        if data is None:
            raise ConfigError("--index needs --data DATA (the dataset it points into).")
        ds = _open(data, fmt, option, False)
        if not 0 <= index < len(ds):
            raise ConfigError(f"--index {index}: {data} holds {len(ds)} images; use 0..{len(ds) - 1}.")
        picture = ds.images([index])[0]
    if picture is not None and tuple(picture.shape) != tuple(loaded.input_shape):
        raise ConfigError(f"the image is {tuple(picture.shape)} (C, H, W) but the run expects "
                          f"{tuple(loaded.input_shape)}.")
    for path in write_explanations(loaded, out, picture):
        typer.echo(f"wrote {path}")
