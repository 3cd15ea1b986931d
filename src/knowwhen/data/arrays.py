"""NPZ files with `x`, `y` and optional `class_names`, and plain arrays from Python."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import UNLABELLED, ArraySource, ImageDataset
from .layout import layout_for


def labels_and_names(y: np.ndarray | None, n: int, where: str, class_names=None):
    """Integer labels (one-hot rows become indices) and class names for `n` images."""
    if y is None:
        return np.full(n, UNLABELLED, dtype=np.int64), tuple(class_names or ())
    y = np.asarray(y)
    if y.ndim == 2:
        y = _from_one_hot(y, where)
    if y.ndim != 1:
        raise DataError(f"{where}: labels shaped {y.shape}; use one integer per image or one-hot rows.")
    if len(y) != n:
        raise DataError(f"{where}: {n} images but {len(y)} labels; give one label per image.")
    if y.dtype.kind in "iub":
        y = y.astype(np.int64)
        if len(y) and y.min() < 0:
            raise DataError(f"{where}: negative label {y.min()}; labels are class indices 0..K-1.")
        k = int(y.max(initial=-1)) + 1
        names = tuple(str(c) for c in class_names) if class_names is not None else tuple(str(i) for i in range(k))
        return y, names
    names = [str(v) for v in y]
    order = tuple(str(c) for c in class_names) if class_names is not None else tuple(sorted(set(names)))
    index = {c: i for i, c in enumerate(order)}
    stray = sorted(set(names) - set(index))
    if stray:
        raise DataError(f"{where}: label(s) {', '.join(stray[:5])} are not among the class names; add them.")
    return np.array([index[v] for v in names], dtype=np.int64), order


def _from_one_hot(y: np.ndarray, where: str) -> np.ndarray:
    rows = y.sum(axis=1)
    if not (np.isin(y, (0, 1)).all() and (rows == 1).all()):
        bad = int(np.flatnonzero(~np.isin(y, (0, 1)).all(axis=1) | (rows != 1))[0])
        raise DataError(f"{where}: label row {bad} is not one-hot (exactly one 1); fix the label matrix.")
    return y.argmax(axis=1).astype(np.int64)


def dataset_from_arrays(x: np.ndarray, y=None, class_names=None, channels: str = "auto",
                        image_shape=None, name: str = "array") -> ImageDataset:
    """An ImageDataset over in-memory arrays (x of shape (N, ...), y integer, string or one-hot)."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise DataError(f"{name}: images shaped {x.shape}; expected (N, ...) with one row per image.")
    if x.dtype.kind not in "uif":
        raise DataError(f"{name}: images of dtype {x.dtype}; expected numbers.")
    if x.dtype.kind == "f":
        _check_finite(x, name)
    labels, names = labels_and_names(y, len(x), name, class_names)
    source = ArraySource(x, name, layout_for(x.shape[1:], name, channels, image_shape))
    return ImageDataset(source, labels, names, name, "array")


def _check_finite(x: np.ndarray, name: str) -> None:
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        raise DataError(f"{name}: {len(bad)} image(s) hold NaN or infinite values, first at index {bad[0]}; "
                        "fix or remove them.")


def open_npz(path: str | Path, options: dict | None = None) -> ImageDataset:
    """Opens an NPZ with arrays `x` (images) and `y` (labels), and optionally `class_names`."""
    path, options = Path(path), dict(options or {})
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files:
                raise DataError(f"{path}: no array 'x' (found {', '.join(npz.files) or 'none'}); "
                                "save images as x=... and labels as y=....")
            x = npz["x"]
            y = npz["y"] if "y" in npz.files else None
            names = list(npz["class_names"]) if "class_names" in npz.files else options.get("class_names")
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read as NPZ ({e}); save it with numpy.savez(path, x=..., y=...).") from None
    ds = dataset_from_arrays(x, y, names, options.get("channels", "auto"), options.get("image_shape"), str(path))
    ds.format = "npz"
    return ds
