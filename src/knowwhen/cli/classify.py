"""The image-classification commands: train, conformal, refit, novelty (leave-one-class-out); predict and
evaluate are in `predict.py`.

Each builds a config or options object, calls one public function of `knowwhen.classify` and prints.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from ..report.text import epoch_number
from .app import (ALPHA, BY_CLASS, CROP_SIZE, DATA_FORMAT, DATA_OPTION, EDGE, LABEL_COLUMN, LR, MAX_MINUTES,
                  OBJECTS, OPTIMIZER, OVERWRITE, QUIET, RESUME, SKIP_BAD, WEIGHT_DECAY, app, data_options,
                  handle_errors, open_data, parse_pairs)


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
    data: Optional[str] = typer.Argument(None, help="Path to images (file or folder) or a built-in name: digits, "
                                         "fashion-mnist. Leave out with --resume: the run's saved settings are used."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    model: str = typer.Option("cnn", help="Model name (see `knowwhen models`)."),
    epochs: Optional[int] = typer.Option(None, help="Maximum number of epochs [default: 10; with --resume alone: "
                                         "the run's own]."),
    batch_size: int = typer.Option(128, help="Images per batch."),
    lr: float = LR,
    optimizer: str = OPTIMIZER,
    momentum: float = typer.Option(0.9, help="SGD momentum."),
    weight_decay: float = WEIGHT_DECAY,
    loss: str = typer.Option("cross_entropy", help="cross_entropy or hinge (multi-class SVM)."),
    patience: int = typer.Option(5, help="Early stopping: epochs without a better validation loss; 0 disables."),
    seed: int = typer.Option(0, help="Seed for splits, initialisation, shuffling and augmentation."),
    dropout: Optional[float] = typer.Option(None, help="Dropout rate before the dense layers."),
    model_arg: List[str] = typer.Option(None, "--model-arg", help="Model argument KEY=VALUE; repeatable. Tuples as "
                                        "widths=16,32 or 'widths=(16,32)' or 'widths=[16,32]' (see `knowwhen models`)."),
    val_fraction: float = typer.Option(0.1, help="Fraction of the non-test images used for validation."),
    test_fraction: float = typer.Option(0.2, help="Fraction held out for testing (unless the data has a test split)."),
    calibration_fraction: float = typer.Option(0.1, help="Fraction of the non-test images kept apart to calibrate "
                                               "conformal prediction sets (0: none)."),
    calibration_mc: int = typer.Option(100, help="MC passes over the calibration images, for sets on the MC mean "
                                       "(predict with the same --mc); 0: softmax only."),
    holdout_class: List[str] = typer.Option(None, "--holdout-class", help="Class kept out of training as 'novel'; repeatable."),
    clip_percentiles: Optional[str] = typer.Option(None, help="Clip each channel at LOW,HIGH percentiles, e.g. 0.1,99.9."),
    rotate: float = typer.Option(0.0, help="Augmentation: max rotation in degrees."),
    zoom: float = typer.Option(0.0, help="Augmentation: max relative zoom."),
    shear: float = typer.Option(0.0, help="Augmentation: max shear in degrees."),
    shift: float = typer.Option(0.0, help="Augmentation: max shift as a fraction of the size."),
    hflip: bool = typer.Option(False, help="Augmentation: random left-right flips."),
    vflip: bool = typer.Option(False, help="Augmentation: random up-down flips."),
    max_minutes: Optional[float] = MAX_MINUTES,
    workers: int = typer.Option(0, help="DataLoader worker processes (0 reads in the main process)."),
    devices: int = typer.Option(1, help="Processes (CPU) or GPUs per node for distributed data parallel."),
    num_nodes: int = typer.Option(1, help="Machines (nodes) for distributed data parallel."),
    strategy: str = typer.Option("auto", help="auto, ddp or ddp_spawn (Lightning's distributed strategies)."),
    ensemble: int = typer.Option(1, help="Train a deep ensemble of this many members (different seeds for "
                                 "initialisation and data order, one split); prediction samples every pass of "
                                 "every member."),
    ensemble_jobs: int = typer.Option(1, help="Ensemble members trained at once, each in its own process (its "
                                      "share of the CPU threads, or one GPU each where there are several)."),
    accelerator: str = typer.Option("cpu", help="cpu, gpu or auto."),
    objects: Optional[Path] = OBJECTS,
    crop_size: Optional[int] = CROP_SIZE,
    edge: str = EDGE,
    label_column: Optional[str] = LABEL_COLUMN,
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
):
    """Train a model and save the run.

    Example: knowwhen train fashion-mnist --model cnn --epochs 10 --out runs/fmnist --holdout-class Shirt

    After a crash: knowwhen train --resume --out runs/fmnist

    A deep ensemble of 5 members, 2 training at once: ... --ensemble 5 --ensemble-jobs 2
    """
    from ..classify import train as train_run
    from ..classify.train_run import resume_training
    from ..config import AugmentConfig, DataConfig, ModelConfig, TrainConfig
    from ..data import FieldOptions

    if data is None:
        if not resume:
            raise ConfigError("DATA is missing: give the images to train on (e.g. knowwhen train fashion-mnist --out "
                              "runs/f), or continue a run with --resume --out RUN.")
        run_dir = resume_training(out, epochs, not quiet, ensemble_jobs)
        return _print_result(run_dir) if run_dir is not None else None

    args = parse_pairs(model_arg, "--model-arg")
    if dropout is not None:
        args["dropout"] = dropout
    config = TrainConfig(
        DataConfig(data, fmt, data_options(option, FieldOptions(objects=objects, crop_size=crop_size, edge=edge,
                                                                label_column=label_column)), val_fraction, test_fraction,
                   tuple(holdout_class or ()), _clip(clip_percentiles), skip_bad, calibration_fraction),
        ModelConfig(model, args), AugmentConfig(rotate, zoom, shear, shift, hflip, vflip),
        optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, loss=loss, epochs=10 if epochs is None else epochs,
        batch_size=batch_size, patience=patience or None, seed=seed, max_minutes=max_minutes, progress=not quiet,
        num_workers=workers, devices=devices, num_nodes=num_nodes, strategy=strategy, accelerator=accelerator,
        calibration_mc=calibration_mc, ensemble=ensemble)
    run_dir = train_run(config, out, resume=resume, overwrite=overwrite, jobs=ensemble_jobs)
    if run_dir is not None:  # None on the other ranks of a distributed run
        _print_result(run_dir)


def _print_result(run_dir: Path) -> None:
    from ..training.rundir import read_config

    payload = read_config(run_dir)
    m = payload.get("metrics", {})
    parts = [f"{k} {m[k]:.4f}" for k in ("val_acc", "test_acc") if k in m]
    typer.echo(f"saved run {run_dir} (best epoch {epoch_number(m)} of {m.get('epochs_run')}, "
               f"{payload.get('train_seconds', 0):.0f} s): {', '.join(parts) or 'no held-out images'}")
    cut = m.get("stopped_at_time_limit")
    if cut:
        typer.echo(f"  stopped by the time limit ({cut['max_minutes']:g} min) in epoch {cut['epoch']} of "
                   f"{cut['of_epochs']}, after {cut['batches']} of its {cut['of_batches']} batches")


@app.command("conformal")
@handle_errors
def calibrate(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    data: str = typer.Argument(..., help="Labelled images the run never trained on (e.g. a new plate's controls); "
                               "for the run's own training data, its calibration split is used."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes for the MC mean (predict with the same --mc); 0: "
                           "softmax only."),
    seed: int = typer.Option(0, help="Seed of the dropout masks (predict with the same --seed)."),
    method: str = typer.Option("aps", help="Score whose thresholds are printed: lac, aps or raps."),
    alpha: Optional[float] = ALPHA,
    by_class: bool = BY_CLASS,
    allow_training_images: bool = typer.Option(False, help="Calibrate on DATA even when it holds images the run "
                                               "trained on (their sets come out too small)."),
    batch_size: int = typer.Option(512, help="Images read at once (the network runs on blocks of 512 whatever it "
                                    "is, so results do not depend on it)."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = QUIET,
):
    """Calibrate a run's conformal sets on labelled images: their probabilities replace the run's calibration
    images (alpha and score are chosen later, at predict / evaluate).

    Example: knowwhen conformal runs/deeploc plate7_controls.h5 --mc 100
    """
    import dataclasses

    from ..classify import load_run
    from ..classify.sets import ConformalOptions, calibrate_run, run_sets
    from ..uncertainty.conformal import METHODS

    if method not in METHODS:  # checked before the calibration is computed and saved
        raise ConfigError(f"--method {method!r}: use one of {', '.join(METHODS)}.")
    alpha = 0.1 if alpha is None else alpha
    options = ConformalOptions(method=method, alpha=alpha, by_class=by_class)  # checked before the calibration too
    loaded = load_run(run)
    cal = calibrate_run(loaded, open_data(data, fmt, option, skip_bad), mc, seed, batch_size, not quiet,
                        allow_training_images)
    typer.echo(f"calibrated {run} on {cal.info['images']} images of {cal.info['source']} "
               f"(softmax{' and the MC mean of ' + str(mc) + ' passes' if mc else ''})")
    for probs in cal.probs:
        sets = run_sets(loaded, dataclasses.replace(options, probs=probs), mc or None, seed)
        t = sets.describe()["threshold"]
        shown = f"{t:.4g}" if isinstance(t, float) else "per class " + ", ".join(f"{v:.4g}" for v in t)
        typer.echo(f"  {method} on {probs}, alpha {alpha:g}: threshold {shown}")


@app.command()
@handle_errors
def refit(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    data: Optional[str] = typer.Argument(None, help="The data the run was trained on, if it moved [default: the "
                                         "path the run saved]; recognised by content."),
    parts: Optional[str] = typer.Option(None, help="Parts to fit again, A,B: features, reference, calibration "
                                        "[default: those the run lacks]."),
    mc: Optional[int] = typer.Option(None, "--mc", help="MC passes for the reference and calibration scores "
                                     "[default: the run's --calibration-mc]."),
    fuse: Optional[str] = typer.Option(None, help="Measures the fused novelty score combines, A,B,... (A|B: one "
                                       "family seen two ways, the smaller p-value doubled), or 'default' (one per "
                                       "family); refits the reference [default: the run's choice]."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = QUIET,
):
    """Fit the post-hoc parts a run lacks (feature statistics, the reference scores of the fused novelty score,
    conformal calibration) from its own data, without retraining; nothing else in the run changes. --fuse chooses
    what the novelty score combines (docs/uncertainty.md shows the measured trade-offs).

    Example: knowwhen refit runs/fmnist-2025 --fuse mutual_info_mc,p_max,energy,mahalanobis_tie,own_mahalanobis,knn
    """
    from ..classify.posthoc import refit_run

    ds = open_data(data, fmt, option, skip_bad) if data else None
    chosen = [p.strip() for p in parts.split(",") if p.strip()] if parts else None
    from ..classify.posthoc import PARTS

    info = refit_run(run, ds, chosen, mc, not quiet, fuse)
    fitted = [p for p in PARTS if p in info]
    typer.echo(f"refitted {', '.join(fitted)} in {run}" if fitted else f"{run} lacks nothing; nothing refitted")
    if "reference" in info:
        typer.echo(f"novelty fuses {', '.join(info['reference']['fused'])}")


@app.command()
@handle_errors
def novelty(
    data: str = typer.Argument(..., help="Labelled images: a path or built-in name."),
    out: Path = typer.Option(..., "--out", help="Folder for the runs, evaluations and novelty.csv."),
    classes: str = typer.Option("all", help="Classes to hold out one at a time: all, or A,B,..."),
    model: str = typer.Option("cnn", help="Model name (see `knowwhen models`)."),
    epochs: int = typer.Option(5, help="Epochs per class."),
    batch_size: int = typer.Option(128, help="Images per batch."),
    lr: float = LR,
    dropout: Optional[float] = typer.Option(None, help="Dropout rate before the dense layers."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes per image."),
    seed: int = typer.Option(0, help="Seed for splits, training and dropout masks."),
    max_minutes: Optional[float] = typer.Option(None, help="Training time limit per class, in minutes."),
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    quiet: bool = QUIET,
):
    """Leave-one-class-out novelty detection: for each class, train without it and score it as novel.

    Resumable: classes already done are skipped when the command is run again.

    Example: knowwhen novelty fashion-mnist --model cnn --classes Shirt,Bag --epochs 3 --out novelty/
    """
    from ..classify.leave_one_out import auroc_table, novelty_experiment
    from ..config import DataConfig, ModelConfig, TrainConfig

    args = {"dropout": dropout} if dropout is not None else {}
    config = TrainConfig(DataConfig(data, fmt, data_options(option)), ModelConfig(model, args),
                         epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_minutes=max_minutes,
                         progress=not quiet)
    chosen = None if classes == "all" else [c.strip() for c in classes.split(",") if c.strip()]
    rows = novelty_experiment(config, out, chosen, mc, seed, progress=not quiet)
    typer.echo(auroc_table(rows))
    typer.echo(f"wrote {out}/novelty.csv")
