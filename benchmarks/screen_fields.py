"""Screening from fields + an object table against screening the same cells as pre-cut crop files, and peak memory
from 1 to 10 plates' worth of fields.

A simulated plate: WELLS wells x SITES sites, two 16-bit channels (DNA, GFP) of SIZE x SIZE px per field, one TIFF
per field and channel (as a microscope writes them), CELLS cells per field (Gaussian blobs on Poisson background),
CellProfiler's load_data.csv and Nuclei.csv. The same cells cut once here, 64 x 64, one 2-channel 16-bit TIFF per
cell (PNG holds no 2-channel 16-bit image) with a CSV manifest. Both are screened by `knowwhen screen` in a fresh
process (alternating, `--repeats` times each; wall time and peak RSS by /usr/bin/time). Memory: the load_data.csv
repeated as 1 and 10 plates (the same files, other Metadata_Plate), screened without MC.
Target: fields at least as fast per cell as crop files; peak memory flat from 1 to 10 plates.
Run: .venv/bin/python benchmarks/screen_fields.py [--wells 24 --sites 4 --size 1024 --cells 150 --mc 30]
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import write_result

CROP = 64


def fields_and_objects(work: Path, wells: int, sites: int, size: int, cells: int, rng) -> tuple[list, list]:
    import tifffile

    yy, xx = np.mgrid[0:size, 0:size]
    rows, objects = [], []
    (work / "fields").mkdir()
    names = [f"{'ABCDEFGHIJKLMNOP'[w // 24]}{w % 24 + 1:02d}" for w in range(wells)]
    for well in names:
        for site in range(1, sites + 1):
            number = len(rows) + 1
            centres = rng.uniform(8, size - 8, (cells, 2))
            field = {c: rng.poisson(100, (size, size)).astype(np.float32) for c in ("DNA", "GFP")}
            for k, (x, y) in enumerate(centres):
                r = slice(max(int(y) - 16, 0), int(y) + 17), slice(max(int(x) - 16, 0), int(x) + 17)
                blob = np.exp(-((yy[r] - y) ** 2 + (xx[r] - x) ** 2) / (2 * 5.0 ** 2))
                field["DNA"][r] += 3000 * blob
                field["GFP"][r] += rng.uniform(500, 2000) * blob ** 0.5
                objects.append({"ImageNumber": number, "ObjectNumber": k + 1, "Location_Center_X": x,
                                "Location_Center_Y": y})
            row = {"Metadata_Plate": "P1", "Metadata_Well": well, "Metadata_Site": site}
            for c, image in field.items():
                name = f"{well}_s{site}_{c}.tif"
                tifffile.imwrite(work / "fields" / name, np.clip(image, 0, 65535).astype(np.uint16))
                row[f"FileName_{c}"], row[f"PathName_{c}"] = name, "fields"
            rows.append(row)
    return rows, objects


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def crop_files(work: Path, rows: list[dict], objects: list[dict]) -> Path:
    """Every object's 64 x 64 crop (zero-padded at the border) as a 2-channel TIFF, and the manifest."""
    import tifffile

    (work / "crops").mkdir()
    manifest, field, current = [], None, None
    for o in objects:
        if o["ImageNumber"] != current:
            current, row = o["ImageNumber"], rows[o["ImageNumber"] - 1]
            field = np.pad(np.stack([tifffile.imread(work / "fields" / row[f"FileName_{c}"]) for c in ("DNA", "GFP")]),
                           ((0, 0), (CROP, CROP), (CROP, CROP)))
        x0 = int(np.floor(o["Location_Center_X"] + 0.5)) - CROP // 2 + CROP
        y0 = int(np.floor(o["Location_Center_Y"] + 0.5)) - CROP // 2 + CROP
        name = f"crops/{current}_{o['ObjectNumber']}.tif"
        tifffile.imwrite(work / name, field[:, y0:y0 + CROP, x0:x0 + CROP], metadata={"axes": "CYX"})
        manifest.append({"path": name, "Metadata_Plate": row["Metadata_Plate"], "Metadata_Well": row["Metadata_Well"]})
    return write_csv(work / "crops.csv", manifest)


def train_run(work: Path) -> Path:
    import knowwhen as kw

    rng = np.random.default_rng(0)
    x = rng.poisson(100, (1200, 2, CROP, CROP)).astype(np.float32)
    np.savez(work / "train.npz", x=x, y=rng.integers(0, 4, 1200))
    cfg = kw.TrainConfig(kw.DataConfig(str(work / "train.npz"), options={"channel_names": ("DNA", "GFP")}),
                         kw.ModelConfig("cnn"), epochs=1, progress=False, seed=0)
    return kw.train(cfg, work / "run")


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one knowwhen command in a fresh process."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "knowwhen", *args],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr[-3000:])
    wall, rss = r.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    for name, default in (("wells", 24), ("sites", 4), ("size", 1024), ("cells", 150), ("mc", 30), ("repeats", 2)):
        p.add_argument(f"--{name}", type=int, default=default)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kw-fields-"))
    rng = np.random.default_rng(0)
    rows, objects = fields_and_objects(work, a.wells, a.sites, a.size, a.cells, rng)
    load_data, nuclei = write_csv(work / "load_data.csv", rows), write_csv(work / "Nuclei.csv", objects)
    manifest = crop_files(work, rows, objects)
    run = str(train_run(work))
    common = ["--mc", str(a.mc), "--controls", "A01,A02,A03", "--quiet"]
    times = {"fields": [], "crop_files": []}
    for k in range(a.repeats):
        for name, data in (("fields", [str(load_data), "--objects", str(nuclei)]), ("crop_files", [str(manifest)])):
            wall, rss = timed(["screen", run, *data, "--out", str(work / f"out-{name}-{k}"), *common])
            times[name].append({"seconds": wall, "peak_rss_mib": round(rss)})
            print(name, wall, "s", round(rss), "MiB", flush=True)
    memory = {}
    for plates in (1, 10):
        many = [{**r, "Metadata_Plate": f"P{p}"} for p in range(1, plates + 1) for r in rows]
        objs = [{**o, "ImageNumber": o["ImageNumber"] + p * len(rows)} for p in range(plates) for o in objects]
        ld, nu = write_csv(work / f"ld{plates}.csv", many), write_csv(work / f"nu{plates}.csv", objs)
        wall, rss = timed(["screen", run, str(ld), "--objects", str(nu), "--out", str(work / f"mem{plates}"),
                           "--mc", "0", "--controls", "A01,A02,A03", "--quiet"])
        memory[plates] = {"cells": len(objs), "seconds": wall, "peak_rss_mib": round(rss)}
        print(plates, "plates:", memory[plates], flush=True)
    med = {k: float(np.median([t["seconds"] for t in v])) for k, v in times.items()}
    write_result("screen_fields", {
        "cells": len(objects), "fields": len(rows), "field_px": a.size, "channels": 2, "crop_px": CROP,
        "mc_passes": a.mc, "runs": times, "median_seconds": med,
        "fields_over_crop_files": round(med["fields"] / med["crop_files"], 3),
        "memory_by_plates": memory,
        "memory_ratio_10_vs_1": round(memory[10]["peak_rss_mib"] / memory[1]["peak_rss_mib"], 3),
        "target": "fields_over_crop_files <= 1.0; memory flat from 1 to 10 plates"})


if __name__ == "__main__":
    main()
