"""knowwhen's Lightning training vs a plain PyTorch loop: same model, data, batches; time per epoch.

Both train the course `cnn` with Adam (lr 1e-3, batch 128) on the same Fashion-MNIST training images
(digits when Fashion-MNIST is not installed), in one process, alternating
(knowwhen, plain, plain, knowwhen). Target: knowwhen / plain <= 1.10.
Run: .venv/bin/python benchmarks/train_overhead.py [--epochs 3] [--images 60000]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import write_result

import knowwhen as kw
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.data.loader import EpochBatchSampler
from knowwhen.data.normalize import fit_normalizer
from knowwhen.training.losses import cross_entropy_loss
from knowwhen.seed import seed_everything


def plain_epochs(ds, indices, epochs: int, batch_size: int, seed: int) -> list[float]:
    """Seconds per epoch of a hand-written loop over in-memory, pre-normalised tensors."""
    norm = fit_normalizer(ds, indices, seed=seed)
    x = torch.from_numpy(norm(ds.images(indices)))
    y = torch.from_numpy(ds.labels[indices])
    seed_everything(seed)
    net = kw.create_model("cnn", ds.shape, len(ds.class_names))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sampler = EpochBatchSampler(len(indices), batch_size, shuffle=True, seed=seed)
    times = []
    net.train()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        for batch in sampler:
            opt.zero_grad()
            loss = cross_entropy_loss(net(x[batch]), y[batch])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def knowwhen_epochs(ds, source: str, epochs: int, batch_size: int, seed: int) -> list[float]:
    out = Path(tempfile.mkdtemp(prefix="kw-overhead-"))
    cfg = kw.TrainConfig(kw.DataConfig(source, val_fraction=0.0, test_fraction=0.0), kw.ModelConfig("cnn"),
                         epochs=epochs, patience=None, batch_size=batch_size, seed=seed, progress=False)
    kw.train(cfg, out, dataset=ds)
    with open(out / "metrics.csv") as f:
        return [float(r["seconds"]) for r in csv.DictReader(f)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--images", type=int, default=60_000)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    full = kw.open_dataset(name)
    pool = np.flatnonzero(full.split == "train") if full.split is not None else np.arange(len(full))
    idx = pool[: args.images]
    ds = kw.dataset_from_arrays(full.images(idx), full.labels[idx], full.class_names, channels="first", name=name)
    every = np.arange(len(ds))
    # Alternate the two (kw, plain, plain, kw) so that drift in machine speed hits both alike.
    kw_times = knowwhen_epochs(ds, name, args.epochs, args.batch_size, 0)
    plain_times = plain_epochs(ds, every, args.epochs, args.batch_size, 0)
    plain_times += plain_epochs(ds, every, args.epochs, args.batch_size, 0)
    kw_times += knowwhen_epochs(ds, name, args.epochs, args.batch_size, 0)
    kw_epoch = statistics.median(kw_times)
    plain_epoch = statistics.median(plain_times)
    write_result("train_overhead", {
        "dataset": name, "images": len(ds), "epochs": args.epochs, "batch_size": args.batch_size,
        "knowwhen_seconds_per_epoch": [round(t, 2) for t in kw_times],
        "plain_seconds_per_epoch": [round(t, 2) for t in plain_times],
        "median_knowwhen": round(kw_epoch, 2), "median_plain": round(plain_epoch, 2),
        "ratio": round(kw_epoch / plain_epoch, 3), "target_ratio": 1.10,
        "meets_target": kw_epoch / plain_epoch <= 1.10,
        "note": "knowwhen times come from its metrics.csv (each training epoch incl. data loading and "
                "normalisation per batch); the plain loop uses pre-normalised tensors in memory.",
    })


if __name__ == "__main__":
    main()
