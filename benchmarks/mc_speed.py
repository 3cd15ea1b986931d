"""MC dropout speed: the course cnn on the Fashion-MNIST test images, T = 100, five ways, one run.

1. the deterministic pass (dropout off);
2. knowwhen's reference loop (T full passes, masks by hooks);
3. TorchUncertainty's MC-dropout wrapper, strategy "loop": T full passes with dropout on;
4. TorchUncertainty's MC-dropout wrapper, strategy "batch repeat": the batch repeated T times, one pass;
5. knowwhen's fast engine;
6. the fast engine and the deterministic pass in bf16 (`--precision bf16`: torch's autocast), where the CPU has
   native bf16 (the flags are recorded; elsewhere the rows are skipped, as emulated bf16 says nothing of speed).
TorchUncertainty 0.13 itself cannot be imported here (it imports torchvision, which does not load on these
machines), so (3) and (4) reproduce its two strategies in a few lines: only the dropout layers in train
mode, batch norm in eval. Targets: (5) at most 6x (1), and at least 20x faster than (3) and (4); (6) the bf16
engine at most 2.0x the fp32 deterministic pass (moonshot 1.5x).
The network is randomly initialised: speed does not depend on the weights.
Run: .venv/bin/python benchmarks/mc_speed.py [--images 10000] [--passes 100]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from _common import write_result

import knowwhen as kw
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.precision import autocast, cpu_flags, native_bf16
from knowwhen.uncertainty import MCDropout


def _dropout_on(model: nn.Module) -> None:
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()


@torch.no_grad()
def tu_loop(model, x, passes, batch):
    _dropout_on(model)
    return [torch.stack([model(x[i:i + batch]).softmax(-1) for _ in range(passes)])
            for i in range(0, len(x), batch)]


@torch.no_grad()
def tu_batch_repeat(model, x, passes, batch):
    _dropout_on(model)
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        out.append(model(xb.repeat(passes, 1, 1, 1)).softmax(-1).view(passes, len(xb), -1))
    return out


@torch.no_grad()
def deterministic(model, x, batch):
    model.eval()
    return [model(x[i:i + batch]).softmax(-1) for i in range(0, len(x), batch)]


def engine(model, x, passes, batch, kind):
    mc = MCDropout(model, passes, seed=0, engine=kind)
    return [mc.predict(x[i:i + batch]) for i in range(0, len(x), batch)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--passes", type=int, default=100)
    p.add_argument("--batch", type=int, default=500, help="batch for all but the batch-repeat strategy")
    p.add_argument("--repeat-batch", type=int, default=50, help="images per batch-repeat forward (x T rows)")
    args = p.parse_args()
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    ds = kw.open_dataset(name)
    idx = (np.flatnonzero(ds.split == "test") if ds.split is not None else np.arange(len(ds)))[: args.images]
    x = torch.from_numpy(ds.images(idx) / 255.0).float()
    torch.manual_seed(0)
    model = kw.create_model("cnn", ds.shape, len(ds.class_names)).eval()
    t, b = args.passes, args.batch
    deterministic(model, x[:b], b)  # warm-up
    seconds = {
        "deterministic": timed(lambda: deterministic(model, x, b)),
        "fast_engine": timed(lambda: engine(model, x, t, b, "fast")),
        "reference_loop": timed(lambda: engine(model, x, t, b, "reference")),
        "torch_uncertainty_loop": timed(lambda: tu_loop(model, x, t, b)),
        "torch_uncertainty_batch_repeat": timed(lambda: tu_batch_repeat(model, x, t, args.repeat_batch)),
    }
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    if native_bf16("cpu")[0]:
        with autocast("bf16"):
            engine(model, x[:b], t, b, "fast")  # warm-up of the bf16 kernels
            seconds["deterministic_bf16"] = timed(lambda: deterministic(model, x, b))
            seconds["fast_engine_bf16"] = timed(lambda: engine(model, x, t, b, "fast"))
    base = seconds["deterministic"]
    ratio = {k: round(v / base, 2) for k, v in seconds.items()}
    fast = seconds["fast_engine"]
    write_result("mc_speed", {
        "dataset": name, "cpu_flags": flags, "device": "cpu", "images": len(x), "passes": t, "batch": b, "repeat_batch": args.repeat_batch,
        "seconds": {k: round(v, 2) for k, v in seconds.items()}, "x_deterministic": ratio,
        "fast_vs_tu_loop": round(seconds["torch_uncertainty_loop"] / fast, 1),
        "fast_vs_tu_batch_repeat": round(seconds["torch_uncertainty_batch_repeat"] / fast, 1),
        "targets": {"fast_x_deterministic_max": 6, "fast_vs_each_tu_min": 20, "fast_bf16_x_deterministic_max": 2.0},
        "meets_target": ratio["fast_engine"] <= 6 and min(seconds["torch_uncertainty_loop"],
                                                           seconds["torch_uncertainty_batch_repeat"]) / fast >= 20,
    })


if __name__ == "__main__":
    main()
