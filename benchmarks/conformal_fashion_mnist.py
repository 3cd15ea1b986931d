"""Conformal prediction sets on Fashion-MNIST: the course cnn trained with one class held out; its calibration
split (10% of the non-test images, kept apart at training) calibrates LAC, APS and RAPS sets, with and without
per-class thresholds, on the tempered softmax and on the MC mean; they are scored on the known images of the
10,000-image test split.

For each alpha in {0.05, 0.1, 0.2}: coverage (target 1 - alpha), mean set size, worst-class coverage, the rate of
flagged sets (empty or more than 3 classes), and the AUROC of set size as a novelty score for the held-out class
(novel = positive class; a larger set = more uncertain). A second part repeats the calibration over 100 random
halvings of calibration + test images, to show the mean coverage against the guarantee's band.
Run: .venv/bin/python benchmarks/conformal_fashion_mnist.py [--epochs 5] [--mc 100] [--holdout Shirt] [--out DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.classify.sets import load_calibration
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.data.splits import split_for_config
from knowwhen.evaluation.coverage import conformal_summary
from knowwhen.evaluation.novelty import novelty_metrics
from knowwhen.uncertainty.conformal import ConformalClassifier

ALPHAS = (0.05, 0.1, 0.2)
METHODS = ("lac", "aps", "raps")
MAX_SIZE = 3


def _run(args, name: str) -> Path:
    out = Path(args.out or tempfile.mkdtemp(prefix="kw-conformal-")) / "run"
    if (out / "config.json").exists() and kw.load_run(out, allow_incomplete=True).info.get("status") == "complete":
        return out
    config = kw.TrainConfig(kw.DataConfig(name, holdout_classes=(args.holdout,)), kw.ModelConfig("cnn"),
                            epochs=args.epochs, calibration_mc=args.mc, progress=False)
    kw.train(config, out, overwrite=True)
    return out


def _test_probs(run, ds, mc: int) -> dict:
    """Softmax and MC-mean probabilities of the test split and the held-out class's test images."""
    split = split_for_config(ds, run.config.data, run.config.seed)
    novel = split.novel[ds.split[split.novel] == "test"] if ds.split is not None else split.novel
    idx = np.sort(np.concatenate([split.test, novel]))   # the order predict_dataset yields (subset sorts)
    softmax, mean = [], []
    for b in kw.predict_dataset(run, ds.subset(idx), kw.run_engine(run, mc, seed=0), batch_size=1000,
                                progress=False):
        softmax.append(b.probs)
        mean.append(b.measures["probs_mc"])
    y = split.label_map[ds.labels[idx]]                    # -1 for the held-out class
    return {"softmax": np.concatenate(softmax), "mc": np.concatenate(mean), "y": y}


def _one(cal, test, method: str, alpha: float, by_class: bool, probs: str) -> dict:
    clf = ConformalClassifier(method, alpha, by_class, k_reg=1, lam=0.01).fit(cal.probs[probs], cal.labels, cal.keys)
    sets = clf.predict_sets(test[probs], np.arange(len(test["y"])))
    known, size = test["y"] >= 0, sets.sum(1)
    s = conformal_summary(sets[known], test["y"][known], alpha)
    flagged = (size == 0) | (size > MAX_SIZE)
    return {"alpha": alpha, "method": method, "by_class": by_class, "probs": probs, "coverage": s["coverage"],
            "mean_size": s["mean_size"], "worst_class_coverage": float(np.nanmin(s["per_class"])),
            "empty_rate": s["empty_rate"], "flag_rate_known": float(flagged[known].mean()),
            "flag_rate_novel": float(flagged[~known].mean()),
            "set_size_auroc": novelty_metrics(size[known].astype(float), size[~known].astype(float)).auroc}


def _resplits(cal, test, probs: str, method: str, alpha: float, repeats: int = 100) -> dict:
    """Mean coverage over random halvings of the pooled calibration + known test images (n per half)."""
    known = test["y"] >= 0
    p = np.concatenate([cal.probs[probs], test[probs][known]])
    y = np.concatenate([cal.labels, test["y"][known]])
    keys = np.arange(len(y))
    rng, cov = np.random.default_rng(0), []
    n = len(cal.labels)
    for _ in range(repeats):
        perm = rng.permutation(len(y))
        c, t = perm[:n], perm[n:]
        clf = ConformalClassifier(method, alpha, seed=int(rng.integers(1 << 31))).fit(p[c], y[c], keys[c])
        sets = clf.predict_sets(p[t], keys[t])
        cov.append(float(sets[np.arange(len(t)), y[t]].mean()))
    return {"probs": probs, "method": method, "alpha": alpha, "calibration_images": n, "repeats": repeats,
            "mean_coverage": float(np.mean(cov)), "sd_coverage": float(np.std(cov)),
            "guarantee_band": [1 - alpha, 1 - alpha + 1 / (n + 1)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--mc", type=int, default=100)
    p.add_argument("--holdout", default="Shirt")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    if name == "digits":
        args.holdout = "9"
    start = time.perf_counter()
    run = kw.load_run(_run(args, name))
    ds = kw.open_dataset(name)
    cal = load_calibration(run)
    test = _test_probs(run, ds, args.mc)
    rows = [_one(cal, test, m, a, b, pr) for a in ALPHAS for pr in ("softmax", "mc") for b in (False, True)
            for m in METHODS]
    print(f"{'alpha':>5} {'probs':>7} {'by_class':>8} {'method':>6} {'cover':>6} {'size':>5} {'worst':>6} "
          f"{'flag_k':>6} {'flag_n':>6} {'auroc':>6}")
    for r in rows:
        print(f"{r['alpha']:5.2f} {r['probs']:>7} {r['by_class']!s:>8} {r['method']:>6} {r['coverage']:6.3f} "
              f"{r['mean_size']:5.2f} {r['worst_class_coverage']:6.3f} {r['flag_rate_known']:6.3f} "
              f"{r['flag_rate_novel']:6.3f} {r['set_size_auroc']:6.3f}")
    resplits = [_resplits(cal, test, pr, m, 0.1) for pr in ("softmax", "mc") for m in METHODS]
    for r in resplits:
        print(f"resplit {r['probs']:>7} {r['method']:>5}: mean coverage {r['mean_coverage']:.4f} "
              f"(sd {r['sd_coverage']:.4f}), band {r['guarantee_band'][0]:.3f}..{r['guarantee_band'][1]:.4f}")
    write_result("conformal_fashion_mnist", {
        "dataset": name, "model": "cnn", "epochs": args.epochs, "mc_passes": args.mc, "holdout_class": args.holdout,
        "test_accuracy": run.metrics.get("test_acc"), "calibration_images": int(len(cal.labels)),
        "known_test_images": int((test["y"] >= 0).sum()), "novel_test_images": int((test["y"] < 0).sum()),
        "max_set_size_flag": MAX_SIZE,
        "convention": "set_size_auroc: novel = positive class; larger set = more uncertain",
        "rows": rows, "resplits": resplits, "minutes": round((time.perf_counter() - start) / 60, 1),
    })


if __name__ == "__main__":
    main()
