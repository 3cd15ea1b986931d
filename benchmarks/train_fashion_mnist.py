"""The course's Keras MNIST CNN on all of Fashion-MNIST (60,000 train / 10,000 test), through knowwhen.

Target: at least 92% test accuracy within 15 minutes on 2 CPU cores.
Run: .venv/bin/python benchmarks/train_fashion_mnist.py [--epochs 12] [--minutes 15]
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from _common import write_result

import knowwhen as kw


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--minutes", type=float, default=14.0, help="training time limit")
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    args = p.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="kw-bench-"))
    # All 60,000 training images are used (no validation split), as in the course; the best epoch is
    # chosen by training loss and the 10,000 t10k images are only used once, at the end.
    config = kw.TrainConfig(kw.DataConfig("fashion-mnist", val_fraction=0.0), kw.ModelConfig("cnn"),
                            epochs=args.epochs, patience=None, max_minutes=args.minutes, batch_size=128,
                            accelerator=args.accelerator)
    start = time.perf_counter()
    run_dir = kw.train(config, out, overwrite=True)
    wall = time.perf_counter() - start
    run = kw.load_run(run_dir)
    with open(run_dir / "metrics.csv") as f:
        epochs = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in epochs]
    write_result("train_fashion_mnist", {
        "model": "cnn", "train_images": run.info["data"]["sizes"]["train"],
        "test_images": run.metrics["test_images"], "epochs": len(epochs),
        "seconds_per_epoch": round(sum(seconds) / len(seconds), 2), "wall_seconds": round(wall, 1),
        "test_acc": round(run.metrics["test_acc"], 4), "target_test_acc": 0.92, "target_minutes": 15,
        "meets_target": run.metrics["test_acc"] >= 0.92 and wall <= 15 * 60,
        "per_epoch": [{k: r[k] for k in ("epoch", "train_loss", "train_acc", "seconds")} for r in epochs],
    })


if __name__ == "__main__":
    main()
