"""HDF5 files with an image and a label dataset, read lazily; the `deeploc` preset."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .arrays import labels_and_names
from .dataset import ImageDataset
from .layout import layout_for

_X_GUESSES = ("x", "X", "images", "data", "data1")
_Y_GUESSES = ("y", "Y", "labels", "label", "targets", "Index1")
DEEPLOC = {"x_key": "data1", "y_key": "Index1", "image_shape": (2, 64, 64)}


@dataclass
class HDF5Source:
    """Rows of one HDF5 dataset, opened per process so that DataLoader workers are safe."""

    path: Path
    key: str
    layout: object
    length: int
    shape: tuple[int, int, int] = None

    def __post_init__(self):
        self._handle, self._pid = None, None
        self.shape = tuple(self.layout(self._dataset()[:1]).shape[1:])

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_handle", "_pid")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._handle, self._pid = None, None

    def _dataset(self):
        import h5py

        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._handle[self.key]

    def __len__(self) -> int:
        return self.length

    def read(self, indices: np.ndarray) -> np.ndarray:
        # h5py needs increasing indices; ImageDataset.images passes them sorted and unique.
        return self.layout(self._dataset()[np.asarray(indices)])

    def item_id(self, index: int) -> str:
        return f"{self.path.name}:{index}"


def _open_file(path: Path):
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not an HDF5 file ({e}); give an .h5/.hdf5 file or choose another --format.") from None


def _pick_key(f, path: Path, key: str | None, guesses, what: str, required: bool):
    import h5py

    datasets = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
    if key is not None:
        if key not in datasets:
            raise DataError(f"{path}: no dataset {key!r} for the {what} (datasets: {', '.join(datasets)}); "
                            f"set {what[0]}_key to one of them.")
        return key
    for guess in guesses:
        if guess in datasets:
            return guess
    if required:
        raise DataError(f"{path}: cannot tell which dataset holds the {what} (datasets: {', '.join(datasets)}); "
                        f"give --option x_key=NAME --option y_key=NAME.")
    return None


def _class_names(f, y_key: str, options: dict):
    if options.get("class_names"):
        return options["class_names"]
    for holder in (f.attrs, f[y_key].attrs):
        for attr in (f"{y_key}_columns", "class_names"):
            if attr in holder:
                return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(holder[attr])]
    return None


def open_hdf5(path: str | Path, options: dict | None = None) -> ImageDataset:
    """Opens an HDF5 file: images from `x_key`, labels (integer or one-hot) from `y_key`."""
    path, options = Path(path), dict(options or {})
    with _open_file(path) as f:
        x_key = _pick_key(f, path, options.get("x_key"), _X_GUESSES, "x (images)", True)
        y_key = _pick_key(f, path, options.get("y_key"), _Y_GUESSES, "y (labels)", False)
        x_shape = f[x_key].shape
        if f[x_key].dtype.kind not in "uif" or len(x_shape) < 2:
            raise DataError(f"{path}: dataset {x_key!r} is {f[x_key].dtype} shaped {x_shape}; "
                            "images must be numeric with one row per image.")
        y = f[y_key][()] if y_key else None
        names = _class_names(f, y_key, options) if y_key else None
    layout = layout_for(x_shape[1:], f"{path}:{x_key}", options.get("channels", "auto"), options.get("image_shape"))
    labels, names = labels_and_names(y, x_shape[0], f"{path}:{y_key}", names)
    source = HDF5Source(path, x_key, layout, x_shape[0])
    return ImageDataset(source, labels, names, str(path), "hdf5")


def looks_like_deeploc(path: Path) -> bool:
    """True for an HDF5 file with DeepLoc's `data1` rows of 8192 values and one-hot `Index1`."""
    with _open_file(path) as f:
        return ("data1" in f and "Index1" in f and f["data1"].ndim == 2
                and f["data1"].shape[1] == 8192 and f["Index1"].ndim == 2)


def open_deeploc(path: str | Path, options: dict | None = None) -> ImageDataset:
    """DeepLoc layout: `data1` rows of planar 2x64x64 crops, one-hot `Index1`, names in `Index1_columns`."""
    ds = open_hdf5(path, {**DEEPLOC, **(options or {})})
    ds.format = "deeploc"
    ds.channel_names = _deeploc_channels(Path(path))
    return ds


def _deeploc_channels(path: Path) -> tuple[str, ...]:
    """Channel names from DeepLoc's `data1_columns` ("RFP channel 64x64, DIC channel 64x64 flattened"), or ()."""
    with _open_file(path) as f:
        text = f["data1"].attrs.get("data1_columns", f.attrs.get("data1_columns", ""))
    text = text.decode() if isinstance(text, bytes) else str(text)
    names = tuple(part.split()[0] for part in text.split(",") if part.split())
    return names if len(names) == 2 else ()
