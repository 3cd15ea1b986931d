"""What image QC costs a screen: one simulated 384-well plate of screen_realistic.py (about 60,000 cells),
screened from scratch with and without QC (`--no-qc`), alternating, twice each, in this process; reports the
median times and their ratio. Target: QC adds <= 10%.
Run: .venv/bin/python benchmarks/screen_qc_cost.py --run RUN [--mc 30] (RUN: screen_realistic.py's run)
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import write_result
from screen_realistic import plate_design, simulate

import knowwhen as kw
from knowwhen.data.splits import split_for_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True)
    p.add_argument("--mc", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    from knowwhen.screen import ScreenOptions, screen_metadata, screen_run

    run = kw.load_run(args.run)
    ds = kw.open_dataset("fashion-mnist")
    split = split_for_config(ds, run.config.data, run.config.seed)
    names, test = np.asarray(ds.class_names), np.concatenate([split.test, split.novel])
    pools = {c: test[names[ds.labels[test]] == c] for c in ds.class_names}
    images = ds.images(np.arange(len(ds)))[:, 0].astype(np.uint8)
    rng = np.random.default_rng(0)
    x, meta = simulate(rng, images, pools, list(run.class_names), plate_design(rng), "S0")
    work = Path(tempfile.mkdtemp(prefix="kw-qc-cost-"))
    np.savez(work / "plate.npz", x=x, **meta)
    plate = kw.open_dataset(work / "plate.npz")
    metadata = screen_metadata(work / "plate.npz", plate)
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for qc in (True, False):
            shutil.rmtree(work / "screen", ignore_errors=True)
            t0 = time.perf_counter()
            screen_run(run, plate, metadata, work / "screen", ScreenOptions(mc=args.mc, qc=qc, progress=False,
                                                                            controls="Metadata_Treatment=DMSO"))
            times[qc].append(time.perf_counter() - t0)
            print(f"qc={qc}: {times[qc][-1]:.1f} s", flush=True)
    with_qc, without = float(np.median(times[True])), float(np.median(times[False]))
    write_result("screen_qc_cost", {"run": args.run, "cells": len(x), "mc_passes": args.mc,
                                    "seconds_with_qc": [round(t, 1) for t in times[True]],
                                    "seconds_without_qc": [round(t, 1) for t in times[False]],
                                    "qc_overhead": round(with_qc / without - 1, 3), "target_overhead": 0.10})


if __name__ == "__main__":
    main()
