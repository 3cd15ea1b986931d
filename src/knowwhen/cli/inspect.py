"""Commands that look at saved runs and results: info, models, report, explain."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .app import DATA_FORMAT, DATA_OPTION, app, handle_errors, open_data


@app.command()
@handle_errors
def info(run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`.")):
    """Show a run: the model with parameter counts, the data it saw, its metrics.

    Example: knowwhen info runs/fmnist
    """
    from ..classify import load_run
    from ..forecast import load_forecaster
    from ..report.text import describe_forecaster, describe_run
    from ..training.rundir import read_config

    if read_config(run).get("task") == "forecast":
        typer.echo(describe_forecaster(load_forecaster(run), full=True))
    else:
        typer.echo(describe_run(load_run(run)))


@app.command()
@handle_errors
def models():
    """List the registered models and their arguments, by task.

    Example: knowwhen models
    """
    from ..models import list_models, model_args

    for task, title in (("classify", "image classifiers (knowwhen train)"),
                        ("forecast", "forecasters (knowwhen forecast train)")):
        typer.echo(f"{title}:")
        for name in list_models(task):
            typer.echo(f"  {name:<8} " + ", ".join(f"{k}={v!r}" for k, v in model_args(name).items()))


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
    from ..report.build import build_report

    typer.echo(f"wrote {build_report(eval_dir, novelty_table, network=_evaluated_run(eval_dir))}")


def _evaluated_run(eval_dir: Path):
    """The run an image evaluation scored (for the report's figures from its weights), the reason it cannot be
    loaded, or None for a forecast evaluation or a folder without metrics.json (build_report says what is missing)."""
    import json

    from ..classify import load_run
    from ..errors import KnowwhenError

    metrics = Path(eval_dir) / "metrics.json"
    if not metrics.exists():
        return None
    summary = json.loads(metrics.read_text(encoding="utf-8"))
    if summary.get("task") == "forecast":
        return None
    try:
        return load_run(summary["run"])
    except KnowwhenError as e:
        return str(e)


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
    from ..classify import load_run
    from ..report.explain import image_to_explain, write_explanations

    if index is not None and data is None:
        raise ConfigError("--index needs --data DATA (the dataset it points into).")
    loaded = load_run(run)
    ds = open_data(data, fmt, option, False) if data is not None and index is not None else None
    picture = image_to_explain(loaded, image, ds, index)
    for path in write_explanations(loaded, out, picture):
        typer.echo(f"wrote {path}")
