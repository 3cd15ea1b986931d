"""Content fingerprints of image datasets: the same images are recognised however their path is spelled.

A run saves the fingerprint of the data it was trained on and the hashes of a sample of its training images;
evaluation compares them with the data it is given, so that a copy, a symlink or `d/../d/x.npz` of the training
data is scored on its test split, and other data that contains training images is noticed.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from .dataset import ImageDataset

FINGERPRINT_IMAGES = 64      # images read for a fingerprint, spread evenly over the set
TRAINING_SAMPLE = 1024       # training images whose hashes a run keeps


def image_hashes(images: np.ndarray) -> list[str]:
    """One 16-hex-digit hash per image of (n, C, H, W), of its float32 values."""
    x = np.ascontiguousarray(images, dtype=np.float32)
    return [hashlib.blake2b(row.tobytes(), digest_size=8).hexdigest() for row in x]


def dataset_fingerprint(ds: ImageDataset) -> str:
    """A hash of the number of images, their shape, the class names, every label and 64 evenly spread images."""
    h = hashlib.sha256(json.dumps([len(ds), list(ds.shape), list(ds.class_names)]).encode())
    h.update(np.ascontiguousarray(ds.labels, dtype=np.int64).tobytes())
    idx = np.unique(np.linspace(0, len(ds) - 1, min(FINGERPRINT_IMAGES, len(ds))).astype(np.int64))
    h.update("".join(image_hashes(ds.images(idx))).encode())
    return h.hexdigest()[:32]


def series_fingerprint(values: np.ndarray, names) -> str:
    """A hash of a series' column names and every value: whether a series file still holds what a run learned."""
    h = hashlib.sha256(json.dumps([list(map(str, names)), list(np.shape(values))]).encode())
    h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


def training_sample_hashes(ds: ImageDataset, train_idx: np.ndarray, seed: int) -> list[str]:
    """Hashes of up to 1,024 training images drawn with `seed` (sorted positions, so HDF5 reads stay sequential)."""
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(train_idx, size=min(TRAINING_SAMPLE, len(train_idx)), replace=False))
    return sorted(set(image_hashes(ds.images(take)))) if len(take) else []


def sampled_training_images_in(ds: ImageDataset, sample: list[str], batch_size: int = 1024) -> int:
    """How many of the sampled training-image hashes occur among the images of `ds` (one streamed read)."""
    wanted, found = set(sample), set()
    for _, images in ds.batches(np.arange(len(ds)), batch_size):
        found.update(wanted.intersection(image_hashes(images)))
    return len(found)
