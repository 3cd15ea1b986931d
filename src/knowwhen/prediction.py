"""Predictions of a saved run on any dataset or array, streamed batch by batch."""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .atomic import atomic_open
from .checkpoint import Run
from .data import ImageDataset
from .errors import DataError


@dataclass
class PredictionBatch:
    """One batch of predictions.

    Attributes:
        indices: (n,) positions in the dataset.
        ids: where each image came from (file path or `name:index`).
        labels: the true class name of each image, or "" where unknown.
        probs: (n, K) softmax probabilities over the run's classes.
    """

    indices: np.ndarray
    ids: list[str]
    labels: list[str]
    probs: np.ndarray


def check_compatible(run: Run, ds: ImageDataset) -> None:
    """Raises DataError when `ds` images do not have the shape the run was trained on."""
    if tuple(ds.shape) != tuple(run.input_shape):
        raise DataError(f"{ds.path}: images are {ds.shape} (C, H, W) but run {run.path} was trained on "
                        f"{tuple(run.input_shape)}; give images of that size and channel count.")


@torch.no_grad()
def predict_proba(run: Run, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(n, K) softmax probabilities for raw images (n, C, H, W), with dropout off.

    Example:
        >>> probs = predict_proba(load_run("runs/digits"), images)  # doctest: +SKIP
    """
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1:] != tuple(run.input_shape):
        raise DataError(f"images are {images.shape[1:]} but run {run.path} expects {tuple(run.input_shape)}.")
    run.model.eval()
    out = [torch.softmax(run.model(run.preprocess(images[i:i + batch_size])), dim=1).numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.empty((0, len(run.class_names)), np.float32)


def predict(run: Run, images: np.ndarray) -> np.ndarray:
    """(n,) predicted class names for raw images (n, C, H, W)."""
    return np.asarray(run.class_names)[predict_proba(run, images).argmax(axis=1)]


def predict_dataset(run: Run, ds: ImageDataset, batch_size: int = 512,
                    progress: bool = True) -> Iterator[PredictionBatch]:
    """Yields PredictionBatch for every image of `ds`, in order; memory stays one batch."""
    from tqdm.auto import tqdm

    check_compatible(run, ds)
    names = np.asarray(ds.class_names + ("",))  # label -1 (unknown) picks ""
    order = np.arange(len(ds))
    bar = tqdm(total=len(ds), unit="img", desc="predicting", disable=not progress, file=sys.stderr, leave=False)
    with bar:
        for idx, images in ds.batches(order, batch_size):
            yield PredictionBatch(idx, [ds.item_id(i) for i in idx], names[ds.labels[idx]].tolist(),
                                  predict_proba(run, images, batch_size))
            bar.update(len(idx))


def write_predictions(run: Run, ds: ImageDataset, out: str | Path, batch_size: int = 512,
                      progress: bool = True) -> Path:
    """Writes one CSV row per image: id, label (when known), pred, p_max, prob_<class>.

    Rows are streamed to a temporary file that replaces `out` only when every image is done.
    """
    out = Path(out)
    header = ["id"] + (["label"] if (ds.labels >= 0).any() else []) + ["pred", "p_max"]
    header += [f"prob_{c}" for c in run.class_names]
    classes = np.asarray(run.class_names)
    with atomic_open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for b in predict_dataset(run, ds, batch_size, progress):
            pred, p_max = classes[b.probs.argmax(1)], b.probs.max(1)
            for i in range(len(b.indices)):
                label = [b.labels[i]] if "label" in header else []
                writer.writerow([b.ids[i], *label, pred[i], f"{p_max[i]:.6g}", *(f"{p:.6g}" for p in b.probs[i])])
    return out
