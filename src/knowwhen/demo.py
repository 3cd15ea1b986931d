"""The demo: the course's CNN on Fashion-MNIST (or digits) with one class held out, then MC dropout; a screen of
a 96-well plate with spiked wells and its review page; and a forecaster of the yearly sunspots with MC-dropout
intervals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from typing import Callable

from .data.builtin import fashion_mnist_available


def run_demo(out: str | Path, epochs: int = 3, max_minutes: float = 4.0, mc: int = 100, progress: bool = True,
             echo: Callable[[str], None] = print) -> dict:
    """Trains `cnn` without one class, reloads it and evaluates it with MC dropout; returns the summary.

    Fashion-MNIST holds out "Shirt" (the class the course's network finds hardest); digits holds out "9".
    """
    from .classify import ConformalOptions, EvaluateOptions, evaluate_run, load_run, train
    from .report.build import build_report
    from .config import DataConfig, ModelConfig, TrainConfig
    from .data import open_dataset

    out = Path(out)
    name, held_out = ("fashion-mnist", "Shirt") if fashion_mnist_available() else ("digits", "9")
    if name == "digits":
        echo("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using scikit-learn's digits.")
    echo(f"training the course's CNN on {name} without class {held_out!r} "
         f"for up to {epochs} epochs / {max_minutes:g} minutes")
    ds = open_dataset(name)
    config = TrainConfig(DataConfig(name, holdout_classes=(held_out,)), ModelConfig("cnn"), epochs=epochs,
                         max_minutes=max_minutes, progress=progress, calibration_mc=mc)
    run = load_run(train(config, out / "run", dataset=ds, overwrite=True))
    echo(f"MC dropout with {mc} passes on the test images and the held-out class, with 90% conformal sets")
    summary = evaluate_run(run, ds, out / "eval", EvaluateOptions(mc=mc, progress=progress,
                                                                  conformal=ConformalOptions(method="aps", alpha=0.1)))
    build_report(out / "eval", network=run)
    return {"dataset": name, "held_out": held_out, "run": str(run.path), "eval": str(out / "eval"), **summary}


HELD_OUT_WELLS = ("B03", "D10", "F08")   # spiked with the run's held-out class: a phenotype close to known ones
FAR_WELLS = ("C07", "E05", "G11")        # spiked with images unlike any class (digits): a far phenotype


def run_screen_demo(run_dir: str | Path, out: str | Path, mc: int = 100, cells: int = 100, spike: float = 0.4,
                    progress: bool = True, echo: Callable[[str], None] = print) -> dict:
    """A 96-well plate built from the test images of the run's known classes, DMSO controls in columns 1 and 12;
    three wells spiked with its held-out class and three with far-away images (scikit-learn's digits); screens it
    with the controls (novel cells, hit wells by the default well test)
    and writes the review page; returns screen.json's content with the wells called per kind of spike."""
    from .classify import load_run
    from .data import dataset_from_arrays, open_dataset
    from .data.splits import split_for_config
    from .report.screen import build_screen_report
    from .screen import ScreenOptions, screen_run

    run, out = load_run(run_dir), Path(out)
    ds = open_dataset(run.config.data.source)
    split = split_for_config(ds, run.config.data, run.config.seed)
    rng = np.random.default_rng(0)
    far = _far_images(ds.images(split.test[:500]), rng)
    images = []
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    for w in wells:
        k = int(cells * spike) if w in HELD_OUT_WELLS + FAR_WELLS else 0
        images.append(ds.images(rng.choice(split.test, cells - k)))
        images.append(ds.images(rng.choice(split.novel, k)) if w in HELD_OUT_WELLS else far[rng.integers(0, len(far), k)])
    plate = dataset_from_arrays(np.concatenate(images), None, channels="first", name="demo-plate")
    treatment = np.array(["DMSO" if w.endswith(("01", "12")) else f"compound-{w}" for w in wells])
    metadata = {"Metadata_Plate": np.full(len(plate), "demo"), "Metadata_Well": np.repeat(wells, cells),
                "Metadata_Treatment": np.repeat(treatment, cells)}
    echo(f"screening a 96-well plate of {len(plate)} cells (DMSO controls in columns 1 and 12): wells "
         f"{', '.join(HELD_OUT_WELLS)} hold {spike:.0%} cells of the held-out class, wells {', '.join(FAR_WELLS)} "
         f"{spike:.0%} far-away images (digits)")
    summary = screen_run(run, plate, metadata, out, ScreenOptions(mc=mc, progress=progress,
                                                                  controls="Metadata_Treatment=DMSO"))
    build_screen_report(out, plate)
    called = {w["Metadata_Well"] for w in _csv_rows(out / "wells.csv") if w["hit"] == "True"}
    return {**summary, "called": sorted(called), "screen": str(out),
            "found_held_out": sorted(called & set(HELD_OUT_WELLS)), "found_far": sorted(called & set(FAR_WELLS)),
            "other_hits": sorted(called - set(HELD_OUT_WELLS + FAR_WELLS))}


def _far_images(like: np.ndarray, rng) -> np.ndarray:
    """Images unlike the training classes, shaped and scaled like `like` (N, C, H, W): scikit-learn's digits
    resized to H x W in every channel, spanning the range of `like`; inverted (white on black becomes black on
    white) when `like` are 8 x 8, that is, digits themselves."""
    import torch
    from sklearn.datasets import load_digits

    digits = torch.from_numpy(load_digits().images[:, None].astype(np.float32) / 16)
    if tuple(like.shape[2:]) == (8, 8):
        digits = 1 - digits
    resized = torch.nn.functional.interpolate(digits, size=like.shape[2:], mode="bilinear", align_corners=False)
    lo, hi = float(like.min()), float(like.max())
    return np.repeat(resized.numpy(), like.shape[1], axis=1) * (hi - lo) + lo


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run_forecast_demo(out: str | Path, epochs: int = 150, mc: int = 100, progress: bool = True,
                      echo: Callable[[str], None] = print) -> dict:
    """Trains `tcn` on the square root of the yearly sunspots (1700-2008), evaluates its one-to-three-year
    forecasts on the last 20% with MC dropout, and writes the forecast report; returns the summary."""
    from .config import ForecastConfig, ModelConfig, SeriesConfig
    from .forecast import ForecastOptions, evaluate_forecaster, load_forecaster, train_forecaster
    from .report.build import build_report

    out = Path(out)
    echo(f"forecasting the yearly sunspots 1-3 years ahead with a causal convolutional net (up to {epochs} epochs)")
    config = ForecastConfig(SeriesConfig("sunspots", transform="sqrt"), ModelConfig("tcn", {"kernel_size": 3}),
                            window=24, horizon=3, lr=3e-3, epochs=epochs, patience=30, progress=progress)
    run = load_forecaster(train_forecaster(config, out / "forecast-run", overwrite=True))
    echo(f"MC dropout with {mc} passes on the test years")
    summary = evaluate_forecaster(run, out / "forecast-eval", options=ForecastOptions(passes=mc, progress=progress))
    build_report(out / "forecast-eval")
    return {"run": str(run.path), "eval": str(out / "forecast-eval"), **summary}
