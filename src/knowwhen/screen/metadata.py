"""The metadata of a screen's images: plate, well and every other `Metadata_*` column, one value per image of the
dataset (in its order), read from a CSV manifest or from datasets beside the images in an NPZ / HDF5 file."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from ..data import ImageDataset
from ..data.folders import manifest_paths
from ..data.wellnames import canonical_well, well_position
from ..errors import DataError

log = logging.getLogger("knowwhen")
PLATE, WELL = "Metadata_Plate", "Metadata_Well"
PREFIX = "Metadata_"


def screen_metadata(path: str | Path, ds: ImageDataset, plate_column: str = PLATE,
                    well_column: str = WELL) -> dict[str, np.ndarray]:
    """{column: (N,) values} for every image of `ds` (opened from `path`): the `Metadata_*` columns and the
    plate and well columns (text; numbers stay numbers), from the dataset's own metadata (cells cut from fields:
    also ImageNumber, ObjectNumber, the centre), the CSV manifest's rows (matched by image path, so skipped images
    drop out) or from the NPZ / HDF5 arrays of those names."""
    path = Path(path)
    if ds.metadata is not None:  # cells cut from fields carry their own (ImageNumber, ObjectNumber, Metadata_*)
        columns = dict(ds.metadata)
    elif path.suffix.lower() == ".csv":
        columns = _csv_columns(path, ds)
    elif path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            columns = {k: np.asarray(z[k]) for k in z.files if _is_metadata(k, plate_column, well_column)}
    elif path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            columns = {k: np.asarray(f[k][()]) for k in f if _is_metadata(k, plate_column, well_column)}
    else:
        raise DataError(f"{path}: a screen is a CSV manifest (path and Metadata_* columns), an NPZ or an HDF5 file "
                        "with Metadata_* arrays beside the images.")
    for column in (plate_column, well_column):
        if column not in columns:
            raise DataError(f"{path}: no {column!r} column (metadata found: {', '.join(columns) or 'none'}); add it, "
                            f"or name yours with --{'plate' if column == plate_column else 'well'}-column.")
    out = {}
    for name, values in columns.items():
        if np.asarray(values).dtype.kind in "iufb":  # numbers stay numbers (ImageNumber joins back to CellProfiler)
            out[name] = np.asarray(values)
            continue
        values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()], dtype=object)
        if len(values) != len(ds):
            raise DataError(f"{path}: {name} has {len(values)} values for {len(ds)} images; give one per image.")
        out[name] = values.astype(str)
    return out


# Plate layouts by size: (wells, rows, columns). A screen's layout is the smallest that holds all of its wells.
LAYOUTS = ((96, 8, 12), (384, 16, 24), (1536, 32, 48))


def well_names(values: np.ndarray, where: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(N,) the wells spelled one way, row letter(s) and a two-digit column (A1 = A01 = a01 -> "A01"), and the
    plate layout they imply (`plate_layout`, logged); a name that is no well, or a well no plate of LAYOUTS has,
    is a DataError naming it."""
    unique, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    canonical = np.array([canonical_well(w, where) for w in unique], dtype=object).astype(str)
    wells, rows, cols = plate_layout(canonical)
    merged = len(unique) - len(set(canonical.tolist()))
    log.info("%s: %d wells, %d-well plate layout (%d rows x %d columns)%s", where, len(set(canonical.tolist())),
             wells, rows, cols, f"; {merged} other spelling(s) of the same wells (A1 = A01) merged" if merged else "")
    return canonical[inverse.reshape(-1)], (wells, rows, cols)


def plate_layout(wells) -> tuple[int, int, int]:
    """(wells, rows, columns) of the smallest plate of LAYOUTS that holds every well named (canonical names)."""
    positions = [well_position(w) for w in np.unique(np.asarray(wells, dtype=str))]
    last_row, last_col = max(p[0] for p in positions), max(p[1] for p in positions)
    return next(layout for layout in LAYOUTS if last_row < layout[1] and last_col < layout[2])


def _is_metadata(name: str, plate_column: str, well_column: str) -> bool:
    return name.startswith(PREFIX) or name in (plate_column, well_column)


def _csv_columns(path: Path, ds: ImageDataset) -> dict[str, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = [c for c in (reader.fieldnames or []) if c not in ("path", "label")]
    row_of = {}
    for i, resolved in enumerate(manifest_paths(path, [r["path"] for r in rows])):
        row_of.setdefault(resolved, i)
    idx = np.array([row_of[ds.item_id(i)] for i in range(len(ds))])
    return {c: np.array([rows[i][c] for i in idx], dtype=object) for c in fields}


def control_mask(metadata: dict[str, np.ndarray], controls: str | None, well_column: str, where: str) -> np.ndarray:
    """(N,) True for the control cells: `controls` is COLUMN=VALUE (e.g. Metadata_Treatment=DMSO) or a list of
    wells W1,W2,... (A01,B1: compared by position); None: no controls."""
    n = len(next(iter(metadata.values())))
    if not controls:
        return np.zeros(n, bool)
    if "=" in controls:
        column, value = (s.strip() for s in controls.split("=", 1))
        if column not in metadata:
            raise DataError(f"{where}: --controls {controls!r}: no column {column!r} (metadata: "
                            f"{', '.join(metadata)}).")
        mask = np.asarray(metadata[column]).astype(str) == value
    else:
        wells = {canonical_well(w, f"{where}: --controls") for w in controls.split(",") if w.strip()}
        absent = sorted(wells - set(metadata[well_column].tolist()))
        if absent:
            raise DataError(f"{where}: --controls names well(s) {', '.join(absent)} that hold no image; name the "
                            "control wells the screen has.")
        mask = np.isin(metadata[well_column], sorted(wells))
    if not mask.any():
        raise DataError(f"{where}: --controls {controls!r} matches no image; check the column and value, or the "
                        "wells.")
    return mask


def well_keys(plates, wells) -> np.ndarray:
    """(N,) one string per cell naming its (plate, well), to group cells by well with np.unique; `split_key`
    turns a key back into the pair."""
    return np.char.add(np.char.add(np.asarray(plates, str), "\x1f"), np.asarray(wells, str))


def split_key(key: str) -> tuple[str, str]:
    """(plate, well) of a `well_keys` key."""
    plate, well = key.split("\x1f", 1)
    return plate, well


def check_group_column(metadata: dict[str, np.ndarray], column: str, plate_column: str, well_column: str,
                       where: str) -> None:
    """A DataError unless `column` is a metadata column with one value per well (a treatment)."""
    if column not in metadata:
        raise DataError(f"{where}: --group-by {column!r}: no such column (metadata: {', '.join(metadata)}); name a "
                        "column that says the treatment of each well, e.g. Metadata_Compound.")
    wells = well_keys(metadata[plate_column], metadata[well_column])
    pairs = np.unique(well_keys(wells, metadata[column]))
    if len(pairs) != len(np.unique(wells)):
        raise DataError(f"{where}: --group-by {column!r} holds more than one value in some wells; group by a column "
                        "with one value per well (a treatment).")
