"""What the feature-space scores and the fused novelty score cost: `predict --mc 100` on the 10,000 Fashion-MNIST
test images with and without them (the same run, its features.safetensors / reference.safetensors hidden for the
MC-only variant), alternated, each in a fresh process that reports its time and peak memory.
Target: the scores add at most 15% to the time (issue 30; it was 30%); memory stays flat (one batch at a time).
Run: .venv/bin/python benchmarks/feature_scores_speed.py [--run RUN] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_result

CHILD = """
import json, resource, sys, time
import knowwhen as kw
run = kw.load_run(sys.argv[1])
if sys.argv[2] == "mc_only":
    run.features = run.reference = None
ds = kw.open_dataset("fashion-mnist")
import numpy as np
test = ds.subset(np.flatnonzero(ds.split == "test"))
start = time.perf_counter()
kw.write_predictions(run, test, sys.argv[3], kw.PredictOptions(mc=100, progress=False))
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run_dir(given: str | None) -> str:
    if given:
        return given
    import knowwhen as kw

    out = Path(tempfile.mkdtemp(prefix="kw-speed-")) / "run"
    kw.train(kw.TrainConfig(kw.DataConfig("fashion-mnist", holdout_classes=("Shirt",)), kw.ModelConfig("cnn"),
                            epochs=1, progress=False), out)
    return str(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", default=None, help="a run trained on fashion-mnist (default: train one, 1 epoch)")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    run = _run_dir(args.run)
    results: dict[str, list] = {"mc_only": [], "with_scores": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for variant in results:
                out = Path(tmp) / f"{variant}-{i}.csv"
                r = subprocess.run([sys.executable, "-c", CHILD, run, variant, str(out)], capture_output=True,
                                   text=True, check=True)
                results[variant].append(json.loads(r.stdout.strip().splitlines()[-1]))
                print(variant, results[variant][-1])
    best = {k: min(x["seconds"] for x in v) for k, v in results.items()}
    ratio = best["with_scores"] / best["mc_only"]
    write_result("feature_scores_speed", {
        "run": run, "images": 10000, "mc_passes": 100, "runs": results,
        "best_seconds": {k: round(v, 2) for k, v in best.items()}, "ratio": round(ratio, 3), "target_ratio": 1.15,
        "peak_rss_mb": {k: round(max(x["peak_rss_mb"] for x in v)) for k, v in results.items()},
        "meets_target": ratio <= 1.15, "date_started": time.strftime("%Y-%m-%d %H:%M:%S"),
    })


if __name__ == "__main__":
    main()
