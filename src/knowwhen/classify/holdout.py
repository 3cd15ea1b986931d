"""After training: accuracy and loss on the run's own splits, and the temperature fitted on validation."""
from __future__ import annotations

import numpy as np
import torch

from ..config import TrainConfig
from ..data import ImageDataset
from ..data.loader import make_loader
from ..data.splits import Split
from ..evaluation import TemperatureScaler, expected_calibration_error, softmax
from ..training.losses import LOSSES
from .run import Run


@torch.no_grad()
def logits_and_labels(model: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) logits of `model` in eval mode over a loader of (x, y), and the (N,) labels."""
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        logits.append(model(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


# Below this many validation images a fitted temperature follows the noise of a few images (36 cells: 3
# validation images moved ECE from 0.002 to 0.113), so none is fitted and the plain softmax is used.
MIN_TEMPERATURE_IMAGES = 50


def temperature_note(val_images: int) -> str | None:
    """Why no temperature was fitted, or None when one was."""
    if val_images >= MIN_TEMPERATURE_IMAGES:
        return None
    return (f"not fitted: {val_images} validation image(s), fewer than {MIN_TEMPERATURE_IMAGES}; predictions use "
            "the plain softmax")


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
            out.update(_temperature(logits, y))
    return out


def _temperature(logits: np.ndarray, y: np.ndarray) -> dict:
    """Temperature scaling fitted on the validation logits (minimum NLL), with ECE before and after."""
    ts = TemperatureScaler().fit(logits, y)
    return {"temperature": ts.temperature_,
            "val_ece": expected_calibration_error(softmax(logits), y),
            "val_ece_temperature": expected_calibration_error(ts.transform(logits), y)}
