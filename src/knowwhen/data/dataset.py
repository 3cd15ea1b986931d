"""ImageDataset: images read lazily in batches, with labels, class names and item ids."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import DataError

UNLABELLED = -1


class ImageSource(Protocol):
    """Reads images by index. `read` takes sorted unique indices and returns (n, C, H, W)."""

    shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def read(self, indices: np.ndarray) -> np.ndarray: ...

    def item_id(self, index: int) -> str: ...


@dataclass
class ArraySource:
    """Images already in memory (or memory-mapped), any layout converted by `to_nchw`."""

    array: np.ndarray
    name: str
    to_nchw: Callable[[np.ndarray], np.ndarray]
    shape: tuple[int, int, int] = None

    def __post_init__(self):
        self.shape = tuple(self.to_nchw(self.array[:1]).shape[1:])

    def __len__(self) -> int:
        return len(self.array)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.to_nchw(self.array[indices])

    def item_id(self, index: int) -> str:
        return f"{self.name}:{index}"


@dataclass
class SubsetSource:
    """The images of another source at sorted `indices`."""

    base: ImageSource
    indices: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.base.shape

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.base.read(self.indices[indices])  # sorted in, sorted out: indices are increasing

    def item_id(self, index: int) -> str:
        return self.base.item_id(int(self.indices[index]))


@dataclass
class ChannelSource:
    """The images of another source with their channels taken in `order` (indices of the base's channels)."""

    base: ImageSource
    order: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.order), *self.base.shape[1:])

    def __len__(self) -> int:
        return len(self.base)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.base.read(indices)[:, self.order]

    def item_id(self, index: int) -> str:
        return self.base.item_id(index)


@dataclass
class ImageDataset:
    """A labelled (or unlabelled) image collection that is read batch by batch.

    Attributes:
        source: the reader behind the images.
        labels: (N,) int64 class indices into `class_names`; -1 where unknown.
        class_names: class names in a fixed order (index i is class i).
        path: where the data came from.
        format: the detected or given format name.
        split: (N,) array of "train"/"test" when the data has a predefined test split, else None.
        channel_names: one name per channel (e.g. DeepLoc's RFP, DIC), or () when the data does not say.
        metadata: {column: (N,) values} the data carries per image (cells cut from fields: ImageNumber,
            ObjectNumber, the centre, Metadata_*), or None.
        skipped_objects: {(plate, well): objects} left out because their crop left the field (`--edge skip`).
        origin: what else decides the images besides `path` (the object table's hash, the crop size), for caches.

    Example:
        >>> ds = knowwhen.open_dataset("digits")  # doctest: +SKIP
        >>> x = ds.images(np.arange(10))           # (10, 1, 8, 8) float32
    """

    source: ImageSource
    labels: np.ndarray
    class_names: tuple[str, ...]
    path: str
    format: str
    split: np.ndarray | None = None
    channel_names: tuple[str, ...] = ()
    metadata: dict | None = None
    skipped_objects: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = tuple(str(c) for c in self.class_names)
        if len(self.labels) != len(self.source):
            raise DataError(f"{self.path}: {len(self.source)} images but {len(self.labels)} labels; "
                            "the image and label files must hold the same number of items.")
        if len(self.source) == 0:
            raise DataError(f"{self.path}: the dataset holds no images; point to a file or folder with images.")
        if len(self.labels) and self.labels.max(initial=-1) >= len(self.class_names):
            raise DataError(f"{self.path}: label {self.labels.max()} but only {len(self.class_names)} class names; "
                            "give one class name per label value.")

    def __len__(self) -> int:
        return len(self.source)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (C, H, W) shape of every image."""
        return tuple(self.source.shape)

    @property
    def labelled(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def item_id(self, index: int) -> str:
        return self.source.item_id(int(index))

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The images at `indices` as float32 (n, C, H, W), in the order asked.

        Raises DataError naming the items when any value is NaN or infinite.
        """
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices, kind="stable")
        uniq, inverse = np.unique(indices[order], return_inverse=True)
        batch = np.asarray(self.source.read(uniq), dtype=np.float32)[inverse]
        out = np.empty_like(batch)
        out[order] = batch
        self._check_finite(out, indices)
        return out

    def _check_finite(self, x: np.ndarray, indices: np.ndarray) -> None:
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            ids = [self.item_id(i) for i in indices[bad][:5]]
            raise DataError(f"{self.path}: NaN or infinite pixel values in {int(bad.sum())} image(s) of this batch, "
                            f"e.g. {', '.join(ids)}; fix or remove those images.")

    def class_counts(self) -> np.ndarray:
        """(K,) number of images per class (unlabelled images are not counted)."""
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.class_names))

    def subset(self, indices) -> "ImageDataset":
        """A dataset of the images at `indices` (kept in increasing order), read from the same source."""
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        split = None if self.split is None else self.split[indices]
        metadata = None if self.metadata is None else {k: v[indices] for k, v in self.metadata.items()}
        return ImageDataset(SubsetSource(self.source, indices), self.labels[indices], self.class_names,
                            self.path, self.format, split, self.channel_names, metadata, origin=self.origin)

    def in_channel_order(self, names) -> "ImageDataset":
        """This dataset with its channels in the order of `names` (matched by name); itself when either side
        names no channels or the order is already `names`. A channel of `names` it lacks, or one it has beyond
        them, is a DataError naming it."""
        names, mine = tuple(str(n) for n in names), tuple(self.channel_names)
        if not names or not mine or names == mine:
            return self
        missing, extra = [n for n in names if n not in mine], [n for n in mine if n not in names]
        if missing or extra:
            raise DataError(f"{self.path}: the data has channel(s) {', '.join(mine)} and the run was trained on "
                            f"{', '.join(names)}: " + "; ".join(
                                ([f"{', '.join(missing)} missing"] if missing else []) +
                                ([f"{', '.join(extra)} not used by the run"] if extra else [])) +
                            ". Give data with exactly the run's channels (names as the run has them).")
        order = np.array([mine.index(n) for n in names])
        source = self.source.with_channels(order) if hasattr(self.source, "with_channels") else \
            ChannelSource(self.source, order)
        return ImageDataset(source, self.labels, self.class_names, self.path, self.format, self.split, names,
                            self.metadata, self.skipped_objects, self.origin)

    def batches(self, indices: np.ndarray, batch_size: int):
        """Yields (indices, images) in order, `batch_size` images at a time."""
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            yield chunk, self.images(chunk)
