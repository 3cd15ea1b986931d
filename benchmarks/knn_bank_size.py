"""How large the kNN bank must be: the kNN score's novelty AUROC and its cost against the bank's size.

The run: a `cnn` trained on Fashion-MNIST without --holdout (default Shirt, the look-alike class), 2 epochs.
Dropout-off features (the last dense layer's input) of every training image, the known test images and the held-out
class's test images. For each bank size, a seeded sample of the training features is the bank; the score is the
distance to the k-th nearest normalised bank feature, with k = 50 (the default) and with k scaled to the bank
(k = 50 x size / 50,000, at least 1: the same quantile of the neighbours). Also far-away images: scikit-learn's
digits upscaled to 28 x 28. Timing: the similarity product and top-k for 10,000 images, per size.
Run: .venv/bin/python benchmarks/knn_bank_size.py [--holdout Shirt] [--epochs 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from _common import write_result

import knowwhen as kw
from knowwhen.uncertainty.features import feature_tap
from knowwhen.uncertainty.mc import padded_chunks

SIZES = (50_000, 20_000, 10_000, 5_000, 2_000, 1_000)


def features(run, images: np.ndarray) -> torch.Tensor:
    out = []
    run.model.eval()
    with torch.no_grad():
        for block, n in padded_chunks(run.preprocess(images)):
            with feature_tap(run.model) as tap:
                run.model(block)
            out.append(tap["features"][:n].float())
    return torch.nn.functional.normalize(torch.cat(out), dim=1)


def knn(f: torch.Tensor, bank: torch.Tensor, k: int) -> np.ndarray:
    out = []
    for start in range(0, len(f), 256):
        sims = f[start:start + 256] @ bank.T
        out.append(torch.sqrt(torch.clamp(2 - 2 * sims.topk(k, dim=1).values[:, -1], min=0)))
    return torch.cat(out).numpy()


def far_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    digits = torch.as_tensor(load_digits().images, dtype=torch.float32)[:, None] * (255 / 16)
    return torch.nn.functional.interpolate(digits, size=(28, 28), mode="bilinear").numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--holdout", default="Shirt")
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kw-knn-"))
    cfg = kw.TrainConfig(kw.DataConfig("fashion-mnist", holdout_classes=(a.holdout,)), kw.ModelConfig("cnn"),
                         epochs=a.epochs, progress=False, seed=0, calibration_mc=0)
    run = kw.load_run(kw.train(cfg, work / "run"))
    from knowwhen.data.splits import split_for_config

    ds = kw.open_dataset("fashion-mnist")
    split = split_for_config(ds, run.config.data, run.config.seed)
    train = features(run, ds.images(np.sort(split.train)))
    known, novel, far = (features(run, ds.images(np.sort(split.test))), features(run, ds.images(np.sort(split.novel))),
                         features(run, far_images()))
    rng = np.random.default_rng(0)
    rows = []
    for size in SIZES:
        bank = train[np.sort(rng.choice(len(train), min(size, len(train)), replace=False))]
        for k in sorted({50, max(1, round(50 * size / 50_000))}):
            s_known, s_novel, s_far = knn(known, bank, k), knn(novel, bank, k), knn(far, bank, k)
            label = lambda a_, b_: np.r_[np.zeros(len(a_)), np.ones(len(b_))]  # noqa: E731 - novel = positive
            probe = known[:10_000]
            t0 = time.perf_counter()
            knn(probe, bank, k)
            seconds = time.perf_counter() - t0
            rows.append({"bank": len(bank), "k": k,
                         "auroc_near": round(float(roc_auc_score(label(s_known, s_novel), np.r_[s_known, s_novel])), 4),
                         "auroc_far": round(float(roc_auc_score(label(s_known, s_far), np.r_[s_known, s_far])), 4),
                         "seconds_per_10k": round(seconds * 10_000 / len(probe), 3)})
            print(rows[-1], flush=True)
    write_result("knn_bank_size", {"holdout": a.holdout, "epochs": a.epochs, "train_features": len(train),
                                   "known": len(known), "novel": len(novel), "far": len(far), "rows": rows})


if __name__ == "__main__":
    main()
