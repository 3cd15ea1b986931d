"""CellProfiler screens: fields listed in load_data.csv, objects in an object table (Nuclei.csv, Cells.csv).

load_data.csv has one row per field (CellProfiler's image set) with `FileName_<Channel>` and `PathName_<Channel>`
per channel (one grey image per file; PathName relative to the CSV's folder, or absolute, or absent: the CSV's
folder) and `Metadata_*` columns. A field's ImageNumber is its `ImageNumber` column when there is one, else its
row's position (1 for the first row), as CellProfiler numbers image sets. The object table has `ImageNumber`,
`ObjectNumber` and `Location_Center_X` / `Location_Center_Y` (or `<Object>_Location_Center_X/Y`), in pixels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .fields import FieldOptions, Objects, crop_dataset
from .images import decoded_image, header_shape

log = logging.getLogger("knowwhen")
CENTRE = ("Location_Center_X", "Location_Center_Y")


def read_table(path: Path) -> dict[str, np.ndarray]:
    """{column: values} of a CSV (numbers as numbers, text as str), or one DataError naming the file."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not Path(path).is_file():
        raise DataError(f"{path}: no such file; give the table's path.")
    try:
        table = pcsv.read_csv(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as a CSV table ({e}).") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: the table has no rows.")
    return {name: _column(table.column(name)) for name in table.column_names}


def _column(col) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        if col.null_count == 0:
            return col.to_numpy()
        return col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(["" if v is None else str(v) for v in col.to_pylist()], dtype=str)


def looks_like_load_data(path: Path) -> bool:
    """True for a CSV whose header names FileName_<Channel> columns."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline()
    except OSError:
        return False
    return any(h.strip().strip('"').startswith("FileName_") for h in header.split(","))


@dataclass
class LoadDataFields:
    """The fields of a load_data.csv: per field, one file per channel."""

    path: str
    files: list[list[Path]]  # [field][channel]
    channel_names: tuple[str, ...]
    shape: tuple[int, int] = None

    def __len__(self) -> int:
        return len(self.files)

    def size(self, i: int) -> tuple[int, int]:
        return self.shape

    def name(self, i: int) -> str:
        return f"{self.files[i][0]} (line {i + 2} of {self.path})"

    def read(self, i: int) -> np.ndarray:
        planes = [decoded_image(p) for p in self.files[i]]
        for p, plane in zip(self.files[i], planes):
            if plane.shape != (1, *self.shape):
                raise DataError(f"{p}: field image is {plane.shape} (C, H, W); load_data.csv's fields are one "
                                f"channel each, {self.shape[0]} x {self.shape[1]} px (the first field's size).")
        return np.concatenate(planes, axis=0)


def load_data_fields(path: Path, table: dict[str, np.ndarray]) -> LoadDataFields:
    """The fields of load_data.csv `path` (read as `table`), every file checked to exist."""
    channels = [c[len("FileName_"):] for c in table if c.startswith("FileName_")]
    files = []
    for ch in channels:
        folder = table.get(f"PathName_{ch}", np.full(len(table[f"FileName_{ch}"]), ""))
        files.append([path.parent / str(d) / str(f) for d, f in zip(folder, table[f"FileName_{ch}"])])
    files = [list(row) for row in zip(*files)]
    for row, field_files in enumerate(files):
        for ch, f in zip(channels, field_files):
            if not f.is_file():
                raise DataError(f"{path} line {row + 2}, FileName_{ch}: {f} does not exist; fix PathName_{ch} / "
                                f"FileName_{ch} (relative paths are read from the CSV's folder).")
    shape = header_shape(files[0][0])
    log.info("%s: %d fields, channels %s (from the FileName_ columns), %d x %d px", path, len(files),
             ", ".join(channels), shape[2], shape[1])
    return LoadDataFields(str(path), files, tuple(channels), (shape[1], shape[2]))


def open_cellprofiler(path: str | Path, options: FieldOptions) -> "ImageDataset":  # noqa: F821
    """The cells of a CellProfiler screen: crops around the objects of `options.objects` in the fields of
    load_data.csv `path`, with each field's Metadata_* and each object's columns (see `crop_dataset`)."""
    path = Path(path)
    if options.objects is None:
        raise DataError(f"{path}: a load_data.csv lists fields; give the object table with --objects (e.g. "
                        "Nuclei.csv, with ImageNumber and Location_Center_X/Y).")
    table = read_table(path)
    fields = load_data_fields(path, table)
    image_numbers = table["ImageNumber"].astype(np.int64) if "ImageNumber" in table else np.arange(1, len(fields) + 1)
    objects = cellprofiler_objects(Path(options.objects), image_numbers, table, options.label_column)
    return crop_dataset(fields, objects, options, str(path), "cellprofiler", [path, Path(options.objects)])


def centre_columns(table: dict, path: Path) -> tuple[str, str]:
    """The object table's centre columns: Location_Center_X/Y, or one <Object>_Location_Center_X/Y pair."""
    for x_name, y_name in [CENTRE] + [(c, c[:-1] + "Y") for c in table if c.endswith("_" + CENTRE[0])]:
        if x_name in table and y_name in table:
            return x_name, y_name
    raise DataError(f"{path}: no Location_Center_X and Location_Center_Y columns (columns: "
                    f"{', '.join(list(table)[:12])}...); export the objects' centres from CellProfiler (MeasureObject"
                    "SizeShape or the Location measurements).")


def cellprofiler_objects(path: Path, image_numbers: np.ndarray, images: dict[str, np.ndarray],
                         label_column: str | None = None) -> Objects:
    """The objects of a CellProfiler object table, matched to the fields by ImageNumber; each keeps ImageNumber,
    ObjectNumber, its centre, its own Metadata_* and other text columns (not the measurements), its field's
    Metadata_*, and `label_column` from either table."""
    table = read_table(path)
    if "ImageNumber" not in table:
        raise DataError(f"{path}: no ImageNumber column; the object table must say which field (load_data.csv row, "
                        "from 1) each object is in.")
    x_name, y_name = centre_columns(table, path)
    number = np.asarray(table["ImageNumber"])
    field_of = {int(v): i for i, v in enumerate(image_numbers.tolist())}
    known = np.array([int(v) in field_of if np.isfinite(v) else False for v in number.astype(np.float64)])
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise DataError(f"{path} line {i + 2}: ImageNumber {number[i]} matches no field of load_data.csv (it numbers "
                        f"{image_numbers.min()}..{image_numbers.max()}); {int((~known).sum())} object(s) like it. Give "
                        "the object table that CellProfiler wrote with this load_data.csv.")
    field = np.array([field_of[int(v)] for v in number], np.int64)
    objects_numbers = (table["ObjectNumber"].astype(np.int64) if "ObjectNumber" in table
                       else _numbered_within(field))
    columns = {"ImageNumber": number.astype(np.int64), "ObjectNumber": objects_numbers,
               "Location_Center_X": table[x_name].astype(np.float64),
               "Location_Center_Y": table[y_name].astype(np.float64)}
    for name, values in images.items():
        if name.startswith("Metadata_") or name == label_column:
            columns[name] = _text(values)[field]
    for name, values in table.items():
        if name not in columns and name not in (x_name, y_name) and (
                name.startswith("Metadata_") or values.dtype.kind == "U" or name == label_column):
            columns[name] = values
    return Objects(field, columns["Location_Center_X"], columns["Location_Center_Y"], columns,
                   lambda i: f"{path} line {i + 2}")


def _text(values: np.ndarray) -> np.ndarray:
    """`values` as text of the width they need (numbers made text would take numpy's 21 characters per cell)."""
    text = np.asarray(values).astype(str)
    return text.astype(f"<U{max(1, int(np.char.str_len(text).max(initial=1)))}")


def _numbered_within(field: np.ndarray) -> np.ndarray:
    """1, 2, ... for the objects of each field in table order (CellProfiler's ObjectNumber, when the table lacks it)."""
    out = np.zeros(len(field), np.int64)
    seen: dict[int, int] = {}
    for i, f in enumerate(field.tolist()):
        seen[f] = seen.get(f, 0) + 1
        out[i] = seen[f]
    return out
