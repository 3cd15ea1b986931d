"""The export command: a run as one ONNX graph that keeps its MC dropout, or as a bioimage.io model package."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .app import app, handle_errors, open_data


@app.command()
@handle_errors
def export(
    run: Path = typer.Argument(..., help="Run directory made by `knowwhen train`."),
    out: Path = typer.Option(..., "--out", help="The file to write: model.onnx, or pkg.zip for a bioimage.io package."),
    fmt: Optional[str] = typer.Option(None, "--format", help="onnx or bioimageio (default: from --out's suffix, "
                                      ".onnx or .zip)."),
    mc: int = typer.Option(100, "--mc", help="MC-dropout passes folded into the graph (fixed masks)."),
    seed: int = typer.Option(0, help="Seed of the masks: the graph computes what `predict --mc T --seed S` does."),
    evaluation: Optional[Path] = typer.Option(None, help="bioimageio: an evaluation of the run (`knowwhen evaluate "
                                              "... --out EVAL`) whose accuracy, calibration, novelty AUROCs and "
                                              "conformal coverage go into the model card."),
    sample: Optional[str] = typer.Option(None, help="bioimageio: images whose first 4 are the test tensors "
                                         "(default: the run's own test split)."),
    author: List[str] = typer.Option(None, "--author", help="bioimageio: an author's name; repeatable."),
    license: str = typer.Option("CC-BY-4.0", help="bioimageio: the package's SPDX license identifier."),
):
    """Export a run as one ONNX graph with its MC dropout kept (the masks of --seed folded in, normalisation and
    temperatures inside): raw images in, the deterministic softmax and every MC measure out, dynamic batch size;
    or as a bioimage.io model package (ONNX and PyTorch weights, test tensors, a model card), validated.

    Example: knowwhen export runs/fmnist --mc 30 --out fmnist_mc30.onnx

    For the bioimage.io model zoo: knowwhen export runs/deeploc --mc 30 --author "A. Smith" --evaluation eval/ --out
    deeploc.zip
    """
    from ..atomic import check_output_file
    from ..classify import load_run
    from ..training.rundir import read_config

    fmt = fmt or {".onnx": "onnx", ".zip": "bioimageio"}.get(out.suffix.lower())
    if fmt not in ("onnx", "bioimageio"):
        raise ConfigError(f"--out {out}: name an .onnx file or a .zip package, or say --format onnx|bioimageio.")
    if mc < 1:
        raise ConfigError(f"--mc {mc}: the graph needs at least 1 MC pass (e.g. --mc 30).")
    check_output_file(out, "--out")
    if read_config(run).get("task") == "forecast":
        raise ConfigError(f"{run}: a forecaster; export supports image classifiers (single networks) only.")
    _check_packages(fmt)
    loaded = load_run(run)
    if fmt == "onnx":
        from ..export import export_onnx

        path = export_onnx(loaded, out, passes=mc, seed=seed)
        typer.echo(f"wrote {path}: {mc} MC passes (seed {seed}), input `images` (n, C, H, W) raw pixel values; "
                   "outputs probs, p_max, pred, probs_mc, p_max_mc, pred_mc, sigma_mc, entropy_mc, mutual_info_mc, "
                   "variation_ratio_mc")
        return
    from ..export.bioimageio import export_bioimageio, sample_images
    from ..export.model_card import model_card

    metrics = _evaluation(evaluation)
    images = sample_images(loaded, open_data(sample, None, [], False) if sample else None)
    result = export_bioimageio(loaded, out, mc, seed, images, model_card(loaded, mc, seed, metrics),
                               list(author or ["knowwhen user"]), license)
    typer.echo(f"wrote {out}: bioimage.io model {result['format_version']} ({result['status']} by bioimageio.spec), "
               f"{mc} MC passes (seed {seed}); weights onnx and pytorch_state_dict; outputs probs, probs_mc, measures; "
               f"license {license}")


def _check_packages(fmt: str) -> None:
    needed = ["onnx"] + (["bioimageio.spec"] if fmt == "bioimageio" else [])
    for name in needed:
        try:
            __import__(name)
        except ImportError:
            raise ConfigError(f"export --format {fmt} needs the {name} package: pip install 'knowwhen[export]' (the "
                              "test setup has it).") from None


def _evaluation(folder: Optional[Path]) -> Optional[dict]:
    if folder is None:
        return None
    path = folder / "metrics.json" if folder.is_dir() else folder
    if not path.is_file():
        raise ConfigError(f"--evaluation {folder}: no metrics.json; give the folder `knowwhen evaluate ... --out` "
                          "wrote.")
    return json.loads(path.read_text(encoding="utf-8"))


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
