"""IDX files (MNIST, Fashion-MNIST), gzipped or not; a folder of train/t10k pairs keeps its test split."""
from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import ArraySource, ImageDataset
from .layout import layout_for

log = logging.getLogger("knowwhen")
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _raw_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e}); the file may be truncated or not gzip. "
                        "Download it again.") from None


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one IDX file, checked against its header."""
    path = Path(path)
    raw = _raw_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (wrong magic number {raw[:4].hex() or 'empty'}); "
                        "IDX files start with two zero bytes, a type byte and the number of dimensions.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; download the file again.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "padded"
        raise DataError(f"{path}: {state}: {len(raw)} bytes, header says {expected}; download the file again.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _pair(images: Path, labels: Path, name: str):
    x, y = read_idx(images), read_idx(labels)
    if y.ndim != 1:
        raise DataError(f"{labels}: a label file holds one value per image, found shape {y.shape}.")
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels; "
                        "use the matching pair of files.")
    return x, y.astype(np.int64)


def _labels_candidate(images: Path) -> Path:
    """Where the label file of an IDX image file would be (the image file itself when its name says nothing)."""
    return images.with_name(images.name.replace("images-idx3", "labels-idx1").replace("-images", "-labels"))


def _labels_path(images: Path) -> Path:
    candidate = _labels_candidate(images)
    if candidate == images or not candidate.exists():
        raise DataError(f"{images}: cannot find its label file (looked for {candidate.name}); "
                        "put the '*-labels-idx1-ubyte[.gz]' file beside it.")
    return candidate


def _class_names(path: Path, y: np.ndarray, options: dict) -> tuple[str, ...]:
    if options.get("class_names"):
        return tuple(options["class_names"])
    if "fashion" in str(path).lower() and y.max(initial=0) <= 9:
        return FASHION_MNIST_CLASSES
    return tuple(str(i) for i in range(int(y.max(initial=0)) + 1))


def open_idx(path: str | Path, options: dict | None = None) -> ImageDataset:
    """Opens one IDX image file (its label file beside it) or a folder of train/t10k pairs."""
    path, options = Path(path), dict(options or {})
    if path.is_dir():
        return _open_idx_folder(path, options)
    x, labels = read_idx(path), _labels_candidate(path)     # the file itself is checked first
    if labels == path or not labels.exists():
        log.info("%s: no label file beside it (looked for %s); the images are unlabelled (they can be predicted, "
                 "not trained on or evaluated)", path, labels.name)
        source = ArraySource(x, path.name, layout_for(x.shape[1:], str(path), options.get("channels", "auto")))
        names = tuple(options.get("class_names") or ())
        return ImageDataset(source, np.full(len(x), -1, dtype=np.int64), names, str(path), "idx")
    x, y = _pair(path, labels, path.name)
    source = ArraySource(x, path.name, layout_for(x.shape[1:], str(path), options.get("channels", "auto")))
    return ImageDataset(source, y, _class_names(path, y, options), str(path), "idx")


def _find(folder: Path, prefix: str) -> Path | None:
    hits = sorted(p for p in folder.iterdir() if re.match(rf"{prefix}-images[-.]idx3-ubyte(\.gz)?$", p.name))
    return hits[0] if hits else None


def _open_idx_folder(folder: Path, options: dict) -> ImageDataset:
    train, test = _find(folder, "train"), _find(folder, "t10k")
    if train is None:
        raise DataError(f"{folder}: no 'train-images-idx3-ubyte[.gz]' file in this folder; "
                        "point to an IDX file or a folder holding the train/t10k pairs.")
    parts = [(train, "train")] + ([(test, "test")] if test is not None else [])
    arrays = [_pair(p, _labels_path(p), p.name) for p, _ in parts]
    if len({a[0].shape[1:] for a in arrays}) != 1:
        raise DataError(f"{folder}: train and t10k images differ in size; use files from one dataset.")
    x = np.concatenate([a[0] for a in arrays])
    y = np.concatenate([a[1] for a in arrays])
    split = np.concatenate([np.full(len(a[1]), s) for a, (_, s) in zip(arrays, parts)])
    source = ArraySource(x, folder.name, layout_for(x.shape[1:], str(folder), options.get("channels", "auto")))
    return ImageDataset(source, y, _class_names(folder, y, options), str(folder), "idx", split=split)
