"""open_dataset: one call from a path or a built-in name to an ImageDataset."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .arrays import open_npz
from .builtin import BUILTINS, open_builtin
from .cellprofiler import looks_like_load_data, open_cellprofiler
from .dataset import ImageDataset
from .fields import FieldOptions
from .folders import open_folder, open_manifest
from .hdf5 import looks_like_deeploc, open_deeploc, open_hdf5
from .idx import open_idx
from .omezarr import looks_like_zarr, open_omezarr

FORMATS = ("idx", "folder", "csv", "npz", "hdf5", "deeploc", "cellprofiler", "omezarr")


def detect_format(path: Path) -> str:
    """The format name for `path`, from its suffix or (for folders) its contents."""
    name = path.name.lower()
    if path.is_dir():
        if looks_like_zarr(path):
            return "omezarr"
        has_idx = any("idx3-ubyte" in p.name for p in path.iterdir())
        return "idx" if has_idx else "folder"
    if "-ubyte" in name:
        return "idx"
    if name.endswith((".h5", ".hdf5", ".hdf")):
        return "deeploc" if looks_like_deeploc(path) else "hdf5"
    if name.endswith(".csv") and looks_like_load_data(path):
        return "cellprofiler"
    for suffix, fmt in (".csv", "csv"), (".npz", "npz"):
        if name.endswith(suffix):
            return fmt
    raise DataError(f"{path}: cannot tell the format from the name; pass --format with one of {', '.join(FORMATS)}.")


def open_dataset(source: str | Path, format: str | None = None, options: dict | None = None,
                 skip_bad: bool = False) -> ImageDataset:
    """Opens images with labels from a path or a built-in name.

    Args:
        source: a file, a folder, or a built-in name (`digits`, `fashion-mnist`).
        format: one of FORMATS to override detection.
        options: format options: `channels` ("auto"/"first"/"last"), `image_shape` (C, H, W) for flat rows,
            `x_key`/`y_key` for HDF5, `class_names` to fix the class order, `channel_names` (e.g. ("GFP", "RFP"))
            to name the channels (the report's colour legend; DeepLoc files name theirs). For fields (a
            CellProfiler load_data.csv, an OME-Zarr plate): `objects`, `crop_size`, `edge`, `label_column`,
            `labels`, the attributes of `FieldOptions`.
        skip_bad: skip unreadable image files (each one is listed) instead of stopping.

    Example:
        >>> ds = open_dataset("digits")
        >>> ds.shape, len(ds.class_names)
        ((1, 8, 8), 10)
    """
    if format is not None and format not in FORMATS:
        raise DataError(f"format {format!r} is unknown; use one of {', '.join(FORMATS)}.")
    if format is None and str(source) in BUILTINS and not Path(source).exists():
        return with_channel_names(open_builtin(str(source)), (options or {}).get("channel_names"))
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (built-in names: {', '.join(BUILTINS)}).")
    fmt = format or detect_format(path)
    openers = {
        "idx": lambda: open_idx(path, options),
        "folder": lambda: open_folder(path, options, skip_bad),
        "csv": lambda: open_manifest(path, options, skip_bad),
        "npz": lambda: open_npz(path, options),
        "hdf5": lambda: open_hdf5(path, options),
        "deeploc": lambda: open_deeploc(path, options),
        "cellprofiler": lambda: open_cellprofiler(path, field_options(options)),
        "omezarr": lambda: open_omezarr(path, field_options(options)),
    }
    given = sorted(set(options or {}) & set(FIELD_KEYS))
    if given and fmt not in FIELD_FORMATS:
        raise DataError(f"{path}: {', '.join(given)} apply to fields (a CellProfiler load_data.csv with FileName_ "
                        f"columns, or an OME-Zarr plate); this is {fmt} data, already one image per cell.")
    return with_channel_names(openers[fmt](), (options or {}).get("channel_names"))


FIELD_FORMATS = ("cellprofiler", "omezarr")
FIELD_KEYS = ("objects", "crop_size", "edge", "label_column", "labels")


def field_options(options: dict | None) -> FieldOptions:
    """The FieldOptions among the format options (keys FIELD_KEYS)."""
    return FieldOptions(**{k: v for k, v in (options or {}).items() if k in FIELD_KEYS})


def with_channel_names(ds: ImageDataset, names) -> ImageDataset:
    """`ds` with its channels named `names` (a tuple, or one text for one channel); unchanged for None."""
    if names is None:
        return ds
    names = (names,) if isinstance(names, str) else tuple(str(n) for n in names)
    if len(names) != ds.shape[0]:
        raise DataError(f"{ds.path}: option channel_names gives {len(names)} name(s) ({', '.join(names)}) for "
                        f"{ds.shape[0]} channel(s); give one name per channel, e.g. --option channel_names=GFP,RFP.")
    ds.channel_names = names
    return ds
