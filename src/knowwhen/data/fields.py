"""Cells cut on the fly from microscope fields around object centres: one crop per object, each field read once.

A screen arrives as fields (one image per site, one or more channels) and an object table (a centre per cell).
`crop_dataset` turns them into an ImageDataset whose images are the crops, cut as the fields are read batch by
batch (objects are ordered by field, and the last field read is kept, so a streamed pass reads each field once
and holds one field in memory). The readers of the two layouts live beside this file: `cellprofiler.py`
(load_data.csv + object tables) and `omezarr.py` (OME-Zarr HCS plates).

The box of an object centred at (x, y), in pixels of the field (x = column, y = row, from 0, as CellProfiler's
Location_Center_X/Y): the centre is rounded half up, cx = floor(x + 0.5), and the crop covers columns
cx - size//2 ... cx - size//2 + size - 1, rows likewise. Where the box leaves the field, `edge="pad"` fills the
missing pixels with 0 (the raw value; the run's normalisation then applies as to every pixel) and `edge="skip"`
drops the object; both are counted per well.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import DataError
from .arrays import labels_and_names
from .dataset import ImageDataset

log = logging.getLogger("knowwhen")
EDGES = ("pad", "skip")
PADDED = "crop_padded"  # the per-cell column: True where the crop reached beyond the field and was padded


@dataclass(frozen=True, kw_only=True)
class FieldOptions:
    """How cells are cut from fields.

    Attributes:
        objects: the object table (CellProfiler's Nuclei.csv, ...); None with an OME-Zarr plate: objects from its
            label images.
        crop_size: the crop's side in pixels; None: the run's input size (predict, screen, evaluate).
        edge: `pad` (zeros where the box leaves the field) or `skip` (drop those objects); counted either way.
        label_column: the object-table (or load_data) column holding each cell's class, for train and evaluate.
        labels: the name of the OME-Zarr label image to take objects from, when a field has several.
    """

    objects: str | Path | None = None
    crop_size: int | None = None
    edge: str = "pad"
    label_column: str | None = None
    labels: str | None = None

    def __post_init__(self):
        if self.edge not in EDGES:
            raise DataError(f"--edge {self.edge!r}: use pad or skip.")
        if self.crop_size is not None and self.crop_size < 2:
            raise DataError(f"--crop-size {self.crop_size}: use the crop's side in pixels, e.g. 64.")


class Fields(Protocol):
    """The fields of a screen: `read(i)` is field i as (C, H, W) in the order of `channel_names`."""

    channel_names: tuple[str, ...]
    path: str

    def __len__(self) -> int: ...

    def size(self, i: int) -> tuple[int, int]: ...

    def read(self, i: int) -> np.ndarray: ...

    def name(self, i: int) -> str: ...


@dataclass
class Objects:
    """One row per object: its field (index into Fields), centre, and the columns carried to the cell table."""

    field: np.ndarray
    x: np.ndarray
    y: np.ndarray
    columns: dict[str, np.ndarray]
    where: Callable[[int], str]  # object i -> where it was read ("Nuclei.csv line 12"), for error messages


@dataclass
class CropSource:
    """The crops of `objects` (sorted by field), each `size` x `size`, read from `fields` one field at a time."""

    fields: Fields
    field_of: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    size: int
    ids: np.ndarray
    channels: np.ndarray = None  # which of the fields' channels, in which order (None: all, as they are)
    shape: tuple[int, int, int] = None
    _cache: tuple = field(default=(None, None), repr=False)

    def __post_init__(self):
        c = len(self.fields.channel_names) if self.channels is None else len(self.channels)
        self.shape = (c, self.size, self.size)

    def __len__(self) -> int:
        return len(self.field_of)

    def item_id(self, index: int) -> str:
        return str(self.ids[index])

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = np.zeros((len(indices), *self.shape), np.float32)
        for row, i in enumerate(indices):
            image = self._field(int(self.field_of[i]))
            out[row] = _crop(image, int(self.x0[i]), int(self.y0[i]), self.size)
        return out

    def _field(self, f: int) -> np.ndarray:
        if self._cache[0] != f:
            image = self.fields.read(f)
            image = image if self.channels is None else image[self.channels]
            self._cache = (f, image)
        return self._cache[1]

    def with_channels(self, order: np.ndarray) -> "CropSource":
        """The same crops with the fields' channels taken in `order` (indices into the fields' channels)."""
        return CropSource(self.fields, self.field_of, self.x0, self.y0, self.size, self.ids, np.asarray(order))


def _crop(image: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
    """image[:, y0:y0+size, x0:x0+size], with 0 where the box leaves the image."""
    _, h, w = image.shape
    out = np.zeros((image.shape[0], size, size), np.float32)
    ya, yb, xa, xb = max(y0, 0), min(y0 + size, h), max(x0, 0), min(x0 + size, w)
    out[:, ya - y0:yb - y0, xa - x0:xb - x0] = image[:, ya:yb, xa:xb]
    return out


def crop_boxes(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-left corner (x0, y0) of each object's box: the centre rounded half up, minus size // 2."""
    cx, cy = np.floor(np.asarray(x, np.float64) + 0.5), np.floor(np.asarray(y, np.float64) + 0.5)
    return (cx - size // 2).astype(np.int64), (cy - size // 2).astype(np.int64)


def crop_dataset(fields: Fields, objects: Objects, options: FieldOptions, path: str, fmt: str,
                 sources: list[Path]) -> ImageDataset:
    """The ImageDataset of one crop per object, with the objects' columns as `metadata` (one value per crop) and
    the crops that reach beyond their field padded or skipped (`options.edge`), counted and logged."""
    size = options.crop_size
    if size is None:
        raise DataError(f"{path}: give the crop size with --crop-size (e.g. 64); with a run it is the run's input "
                        "size.")
    sizes = np.array([fields.size(i) for i in range(len(fields))], np.int64).reshape(-1, 2)[objects.field]
    _check_centres(fields, objects, sizes)
    x0, y0 = crop_boxes(objects.x, objects.y, size)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= sizes[:, 1]) & (y0 + size <= sizes[:, 0])
    keep = inside if options.edge == "skip" else np.ones(len(inside), bool)
    order = np.flatnonzero(keep)[np.argsort(objects.field[keep], kind="stable")]  # field by field: read once
    metadata = {k: np.asarray(v)[order] for k, v in objects.columns.items()}
    metadata[PADDED] = ~inside[order]
    skipped = _edge_counts(objects, ~inside, options.edge, path)
    if not len(order):
        raise DataError(f"{path}: every object's {size}x{size} box leaves its field, so --edge skip keeps none; use "
                        "--edge pad or a smaller --crop-size.")
    labels, class_names = _labels(metadata, options.label_column, path)
    ids = np.char.add(np.char.add("img", np.asarray(metadata["ImageNumber"]).astype(str)),
                      np.char.add("/obj", np.asarray(metadata["ObjectNumber"]).astype(str)))
    source = CropSource(fields, objects.field[order], x0[order], y0[order], size, ids)
    ds = ImageDataset(source, labels, class_names, path, fmt, channel_names=fields.channel_names, metadata=metadata,
                      skipped_objects=skipped,
                      origin={"objects": _digest(sources), "crop_size": size, "edge": options.edge})
    log.info("%s: %d cells from %d fields, %dx%d crops around the object centres (%d reach beyond their field: %s)",
             path, len(order), len(np.unique(objects.field)), size, size, int((~inside).sum()),
             "padded with 0" if options.edge == "pad" else "skipped")
    return ds


def _check_centres(fields: Fields, objects: Objects, sizes: np.ndarray) -> None:
    """A DataError naming the first object whose rounded centre is not a pixel of its field (`sizes`: (n, 2), the
    (height, width) of each object's field)."""
    cx, cy = np.floor(objects.x + 0.5), np.floor(objects.y + 0.5)
    bad = ~np.isfinite(objects.x) | ~np.isfinite(objects.y) | (cx < 0) | (cy < 0) | (cx >= sizes[:, 1]) | \
        (cy >= sizes[:, 0])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{objects.where(i)}: the centre ({objects.x[i]:g}, {objects.y[i]:g}) is outside its field "
                        f"{fields.name(int(objects.field[i]))} ({sizes[i, 1]} x {sizes[i, 0]} px; x is the column, y "
                        f"the row, from 0); {int(bad.sum())} object(s) like it. Fix the object table, or check that "
                        "it belongs to these fields.")


def _edge_counts(objects: Objects, beyond: np.ndarray, edge: str, path: str) -> dict[tuple[str, str], int]:
    """{(plate, well): objects skipped} for --edge skip (empty for pad; padded crops are flagged per cell)."""
    if edge != "skip" or not beyond.any():
        return {}
    plates = objects.columns.get("Metadata_Plate", np.full(len(beyond), ""))
    wells = objects.columns.get("Metadata_Well", np.full(len(beyond), ""))
    counts: dict[tuple[str, str], int] = {}
    for p, w in zip(np.asarray(plates)[beyond].tolist(), np.asarray(wells)[beyond].tolist()):
        counts[(str(p), str(w))] = counts.get((str(p), str(w)), 0) + 1
    log.info("%s: --edge skip dropped %d object(s) whose box leaves the field", path, int(beyond.sum()))
    return counts


def _labels(metadata: dict, column: str | None, path: str):
    if column is None:
        return np.full(len(metadata[PADDED]), -1, np.int64), ()
    if column not in metadata:
        raise DataError(f"{path}: --label-column {column!r} is not a column of the object or image table "
                        f"(columns: {', '.join(metadata)}).")
    return labels_and_names(np.asarray(metadata[column]).astype(str), len(metadata[column]), path)


def _digest(paths: list[Path]) -> str:
    """A hash of the tables the cells came from, so that a changed object table is not mistaken for the old."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode() + Path(p).read_bytes())
    return h.hexdigest()[:32]


def field_of_cell(ds: ImageDataset, index: int) -> tuple[int, tuple[int, int, int]] | None:
    """(field index, (x0, y0, size) of the cell's box) for a cell cut from a field; None for other data."""
    source = ds.source
    if not isinstance(source, CropSource):
        return None
    return int(source.field_of[index]), (int(source.x0[index]), int(source.y0[index]), source.size)


def field_image(ds: ImageDataset, field_index: int) -> np.ndarray:
    """The whole field (C, H, W), channels in the dataset's order, of a dataset of cells cut from fields."""
    return ds.source._field(field_index).astype(np.float32)
