"""What reading and summarising cost a screen: the same cells screened from PNG files and predicted from an NPZ,
with and without reading ahead (prefetch), in one process, after one warm-up prediction (the first call in a
process is twice as slow), each kind first, second and third in turn. Each timing includes opening the data (the
PNG manifest checks every file's header).

9,600 Fashion-MNIST test images as one 96-well plate (100 cells per well, controls in column 1), written as PNG
files with a CSV manifest and as one NPZ; a `cnn` trained 1 epoch (speed does not depend on accuracy). With
--size 64 the cells are 64 x 64 16-bit images (DeepLoc's crop size; the run trained on 3,000 of them). Timed:
`open_dataset` + `write_predictions` on the NPZ (the network and the measures alone) and `open_dataset` +
`screen_run` on the PNG manifest (header checks, PNG decoding, the network, QC, thresholds, wells, hit tests,
cells.parquet), each with prefetch 0 and 2; `screen_run` on the NPZ too, which parts the screen's own cost (NPZ
screen / NPZ prediction) from the files' (PNG screen / NPZ screen). T = 100 is `knowwhen screen`'s default; with
fewer passes the network's share shrinks and the files' share grows (--mc 30 writes screen_io_mc30.json).
Target: the PNG screen <= 1.10x the NPZ prediction (same T).
Run: .venv/bin/python benchmarks/screen_io.py [--mc 100] [--repeats 3] [--precision fp32] [--size 28]
    [--prefetch 0,2]
"""
from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.precision import cpu_flags


def cells(indices: np.ndarray, size: int) -> np.ndarray:
    """Fashion-MNIST images as they are (28: uint8) or resized to size x size as 16-bit images (a microscope's)."""
    from PIL import Image

    images = kw.open_dataset("fashion-mnist").images(indices)[:, 0].astype(np.uint8)
    if size == 28:
        return images
    return np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BILINEAR)) for i in images]
                    ).astype(np.uint16) * 257


def trained_run(work: Path, size: int, mc: int):
    """A `cnn` trained 1 epoch (speed does not depend on accuracy): on Fashion-MNIST, or at another size on 3,000
    of its training images resized."""
    data = kw.DataConfig("fashion-mnist")
    if size != 28:
        labels = kw.open_dataset("fashion-mnist").labels[:3000]
        np.savez(work / "train.npz", x=cells(np.arange(3000), size), y=labels)
        data = kw.DataConfig(str(work / "train.npz"))
    cfg = kw.TrainConfig(data, kw.ModelConfig("cnn"), epochs=1, progress=False, seed=0, calibration_mc=mc)
    return kw.load_run(kw.train(cfg, work / "run"))


def plate(work: Path, size: int) -> tuple[Path, Path]:
    from PIL import Image

    n = len(kw.open_dataset("fashion-mnist"))
    images = cells(np.arange(n - 10_000, n - 400), size)
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    (work / "png").mkdir()
    rows, meta = [], {"Metadata_Plate": [], "Metadata_Well": []}
    for k, image in enumerate(images):
        well = wells[k // 100]
        name = f"png/{well}_{k}.png"
        Image.fromarray(image).save(work / name)
        rows.append({"path": name, "Metadata_Plate": "P1", "Metadata_Well": well})
        meta["Metadata_Plate"].append("P1")
        meta["Metadata_Well"].append(well)
    with open(work / "plate.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    np.savez(work / "plate.npz", x=images, **{k: np.array(v) for k, v in meta.items()})
    return work / "plate.csv", work / "plate.npz"


def main() -> None:
    from knowwhen.screen import ScreenOptions, screen_metadata, screen_run

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mc", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--prefetch", type=lambda v: [int(x) for x in v.split(",")], default=[0, 2],
                   help="read-ahead depths to time, comma-separated")
    p.add_argument("--size", type=int, default=28, help="cell images of size x size (28: Fashion-MNIST's 8-bit "
                   "images; else resized, 16-bit; 64 is DeepLoc's crop)")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kw-screen-io-"))
    manifest, npz = plate(work, a.size)
    run = trained_run(work, a.size, a.mc)
    times: dict[str, list[float]] = {}
    kw.write_predictions(run, kw.open_dataset(npz), work / "warm.parquet", kw.PredictOptions(mc=a.mc, progress=False))
    kinds = ("predict_npz", "screen_npz", "screen_png")
    for r in range(a.repeats):
        for prefetch in a.prefetch:
            # Each kind takes each place in turn: on a shared machine a place in the order can cost time of its own.
            for name in kinds[r % 3:] + kinds[:r % 3]:
                shutil.rmtree(work / "out", ignore_errors=True)
                (work / "out").mkdir()
                t0 = time.perf_counter()
                if name == "predict_npz":
                    kw.write_predictions(run, kw.open_dataset(npz), work / "out" / "p.parquet", kw.PredictOptions(
                        mc=a.mc, progress=False, prefetch=prefetch, precision=a.precision))
                else:
                    data = manifest if name == "screen_png" else npz
                    opened = kw.open_dataset(data)
                    screen_run(run, opened, screen_metadata(data, opened), work / "out" / "s", ScreenOptions(
                        mc=a.mc, progress=False, controls="Metadata_Well=A01", precision=a.precision,
                        prefetch=prefetch))
                times.setdefault(f"{name}_prefetch{prefetch}", []).append(round(time.perf_counter() - t0, 2))
                print(name, prefetch, times[f"{name}_prefetch{prefetch}"][-1], "s", flush=True)
    med = {k: float(np.median(v)) for k, v in times.items()}
    best = {k: float(np.min(v)) for k, v in times.items()}  # a busy machine only adds time: the least is the cost
    suffix = (("" if a.mc == 100 else f"_mc{a.mc}") + ("" if a.precision == "fp32" else f"_{a.precision}")
              + ("" if a.size == 28 else f"_size{a.size}"))
    write_result(f"screen_io{suffix}", {
        "cells": len(opened), "cell_shape": list(opened.shape), "opening_timed": True, "mc_passes": a.mc,
        "precision": a.precision,
        "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"}), "seconds": times, "median": med,
        "screen_png_over_predict_npz": {k: round(med[f"screen_png_prefetch{k}"] / med[f"predict_npz_prefetch{k}"], 3)
                                        for k in a.prefetch},
        "least_screen_png_over_predict_npz": {
            k: round(best[f"screen_png_prefetch{k}"] / best[f"predict_npz_prefetch{k}"], 3) for k in a.prefetch},
        "screen_npz_over_predict_npz": {k: round(med[f"screen_npz_prefetch{k}"] / med[f"predict_npz_prefetch{k}"], 3)
                                        for k in a.prefetch},
        "target": "screen from PNG <= 1.10x predict from NPZ"})


if __name__ == "__main__":
    main()
