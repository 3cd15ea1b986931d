"""DataLoaders that read whole batches at once (one HDF5 read or a batch of files), normalised."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .dataset import ImageDataset
from .normalize import Normalizer


class BatchDataset(Dataset):
    """Maps an array of positions to one normalised batch `(x, y)`; y is -1 where unknown."""

    def __init__(self, ds: ImageDataset, indices: np.ndarray, normalizer: Normalizer,
                 label_map: np.ndarray | None = None):
        self.ds, self.indices, self.normalizer = ds, np.asarray(indices, dtype=np.int64), normalizer
        self.label_map = label_map

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices[np.asarray(positions)]
        x = self.normalizer(self.ds.images(idx))
        y = self.ds.labels[idx]
        if self.label_map is not None:
            y = np.where(y >= 0, self.label_map[np.maximum(y, 0)], -1)
        return torch.from_numpy(x), torch.from_numpy(y)


class EpochBatchSampler:
    """Yields arrays of positions, reshuffled each epoch from (seed, epoch).

    Deriving the order from the epoch number (Lightning calls `set_epoch`) makes a resumed run see the
    same batches as an uninterrupted one. With `world` > 1 (distributed training) every rank walks the same
    global batches and takes its `rank::world` slice of each, so N processes see what one process would;
    the order is padded by wrapping around so that every rank gets as many, equally sized, batches.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1):
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0
        self.rank, self.world = rank, world
        self.batch_size = -(-batch_size // world) * world  # a multiple of world: equal slices per rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self._padded() // self.batch_size)

    def _padded(self) -> int:
        return -(-self.n // self.world) * self.world

    def __iter__(self):
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        order = np.resize(order, self._padded())  # wraps around: the padding repeats the first images
        for start in range(0, len(order), self.batch_size):
            yield order[start:start + self.batch_size][self.rank::self.world]


def make_loader(ds: ImageDataset, indices: np.ndarray, normalizer: Normalizer, batch_size: int,
                shuffle: bool = False, seed: int = 0, label_map: np.ndarray | None = None,
                num_workers: int = 0, rank: int = 0, world: int = 1) -> DataLoader:
    """A DataLoader of normalised `(x, y)` batches over `ds[indices]` (this rank's share when world > 1)."""
    sampler = EpochBatchSampler(len(indices), batch_size, shuffle, seed, rank, world)
    return DataLoader(BatchDataset(ds, indices, normalizer, label_map), sampler=sampler, batch_size=None,
                      num_workers=num_workers, persistent_workers=num_workers > 0)
