"""After training: accuracy and loss on the run's own splits (and, from `temperature`, the softmax's temperature)."""
from __future__ import annotations

import numpy as np
import torch

from ..config import TrainConfig
from ..data import ImageDataset
from ..data.loader import make_loader
from ..data.splits import Split
from ..training.losses import LOSSES
from .run import Run
from .temperature import softmax_temperature, temperature_note


@torch.no_grad()
def logits_and_labels(model: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) logits of `model` in eval mode over a loader of (x, y), and the (N,) labels."""
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        logits.append(model(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def split_metrics(run: Run, ds: ImageDataset, split: Split, config: TrainConfig) -> dict:
    """{val,test}_{loss,acc,images} of the run's best weights with dropout off, and on validation (from 50
    images) the fitted temperature with the ECE before and after it."""
    out = {}
    for name in ("val", "test"):
        idx = getattr(split, name)
        if len(idx) == 0:
            continue
        logits, y = logits_and_labels(run.model, make_loader(ds, idx, run.normalizer, 512, label_map=split.label_map))
        out[f"{name}_acc"] = float((logits.argmax(1) == y).mean())
        out[f"{name}_loss"] = float(LOSSES[config.loss](torch.from_numpy(logits), torch.from_numpy(y)))
        out[f"{name}_images"] = int(len(idx))
        if name == "val" and temperature_note(len(idx)) is None:
            out.update(softmax_temperature(logits, y))
    return out
