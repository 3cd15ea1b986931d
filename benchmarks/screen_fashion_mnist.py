"""A screen end to end: two 384-well plates of Fashion-MNIST cells written as PNG files with a CSV manifest
(~150,000 cells), 5% of the wells spiked with 10-50% cells of a class the run never saw; `knowwhen screen
--mc 100` in a fresh process (PNG decoding included). Reports the recall of spiked wells by spike level, false
hits per plate, cells per second and the peak memory of the screening process, for the hit test the screen used
(default: rank) and for the other one (wells.csv carries both q-values).
Targets: every well spiked at >= 30% called, at most 1 false hit per plate, >= 800 cells/s on 2 cores.
Run: .venv/bin/python benchmarks/screen_fashion_mnist.py [--run RUN] [--holdout Trouser] [--cells 195]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.data.splits import split_for_config

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5)


def _run(args) -> Path:
    if args.run:
        return Path(args.run)
    out = Path(tempfile.mkdtemp(prefix="kw-screen-run-")) / "run"
    kw.train(kw.TrainConfig(kw.DataConfig("fashion-mnist", holdout_classes=(args.holdout,)), kw.ModelConfig("cnn"),
                            epochs=args.epochs, progress=False), out)
    return out


def _write_plates(run, folder: Path, cells: int, seed: int = 0) -> dict[tuple[str, str], float]:
    """PNG files and manifest.csv for two 384-well plates; returns {(plate, well): spike level}."""
    from PIL import Image

    ds = kw.open_dataset("fashion-mnist")
    split = split_for_config(ds, run.config.data, run.config.seed)
    known, novel = split.test, split.novel
    images = ds.images(np.arange(len(ds)))[:, 0].astype(np.uint8)
    rng = np.random.default_rng(seed)
    wells = [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25)]
    spikes, lines = {}, ["path,Metadata_Plate,Metadata_Well,Metadata_Spike"]
    for plate in ("P1", "P2"):
        spiked = rng.choice(len(wells), int(round(0.05 * len(wells))), replace=False)
        level = {wells[i]: LEVELS[j % len(LEVELS)] for j, i in enumerate(spiked)}
        (folder / plate).mkdir(parents=True, exist_ok=True)
        for w in wells:
            k = int(round(cells * level.get(w, 0.0)))
            idx = np.r_[rng.choice(known, cells - k), rng.choice(novel, k)]
            spikes[plate, w] = level.get(w, 0.0)
            for n, i in enumerate(idx):
                name = f"{plate}/{w}_{n}.png"
                Image.fromarray(images[i]).save(folder / name)
                lines.append(f"{name},{plate},{w},{level.get(w, 0.0)}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return spikes


def _screen(run_dir: Path, folder: Path, mc: int) -> tuple[int, str, float]:
    """Runs `knowwhen screen` in a fresh process: its exit code, its output and its own peak RSS in MB (wait4
    reports the screen process alone, not the training this script may have done before)."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "knowwhen", "screen", str(run_dir), str(folder / "manifest.csv"),
                                 "--mc", str(mc), "--out", str(folder / "screen"), "--quiet"],
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        return proc.returncode, log.read(), usage.ru_maxrss / 1024


def _calls(wells: list[dict], spikes: dict, q_column: str, fdr: float = 0.05) -> dict:
    """Recall of spiked wells by spike level and false hits per plate when hits are the wells with q below fdr."""
    called = {(w["Metadata_Plate"], w["Metadata_Well"]) for w in wells if float(w[q_column]) < fdr}
    recall = {str(level): f"{sum(k in called for k, v in spikes.items() if v == level)} of "
                          f"{sum(v == level for v in spikes.values())}" for level in LEVELS}
    false_hits = {plate: sum(1 for (pl, w) in called if pl == plate and spikes[pl, w] == 0) for plate in ("P1", "P2")}
    return {"recall_by_spike": recall, "false_hits_per_plate": false_hits,
            "all_spiked_at_30_percent_called": all(k in called for k, v in spikes.items() if v >= 0.3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", default=None, help="a run trained on fashion-mnist with one class held out")
    p.add_argument("--holdout", default="Trouser", help="class held out when no --run is given")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--cells", type=int, default=195, help="cells per well (2 x 384 x 195 = 149,760)")
    p.add_argument("--mc", type=int, default=100)
    p.add_argument("--keep", default=None, help="folder for the plates and the screen (default: temporary)")
    args = p.parse_args()
    run_dir = _run(args)
    run = kw.load_run(run_dir)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="kw-screen-"))
    t0 = time.perf_counter()
    spikes = _write_plates(run, folder, args.cells)
    write_s = time.perf_counter() - t0
    cells = len(spikes) * args.cells
    t0 = time.perf_counter()
    code, text, peak_mb = _screen(run_dir, folder, args.mc)
    screen_s = time.perf_counter() - t0
    if code:
        raise SystemExit(text[-3000:])
    print(text)
    wells = list(csv.DictReader(open(folder / "screen" / "wells.csv")))
    by_test = {test: _calls(wells, spikes, key) for test, key in (("rank", "q_value_rank"), ("binomial", "q_value"))}
    result = {"run": str(run_dir), "holdout": run.info.get("data", {}).get("holdout_classes"), "cells": cells,
              "wells": len(spikes), "mc_passes": args.mc, "score": "novelty (default)", "hit_test": "rank (default)",
              **by_test["rank"], "binomial_test": by_test["binomial"], "screen_seconds": round(screen_s, 1),
              "cells_per_second": round(cells / screen_s, 1), "peak_rss_mb": round(peak_mb),
              "png_writing_seconds": round(write_s, 1),
              "targets": {"all_spiked_at_30_percent_called": True, "max_false_hits_per_plate": 1,
                          "cells_per_second": 800}}
    # another plate size gets its own file, so two sizes side by side show whether memory stays flat
    write_result("screen_fashion_mnist" + (f"_cells{args.cells}" if args.cells != 195 else ""), result)


if __name__ == "__main__":
    main()
