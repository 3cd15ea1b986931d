"""The training and prediction commands of the `knowwhen` CLI; each builds a config, calls one API function
and prints."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .cli import DATA_FORMAT, DATA_OPTION, SKIP_BAD, _open, app, handle_errors, parse_pairs
from .errors import ConfigError
from .report.text import format_summary


def _clip(text: Optional[str]):
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ConfigError(f"--clip-percentiles {text!r}: write LOW,HIGH, e.g. 0.1,99.9.")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"--clip-percentiles {text!r}: LOW and HIGH must be numbers, e.g. 0.1,99.9.") from None


@app.command()
@handle_errors
def train(
    data: str = typer.Argument(..., help="Path to images (file or folder) or a built-in name: digits, fashion-mnist."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    model: str = typer.Option("cnn", help="Model name (see `knowwhen models`)."),
    epochs: int = typer.Option(10, help="Maximum number of epochs."),
    batch_size: int = typer.Option(128, help="Images per batch."),
    lr: float = typer.Option(1e-3, help="Learning rate."),
    optimizer: str = typer.Option("adam", help="adam or sgd."),
    momentum: float = typer.Option(0.9, help="SGD momentum."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay."),
    loss: str = typer.Option("cross_entropy", help="cross_entropy or hinge (multi-class SVM)."),
    patience: int = typer.Option(5, help="Early stopping: epochs without a better validation loss; 0 disables."),
    seed: int = typer.Option(0, help="Seed for splits, initialisation, shuffling and augmentation."),
    dropout: Optional[float] = typer.Option(None, help="Dropout rate before the dense layers."),
    model_arg: List[str] = typer.Option(None, "--model-arg", help="Model argument KEY=VALUE; repeatable."),
    val_fraction: float = typer.Option(0.1, help="Fraction of the non-test images used for validation."),
    test_fraction: float = typer.Option(0.2, help="Fraction held out for testing (unless the data has a test split)."),
    holdout_class: List[str] = typer.Option(None, "--holdout-class", help="Class kept out of training as 'novel'; repeatable."),
    clip_percentiles: Optional[str] = typer.Option(None, help="Clip each channel at LOW,HIGH percentiles, e.g. 0.1,99.9."),
    rotate: float = typer.Option(0.0, help="Augmentation: max rotation in degrees."),
    zoom: float = typer.Option(0.0, help="Augmentation: max relative zoom."),
    shear: float = typer.Option(0.0, help="Augmentation: max shear in degrees."),
    shift: float = typer.Option(0.0, help="Augmentation: max shift as a fraction of the size."),
    hflip: bool = typer.Option(False, help="Augmentation: random left-right flips."),
    vflip: bool = typer.Option(False, help="Augmentation: random up-down flips."),
    max_minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes (best epoch kept)."),
    workers: int = typer.Option(0, help="DataLoader worker processes (0 reads in the main process)."),
    devices: int = typer.Option(1, help="Processes (CPU) or GPUs per node for distributed data parallel."),
    num_nodes: int = typer.Option(1, help="Machines (nodes) for distributed data parallel."),
    strategy: str = typer.Option("auto", help="auto, ddp or ddp_spawn (Lightning's distributed strategies)."),
    accelerator: str = typer.Option("cpu", help="cpu, gpu or auto."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out (repeat the same options)."),
    overwrite: bool = typer.Option(False, help="Replace a run already in --out."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Train a model and save the run.

    Example: knowwhen train fashion-mnist --model cnn --epochs 10 --out runs/fmnist --holdout-class Shirt
    """
    from .config import AugmentConfig, DataConfig, ModelConfig, TrainConfig
    from .training import train as train_run

    args = parse_pairs(model_arg, "--model-arg")
    if dropout is not None:
        args["dropout"] = dropout
    config = TrainConfig(
        DataConfig(data, fmt, parse_pairs(option, "--option"), val_fraction, test_fraction,
                   tuple(holdout_class or ()), _clip(clip_percentiles), skip_bad),
        ModelConfig(model, args), AugmentConfig(rotate, zoom, shear, shift, hflip, vflip),
        optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, loss=loss, epochs=epochs,
        batch_size=batch_size, patience=patience or None, seed=seed, max_minutes=max_minutes, progress=not quiet,
        num_workers=workers, devices=devices, num_nodes=num_nodes, strategy=strategy, accelerator=accelerator)
    run_dir = train_run(config, out, resume=resume, overwrite=overwrite)
    if run_dir is not None:  # None on the other ranks of a distributed run
        _print_result(run_dir)


def _print_result(run_dir: Path) -> None:
    from .checkpoint import read_config

    payload = read_config(run_dir)
    m = payload.get("metrics", {})
    parts = [f"{k} {m[k]:.4f}" for k in ("val_acc", "test_acc") if k in m]
    typer.echo(f"saved run {run_dir} (best epoch {m.get('best_epoch')}, {m.get('epochs_run')} epochs, "
               f"{payload.get('train_seconds', 0):.0f} s): {', '.join(parts) or 'no held-out images'}")


@app.command()
@handle_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    data: str = typer.Argument(..., help="Images to predict: a path or built-in name."),
    out: Path = typer.Option(..., "--out", help="CSV or .parquet to write: id, label, pred, p_max, [MC measures], "
                             "prob_<class>. Killed, the same command resumes from the last finished part."),
    mc: Optional[int] = typer.Option(None, "--mc", help="MC-dropout passes per image (e.g. 100); adds the "
                                     "uncertainty columns and makes prob_<class> the MC mean."),
    seed: int = typer.Option(0, help="Seed of the dropout masks (results do not depend on --batch-size)."),
    no_temperature: bool = typer.Option(False, "--no-temperature", help="Ignore the run's fitted temperature."),
    save_passes: Optional[Path] = typer.Option(None, help="Also save every MC pass as a (T, N, K) .npy (small sets)."),
    batch_size: int = typer.Option(512, help="Images per batch."),
    part_size: int = typer.Option(100_000, help="Images per part file (the unit of resuming)."),
    devices: int = typer.Option(1, help="Processes (CPU) or GPUs per node; each predicts its share of the parts."),
    num_nodes: int = typer.Option(1, help="Machines (nodes)."),
    accelerator: str = typer.Option("cpu", help="cpu, gpu or auto."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Predict every image and write one CSV row per image, with MC-dropout uncertainty when --mc is given.

    Example: knowwhen predict runs/fmnist fashion-mnist --mc 100 --out predictions.csv
    """
    from .checkpoint import load_run
    from .prediction import write_predictions

    loaded = load_run(run)
    ds = _open(data, fmt, option, skip_bad)
    shard, barrier, device = _processes(devices, num_nodes, accelerator)
    write_predictions(loaded, ds, out, batch_size, not quiet, mc, seed, not no_temperature, save_passes, part_size,
                      shard, barrier, device)
    if shard[0] == 0:
        typer.echo(f"wrote {len(ds)} predictions to {out}")


def _processes(devices: int, num_nodes: int, accelerator: str):
    """(rank, world), a barrier and the device of this process.

    Started by torchrun (WORLD_SIZE set), the ranks join one gloo group. With --devices / --num-nodes,
    Lightning Fabric launches the processes (and picks each one's GPU); with neither, one process.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and devices == 1 and num_nodes == 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        return (dist.get_rank(), dist.get_world_size()), dist.barrier, "cpu"
    if devices * num_nodes == 1 and accelerator == "cpu":
        return (0, 1), None, "cpu"
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                    strategy="ddp" if devices * num_nodes > 1 else "auto")
    fabric.launch()
    return (fabric.global_rank, fabric.world_size), fabric.barrier, fabric.device


@app.command()
@handle_errors
def info(run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`.")):
    """Show a run: the model with parameter counts, the data it saw, its metrics.

    Example: knowwhen info runs/fmnist
    """
    from .checkpoint import load_run, read_config

    if read_config(run).get("task") == "forecast":
        from .cli_forecast import _print_run

        return _print_run(run, full=True)
    loaded = load_run(run)
    data = loaded.info.get("data", {})
    typer.echo(f"run {loaded.path}  (knowwhen {loaded.info.get('knowwhen_version')}, "
               f"format {loaded.info.get('format_version')})")
    typer.echo(f"model {loaded.config.model.name} {loaded.config.model.args or ''}\n{loaded.summary()}")
    typer.echo(f"classes ({len(loaded.class_names)}): {', '.join(loaded.class_names)}")
    typer.echo(f"data {data.get('source')} [{data.get('format')}], {data.get('images')} images, "
               f"split {data.get('sizes')}, held out: {', '.join(data.get('holdout_classes', [])) or 'none'}")
    for key, value in loaded.metrics.items():
        typer.echo(f"  {key:<14} {value:.4f}" if isinstance(value, float) else f"  {key:<14} {value}")
    norm = loaded.normalizer
    clip = "" if norm.clip_low is None else f", clipped to {_fmt(norm.clip_low)}..{_fmt(norm.clip_high)}"
    typer.echo(f"normalisation per channel: mean {_fmt(norm.mean)}, std {_fmt(norm.std)}{clip}")
    typer.echo(f"temperature {loaded.temperature:.4f} (fitted on the validation logits; applied by predict)")
    typer.echo(f"training time {loaded.info.get('train_seconds', 0):.1f} s")


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


@app.command()
@handle_errors
def models():
    """List the registered models and their arguments.

    Example: knowwhen models
    """
    from .models import list_models, model_args

    for name in list_models():
        typer.echo(f"{name:<8} " + ", ".join(f"{k}={v!r}" for k, v in model_args(name).items()))


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo's run and evaluation."),
    epochs: int = typer.Option(3, help="Epochs to train."),
    max_minutes: float = typer.Option(4.0, help="Training time limit in minutes."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes per image."),
    forecast_epochs: int = typer.Option(150, help="Epochs for the sunspots forecaster; 0 skips the forecast part."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Train the course's CNN on Fashion-MNIST (digits when it is not installed) without one class, then
    report accuracy, calibration, novelty AUROC and selective accuracy with MC dropout; then forecast the
    yearly sunspots with MC-dropout intervals.

    Example: knowwhen demo --out demo-output
    """
    from .demo import run_demo, run_forecast_demo
    from .sequences.evaluate import format_forecast_summary

    result = run_demo(out, epochs=epochs, max_minutes=max_minutes, mc=mc, progress=not quiet, echo=typer.echo)
    typer.echo(format_summary(result))
    typer.echo(f"run in {result['run']}; predictions and tables in {result['eval']}")
    typer.echo(f"report: {Path(result['eval']) / 'report.html'}")
    if forecast_epochs:
        fc = run_forecast_demo(out, epochs=forecast_epochs, mc=mc, progress=not quiet, echo=typer.echo)
        typer.echo(format_forecast_summary(fc))
        typer.echo(f"forecast report: {Path(fc['eval']) / 'report.html'}")
