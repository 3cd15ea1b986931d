"""What reading and summarising cost a screen: the same cells screened from PNG files and predicted from an NPZ,
with and without reading ahead (prefetch), in one process, alternating, after one warm-up prediction (the first call in a process is twice as slow).

9,600 Fashion-MNIST test images as one 96-well plate (100 cells per well, controls in column 1), written as PNG
files with a CSV manifest and as one NPZ; a `cnn` trained 1 epoch (speed does not depend on accuracy). Timed:
`write_predictions` on the NPZ (the network and the measures alone) and `screen_run` on the PNG manifest (PNG
decoding, the network, QC, thresholds, wells, hit tests, cells.parquet), each with prefetch 0 and 2.
Target: the PNG screen <= 1.10x the NPZ prediction (same T).
Run: .venv/bin/python benchmarks/screen_io.py [--mc 30] [--repeats 2] [--precision fp32]
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


def plate(work: Path) -> tuple[Path, Path]:
    from PIL import Image

    ds = kw.open_dataset("fashion-mnist")
    images = ds.images(np.arange(len(ds) - 10_000, len(ds) - 400))[:, 0].astype(np.uint8)
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
    p.add_argument("--mc", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kw-screen-io-"))
    manifest, npz = plate(work)
    cfg = kw.TrainConfig(kw.DataConfig("fashion-mnist"), kw.ModelConfig("cnn"), epochs=1, progress=False, seed=0,
                         calibration_mc=a.mc)
    run = kw.load_run(kw.train(cfg, work / "run"))
    png, arrays = kw.open_dataset(manifest), kw.open_dataset(npz)
    metadata = screen_metadata(manifest, png)
    times: dict[str, list[float]] = {}
    kw.write_predictions(run, arrays, work / "warm.parquet", kw.PredictOptions(mc=a.mc, progress=False))  # warm-up
    for _ in range(a.repeats):
        for prefetch in (0, 2):
            for name in ("predict_npz", "screen_png"):
                shutil.rmtree(work / "out", ignore_errors=True)
                (work / "out").mkdir()
                t0 = time.perf_counter()
                if name == "predict_npz":
                    kw.write_predictions(run, arrays, work / "out" / "p.parquet", kw.PredictOptions(
                        mc=a.mc, progress=False, prefetch=prefetch, precision=a.precision))
                else:
                    screen_run(run, png, metadata, work / "out" / "s", ScreenOptions(
                        mc=a.mc, progress=False, controls="Metadata_Well=A01", precision=a.precision, prefetch=prefetch))
                times.setdefault(f"{name}_prefetch{prefetch}", []).append(round(time.perf_counter() - t0, 2))
                print(name, prefetch, times[f"{name}_prefetch{prefetch}"][-1], "s", flush=True)
    med = {k: float(np.median(v)) for k, v in times.items()}
    write_result(f"screen_io{'' if a.precision == 'fp32' else '_' + a.precision}", {
        "cells": len(png), "mc_passes": a.mc, "precision": a.precision,
        "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"}), "seconds": times, "median": med,
        "screen_png_over_predict_npz": {k: round(med[f"screen_png_prefetch{k}"] / med[f"predict_npz_prefetch{k}"], 3)
                                        for k in (0, 2)},
        "target": "screen from PNG <= 1.10x predict from NPZ"})


if __name__ == "__main__":
    main()
