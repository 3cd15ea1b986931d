"""How far bf16 prediction is from fp32 on a trained run: `evaluate --mc 100` on Fashion-MNIST with Shirt held out
(a `cnn`, 1 epoch), once in fp32 and once with `--precision bf16`; per-image differences of the measures and the
differences of every novelty AUROC. Target (issue 30): measures within 1e-3, novelty AUROCs within 0.002.
Run: .venv/bin/python benchmarks/bf16_agreement.py [--run RUN]
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.precision import cpu_flags

MEASURES = ("p_max", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "energy", "knn", "rel_mahalanobis",
            "novelty")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", default=None)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kw-bf16-"))
    run_dir = a.run or kw.train(kw.TrainConfig(kw.DataConfig("fashion-mnist", holdout_classes=("Shirt",)),
                                               kw.ModelConfig("cnn"), epochs=1, progress=False), work / "run")
    run, ds = kw.load_run(run_dir), kw.open_dataset("fashion-mnist")
    aurocs, rows, seconds = {}, {}, {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        m = kw.evaluate_run(run, ds, work / precision, kw.EvaluateOptions(mc=100, progress=False, precision=precision))
        seconds[precision] = round(time.perf_counter() - t0, 1)
        aurocs[precision] = {r["measure"]: r["auroc"] for r in m["novelty"]["measures"]}
        rows[precision] = list(csv.DictReader(open(work / precision / "predictions.csv")))
    diffs = {c: float(np.max(np.abs([float(x[c]) - float(y[c]) for x, y in zip(rows["fp32"], rows["bf16"])])))
             for c in MEASURES}
    delta = {k: round(aurocs["bf16"][k] - aurocs["fp32"][k], 5) for k in aurocs["fp32"]}
    write_result("bf16_agreement", {
        "run": str(run_dir), "images": len(rows["fp32"]), "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16",
                                                                                                    "amx_bf16"}),
        "seconds": seconds, "max_abs_difference": {k: round(v, 5) for k, v in diffs.items()},
        "auroc_fp32": aurocs["fp32"], "auroc_bf16_minus_fp32": delta,
        "max_auroc_difference": max(abs(v) for v in delta.values()),
        "target": "measures within 1e-3; novelty AUROCs within 0.002"})


if __name__ == "__main__":
    main()
