"""The demo command: both tasks end to end on real data."""
from __future__ import annotations

from pathlib import Path

import typer

from .app import QUIET, app, handle_errors


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo's run and evaluation."),
    epochs: int = typer.Option(3, help="Epochs to train."),
    max_minutes: float = typer.Option(4.0, help="Training time limit in minutes."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes per image."),
    forecast_epochs: int = typer.Option(150, help="Epochs for the sunspots forecaster; 0 skips the forecast part."),
    quiet: bool = QUIET,
):
    """Train the course's CNN on Fashion-MNIST (digits when it is not installed) without one class, then
    report accuracy, calibration, novelty AUROC and selective accuracy with MC dropout; screen a 96-well plate
    with that class spiked into six wells; then forecast the yearly sunspots with MC-dropout intervals.

    Example: knowwhen demo --out demo-output
    """
    from ..demo import run_demo, run_forecast_demo, run_screen_demo
    from ..forecast import format_forecast_summary
    from ..report.text import format_summary

    result = run_demo(out, epochs=epochs, max_minutes=max_minutes, mc=mc, progress=not quiet, echo=typer.echo)
    typer.echo(format_summary(result))
    typer.echo(f"run in {result['run']}; predictions and tables in {result['eval']}")
    typer.echo(f"report: {Path(result['eval']) / 'report.html'}")
    sc = run_screen_demo(result["run"], out / "screen", mc=mc, progress=not quiet, echo=typer.echo)
    plate = sc["plates"][0]
    typer.echo(f"screen: {sc['hits']} hit well(s) at FDR {sc['fdr']:g} by the {sc['hit_test']} test ({sc['score']} "
               f"above the threshold at fpr {sc['fpr']:g} set on {plate['threshold_from']}): far-away images found "
               f"in {len(sc['found_far'])} of 3 wells, the held-out class in {len(sc['found_held_out'])} of 3, "
               f"{len(sc['other_hits'])} other well(s); a well of {plate['median_cells']} cells needs "
               + (f"{plate['detectable_fraction']:.0%}" if plate.get("detectable_fraction") is not None else "more")
               + f" of its cells above the threshold for 80% power; review page: {sc['screen']}/report.html")
    if forecast_epochs:
        fc = run_forecast_demo(out, epochs=forecast_epochs, mc=mc, progress=not quiet, echo=typer.echo)
        typer.echo(format_forecast_summary(fc))
        typer.echo(f"forecast report: {Path(fc['eval']) / 'report.html'}")
