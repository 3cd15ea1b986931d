"""The prediction commands: predict (one row per image) and evaluate (metrics, tables, the report).

Each builds an options object, calls one public function of `knowwhen.classify` and prints; cells cut from fields
(--objects) are opened by `open_data` like any other data.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..report.text import format_summary
from .app import (ALPHA, BY_CLASS, CONFORMAL, CONFORMAL_PROBS, CROP_SIZE, DATA_FORMAT, DATA_OPTION, EDGE,
                  LABEL_COLUMN, MAX_SET_SIZE, OBJECTS, PRECISION, QUIET, SKIP_BAD, app, conformal_options, handle_errors,
                  open_data)


@app.command()
@handle_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`, or an .onnx file or bioimage.io "
                               "package .zip made by `knowwhen export` (its MC passes and seed are the file's)."),
    data: str = typer.Argument(..., help="Images to predict: a path or built-in name."),
    out: Path = typer.Option(..., "--out", help="CSV or .parquet to write: id, label, pred, p_max, [MC measures], "
                             "prob_<class>. Killed, the same command resumes from the last finished part."),
    mc: Optional[int] = typer.Option(None, "--mc", help="MC-dropout passes per image (e.g. 100); adds the "
                                     "uncertainty columns and makes prob_<class> the MC mean."),
    seed: int = typer.Option(0, help="Seed of the dropout masks."),
    no_temperature: bool = typer.Option(False, "--no-temperature", help="Ignore the run's fitted temperature."),
    save_passes: Optional[Path] = typer.Option(None, help="Also save every MC pass as a (T, N, K) .npy (small sets)."),
    batch_size: int = typer.Option(512, help="Images read at once (the network runs on blocks of 512 whatever it "
                                    "is, so results do not depend on it)."),
    precision: str = PRECISION,
    part_size: int = typer.Option(100_000, help="Images per part file (the unit of resuming)."),
    devices: int = typer.Option(1, help="Processes (CPU) or GPUs per node; each predicts its share of the parts."),
    num_nodes: int = typer.Option(1, help="Machines (nodes)."),
    accelerator: str = typer.Option("cpu", help="cpu, gpu or auto."),
    conformal: Optional[str] = CONFORMAL,
    alpha: Optional[float] = ALPHA,
    by_class: bool = BY_CLASS,
    conformal_probs: Optional[str] = CONFORMAL_PROBS,
    max_set_size: Optional[int] = MAX_SET_SIZE,
    objects: Optional[Path] = OBJECTS,
    crop_size: Optional[int] = CROP_SIZE,
    edge: str = EDGE,
    label_column: Optional[str] = LABEL_COLUMN,
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = QUIET,
):
    """Predict every image and write one CSV row per image, with MC-dropout uncertainty when --mc is given.

    Example: knowwhen predict runs/fmnist fashion-mnist --mc 100 --out predictions.csv

    With sets that hold the true class 90% of the time: ... --mc 100 --conformal aps --alpha 0.1
    """
    from ..classify import PredictOptions, load_run, write_predictions
    from ..data import FieldOptions
    from ..distributed import launch_or_join
    from .export import predict_with_onnx

    if run.suffix.lower() in (".onnx", ".zip"):
        given = {"--mc": mc is not None, "--seed": seed != 0, "--no-temperature": no_temperature,
                 "--save-passes": save_passes is not None, "--part-size": part_size != 100_000,
                 "--devices / --num-nodes": devices * num_nodes > 1, "--conformal": conformal is not None,
                 "--precision": precision != "fp32"}
        return predict_with_onnx(run, data, out, batch_size, quiet, [k for k, v in given.items() if v],
                                 (fmt, option, skip_bad))
    sets = conformal_options(conformal, alpha, by_class, conformal_probs, max_set_size)
    options = PredictOptions(mc=mc, seed=seed, use_temperature=not no_temperature, batch_size=batch_size,
                             part_size=part_size, progress=not quiet, passes_out=save_passes, conformal=sets,
                             precision=precision)
    loaded = load_run(run)
    ds = open_data(data, fmt, option, skip_bad, FieldOptions(objects=objects, crop_size=crop_size, edge=edge,
                                                             label_column=label_column), loaded)
    ranks = launch_or_join(devices, num_nodes, accelerator)
    write_predictions(loaded, ds, out, options, ranks)
    if ranks.lead:
        typer.echo(f"wrote {len(ds)} predictions to {out}")


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
    allow_training_images: bool = typer.Option(False, help="Score DATA even when it holds images the run trained "
                                               "on (otherwise refused; the run's own data uses its test split)."),
    novel_classes: Optional[str] = typer.Option(None, help="Classes of DATA the run never saw, A,B,...: scored as "
                                                "novel (another unknown class name is an error)."),
    batch_size: int = typer.Option(512, help="Images read at once (the network runs on blocks of 512 whatever it "
                                    "is, so results do not depend on it)."),
    precision: str = PRECISION,
    conformal: Optional[str] = CONFORMAL,
    alpha: Optional[float] = ALPHA,
    by_class: bool = BY_CLASS,
    conformal_probs: Optional[str] = CONFORMAL_PROBS,
    max_set_size: Optional[int] = MAX_SET_SIZE,
    objects: Optional[Path] = OBJECTS,
    crop_size: Optional[int] = CROP_SIZE,
    edge: str = EDGE,
    label_column: Optional[str] = LABEL_COLUMN,
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = QUIET,
):
    """Evaluate a run: accuracy with intervals, calibration, novelty (AUROC) and selective prediction; with
    --conformal, the coverage of its prediction sets.

    Example: knowwhen evaluate runs/fmnist fashion-mnist --mc 100 --conformal aps --out eval/
    """
    from ..classify import EvaluateOptions, evaluate_run, load_run
    from ..report.build import build_report
    from ..data import FieldOptions

    options = EvaluateOptions(mc=mc or None, seed=seed, use_temperature=not no_temperature, batch_size=batch_size,
                              progress=not quiet, allow_training_images=allow_training_images,
                              novel_classes=tuple(c.strip() for c in (novel_classes or "").split(",") if c.strip()),
                              conformal=conformal_options(conformal, alpha, by_class, conformal_probs, max_set_size),
                              precision=precision)
    loaded = load_run(run)
    cells = FieldOptions(objects=objects, crop_size=crop_size, edge=edge, label_column=label_column)
    ds = open_data(data, fmt, option, skip_bad, cells, loaded)
    novel_ds = open_data(novel, fmt, option, skip_bad, cells, loaded) if novel else None
    summary = evaluate_run(loaded, ds, out, options, novel=novel_ds)
    typer.echo(format_summary(summary))
    page = build_report(out, network=loaded)
    typer.echo(f"wrote {out}/metrics.json, the tables beside it and the report {page}")
