"""The screen command: every cell of a screen predicted and flagged, wells summarised, hits called."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .app import CROP_SIZE, DATA_FORMAT, DATA_OPTION, EDGE, OBJECTS, PRECISION, QUIET, SKIP_BAD, app, handle_errors, open_data


@app.command()
@handle_errors
def screen(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    data: str = typer.Argument(..., help="The screen: a CSV manifest (path and Metadata_* columns, paths relative "
                               "to it), an NPZ / HDF5 file with Metadata_* arrays beside the images, or fields with "
                               "--objects: a CellProfiler load_data.csv or an OME-Zarr plate."),
    out: Path = typer.Option(..., "--out", help="Folder for cells.parquet, wells.csv, plates.csv, screen.json and "
                             "the review page report.html."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes per cell; 0 for none."),
    seed: int = typer.Option(0, help="Seed of the dropout masks."),
    score: Optional[str] = typer.Option(None, help="Score that flags novel cells [default: novelty (fused) when "
                                        "the run has it, else mutual_info_mc, else p_max]."),
    fpr: float = typer.Option(0.05, help="Fraction of known cells flagged novel: sets the threshold."),
    fdr: float = typer.Option(0.05, help="Wells with a Benjamini-Hochberg q-value below this are hits."),
    hit_test: str = typer.Option("betabinom", help="Test that calls hits: betabinom (the well's novel count "
                                 "against the control wells, with their well-to-well spread; without controls the "
                                 "binomial), wellrank (its scores' AUC against the control wells' AUCs), binomial "
                                 "(its novel fraction against --fpr) or rank (its scores against the reference's, "
                                 "Mann-Whitney); wells.csv has all four."),
    controls: Optional[str] = typer.Option(None, help="Control cells, COLUMN=VALUE (e.g. Metadata_Treatment=DMSO) "
                                           "or wells A01,B01: each plate's threshold is set on its controls "
                                           "[default: on the run's validation images]."),
    group_by: Optional[str] = typer.Option(None, help="Metadata column naming each well's treatment (e.g. "
                                           "Metadata_Compound): treatments.csv tests each treatment on its "
                                           "replicate wells."),
    plate_column: str = typer.Option("Metadata_Plate", help="Metadata column naming the plate."),
    well_column: str = typer.Option("Metadata_Well", help="Metadata column naming the well."),
    cells_format: str = typer.Option("parquet", help="parquet or csv for the per-cell table."),
    qc: bool = typer.Option(True, "--qc/--no-qc", help="Measure each cell's focus, intensity and saturation in the "
                            "prediction pass; flag wells outside the control wells' range (hits there are "
                            "artefact suspects)."),
    batch_size: int = typer.Option(512, help="Images read at once (the network runs on blocks of 512 whatever it "
                                    "is, so results do not depend on it)."),
    precision: str = PRECISION,
    part_size: int = typer.Option(100_000, help="Images per part file (the unit of resuming)."),
    devices: int = typer.Option(1, help="Processes (CPU) or GPUs per node; each predicts its share of the parts."),
    num_nodes: int = typer.Option(1, help="Machines (nodes)."),
    accelerator: str = typer.Option("cpu", help="cpu, gpu or auto."),
    objects: Optional[Path] = OBJECTS,
    crop_size: Optional[int] = CROP_SIZE,
    edge: str = EDGE,
    fmt: Optional[str] = DATA_FORMAT,
    option: List[str] = DATA_OPTION,
    skip_bad: bool = SKIP_BAD,
    quiet: bool = QUIET,
):
    """Screen plates: flag the cells the network has never seen the like of, and call the wells that hold more of
    them than chance (hits, at a false discovery rate). Killed, the same command resumes.

    Example: knowwhen screen runs/deeploc plate1/manifest.csv --mc 100 --controls Metadata_Treatment=DMSO --out screen/

    From CellProfiler: knowwhen screen runs/deeploc load_data.csv --objects Nuclei.csv --controls A01,B01 --out s/
    """
    from ..atomic import check_output_dir
    from ..classify import load_run
    from ..data import FieldOptions
    from ..distributed import launch_or_join
    from ..report.screen import build_screen_report
    from ..screen import ScreenOptions, screen_metadata, screen_run

    options = ScreenOptions(mc=mc, seed=seed, score=score, fpr=fpr, fdr=fdr, controls=controls,
                            plate_column=plate_column, well_column=well_column, cells_format=cells_format,
                            batch_size=batch_size, part_size=part_size, progress=not quiet, hit_test=hit_test,
                            qc=qc, group_by=group_by, precision=precision)
    check_output_dir(out, "--out")
    loaded = load_run(run)
    ds = open_data(data, fmt, option, skip_bad, FieldOptions(objects=objects, crop_size=crop_size, edge=edge), loaded)
    metadata = screen_metadata(data, ds, plate_column, well_column)
    ranks = launch_or_join(devices, num_nodes, accelerator)
    summary = screen_run(loaded, ds, metadata, out, options, ranks)
    if summary is not None:
        typer.echo(f"{summary['cells']} cells in {summary['wells']} wells of {len(summary['plates'])} plate(s); "
                   f"novel = {summary['score']} above each plate's threshold (fpr {fpr:g}); {summary['hits']} hit "
                   f"well(s) at FDR {fdr:g} by the {hit_test} test")
        for p in summary["plates"]:
            typer.echo(f"  plate {p[plate_column]}: {p['cells']} cells, {p['wells']} wells, {p['hits']} hits; "
                       f"threshold {p['threshold']:.4g} from {p['threshold_from']}"
                       + (f"; control cells flagged {p['control_novel_fraction']:.1%}"
                          if p["control_novel_fraction"] is not None else "")
                       + (f"; 80% power at >= {p['detectable_fraction']:.1%} novel cells per well of "
                          f"{p['median_cells']}" if p.get("detectable_fraction") is not None else ""))
        if group_by:
            typer.echo(f"  {summary['treatments']} values of {group_by}, {summary['treatment_hits']} hit(s) "
                       "(their replicate wells against each plate's control wells)")
        page = build_screen_report(out, ds)
        typer.echo(f"wrote {out}/cells.{cells_format}, wells.csv, plates.csv, {'treatments.csv, ' if group_by else ''}"
                   f"screen.json and the review page {page}")
