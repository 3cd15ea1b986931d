"""The export command: a run as one ONNX graph that keeps its MC dropout."""
from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ConfigError
from .app import app, handle_errors, open_data


@app.command()
@handle_errors
def export(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    out: Path = typer.Option(..., "--out", help="The .onnx file to write."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes folded into the graph (fixed masks)."),
    seed: int = typer.Option(0, help="Seed of the masks: the graph computes what `predict --mc T --seed S` does."),
):
    """Export a run as one ONNX graph with its MC dropout kept (the masks of --seed folded in, normalisation and
    temperatures inside): raw images in, the deterministic softmax and every MC measure out, dynamic batch size.

    Example: knowwhen export runs/fmnist --mc 30 --out fmnist_mc30.onnx
    """
    from ..atomic import check_output_file
    from ..classify import load_run

    if mc < 1:
        raise ConfigError(f"--mc {mc}: the graph needs at least 1 MC pass (e.g. --mc 30).")
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {out}: name an .onnx file, e.g. {out.with_suffix('.onnx')}.")
    check_output_file(out, "--out")
    try:
        import onnx  # noqa: F401 - torch's exporter writes through it
    except ImportError:
        raise ConfigError("export needs the onnx package: pip install onnx onnxruntime (the test setup has them).") \
            from None
    from ..export import export_onnx

    path = export_onnx(load_run(run), out, passes=mc, seed=seed)
    typer.echo(f"wrote {path}: {mc} MC passes (seed {seed}), input `images` (n, C, H, W) raw pixel values; outputs "
               "probs, p_max, pred, probs_mc, p_max_mc, pred_mc, sigma_mc, entropy_mc, mutual_info_mc, "
               "variation_ratio_mc")


def predict_with_onnx(path: Path, data: str, out: Path, batch_size: int, quiet: bool, refused: list[str],
                      data_args: tuple) -> None:
    """`knowwhen predict FILE.onnx ...`: predicts with an exported graph, whose masks, seed and temperatures are
    fixed in the file (`refused`: the options given that would change them)."""
    from ..config import check_counts
    from ..export.onnx_predict import write_onnx_predictions

    if refused:
        raise ConfigError(f"{', '.join(refused)}: not for an exported .onnx file, whose MC passes, seed and "
                          "temperatures are fixed in it (see `knowwhen export`); leave them out, or predict with "
                          "the run directory.")
    check_counts(batch_size=batch_size)
    ds = open_data(data, *data_args)
    write_onnx_predictions(path, ds, out, batch_size, not quiet)
    typer.echo(f"wrote {len(ds)} predictions to {out} (ONNX graph {path})")
