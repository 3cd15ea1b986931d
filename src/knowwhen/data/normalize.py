"""Per-channel normalisation (optional percentile clipping), fitted on training images only."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .dataset import ImageDataset

MAX_FIT_IMAGES = 50_000
MAX_PERCENTILE_VALUES = 1_000_000


@dataclass(frozen=True)
class Normalizer:
    """x -> (clip(x, low, high) - mean) / std, per channel.

    Attributes:
        mean, std: per-channel statistics of the (clipped) training images.
        clip_low, clip_high: per-channel clipping bounds, or None when not clipping.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip_low: tuple[float, ...] | None = None
    clip_high: tuple[float, ...] | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Normalises a float32 batch (n, C, H, W)."""
        shape = (1, -1, 1, 1)
        if self.clip_low is not None:
            x = np.clip(x, np.reshape(self.clip_low, shape), np.reshape(self.clip_high, shape))
        return ((x - np.reshape(self.mean, shape)) / np.reshape(self.std, shape)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std),
                "clip_low": None if self.clip_low is None else list(self.clip_low),
                "clip_high": None if self.clip_high is None else list(self.clip_high)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        as_tuple = lambda v: None if v is None else tuple(float(x) for x in v)  # noqa: E731
        return cls(as_tuple(d["mean"]), as_tuple(d["std"]), as_tuple(d.get("clip_low")), as_tuple(d.get("clip_high")))


def fit_normalizer(ds: ImageDataset, indices: np.ndarray, clip_percentiles=None, seed: int = 0,
                   batch_size: int = 1024) -> Normalizer:
    """Fits a Normalizer on `ds` images at `indices` (the training split).

    Statistics come from a seeded sample of at most 50,000 images, so fitting stays quick and bounded in
    memory on screens of millions; percentiles come from at most 1,000,000 pixel values per channel.
    """
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(indices, size=min(len(indices), MAX_FIT_IMAGES), replace=False))
    low = high = None
    if clip_percentiles is not None:
        low, high = _percentiles(ds, sample, clip_percentiles, rng, batch_size)
    total, total_sq, count = 0.0, 0.0, 0
    for _, x in _progress(ds.batches(sample, batch_size), len(sample), batch_size, "normalisation"):
        x = x.astype(np.float64)
        if low is not None:
            x = np.clip(x, low[None, :, None, None], high[None, :, None, None])
        total = total + x.sum(axis=(0, 2, 3))
        total_sq = total_sq + (x ** 2).sum(axis=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    std = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)  # a constant channel stays finite
    as_tuple = lambda v: tuple(float(a) for a in v)  # noqa: E731
    return Normalizer(as_tuple(mean), as_tuple(std),
                      None if low is None else as_tuple(low), None if high is None else as_tuple(high))


def _progress(batches, n: int, batch_size: int, what: str):
    from tqdm.auto import tqdm

    return tqdm(batches, total=-(-n // batch_size), desc=f"fitting {what}", unit="batch", leave=False,
                disable=n < 10_000, file=sys.stderr)


def _percentiles(ds, sample, clip_percentiles, rng, batch_size):
    c, h, w = ds.shape
    per_image = max(1, min(h * w, MAX_PERCENTILE_VALUES // max(len(sample), 1)))
    values = []
    for _, x in _progress(ds.batches(sample, batch_size), len(sample), batch_size, "clip percentiles"):
        flat = x.reshape(len(x), c, h * w)
        # Every pixel when they fit in the budget (exact percentiles), else a sample without replacement.
        pick = np.arange(h * w) if per_image >= h * w else rng.choice(h * w, per_image, replace=False)
        values.append(flat[:, :, pick].transpose(1, 0, 2).reshape(c, -1))
    values = np.concatenate(values, axis=1)
    lo, hi = clip_percentiles
    return np.percentile(values, lo, axis=1), np.percentile(values, hi, axis=1)
