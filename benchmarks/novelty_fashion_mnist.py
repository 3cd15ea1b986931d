"""Leave-one-class-out novelty detection on Fashion-MNIST: for each of the 10 classes, train the course cnn
without it (a few epochs), then score the known test images against the held-out class with every measure.

Prints and writes the class x measure AUROC table (novel = positive class; higher score = more uncertain,
p_max and p_max_mc negated) and, per class, whether the best MC measure beats p_max.
Runs and evaluations go to a scratch folder (default: a temporary one), not into the repository; the
experiment is resumable with --out.
Run: .venv/bin/python benchmarks/novelty_fashion_mnist.py [--epochs 2] [--mc 100] [--out /tmp/nov]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.classify.leave_one_out import auroc_table, novelty_experiment


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--mc", type=int, default=100)
    p.add_argument("--classes", default="all")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    config = kw.TrainConfig(kw.DataConfig(name), kw.ModelConfig("cnn"), epochs=args.epochs, progress=False)
    start = time.perf_counter()
    classes = None if args.classes == "all" else args.classes.split(",")
    rows = novelty_experiment(config, args.out or tempfile.mkdtemp(prefix="kw-novelty-"), classes, args.mc,
                              progress=False)
    table = auroc_table(rows)
    print(table)
    by_class: dict[str, dict[str, float]] = {}
    for r in rows:
        by_class.setdefault(r["heldout_class"], {})[r["measure"]] = float(r["auroc"])
    mc_beats = {c: max(v for m, v in a.items() if m.endswith("_mc")) > a["p_max"] for c, a in by_class.items()}
    measures = list(next(iter(by_class.values())))
    write_result("novelty_fashion_mnist", {
        "dataset": name, "model": "cnn", "epochs_per_class": args.epochs, "mc_passes": args.mc,
        "convention": "novel = positive class; higher score = more uncertain (p_max, p_max_mc negated)",
        "auroc": by_class,
        "mean_auroc": {m: round(float(np.mean([a[m] for a in by_class.values()])), 4) for m in measures},
        "best_mc_measure_beats_p_max": mc_beats,
        "classes_where_mc_beats_p_max": int(sum(mc_beats.values())),
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "table": table.splitlines(),
    })


if __name__ == "__main__":
    main()
