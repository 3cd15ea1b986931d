"""OME-Zarr HCS plates (OME-NGFF 0.4 on Zarr v2, 0.5 on Zarr v3): plate -> wells -> fields, cells cut around objects.

Read with the `zarr` library itself (v3, which opens Zarr v2 and v3 stores alike): the plate, well and multiscales
metadata are a few JSON keys, and zarr is the one dependency that every OME-Zarr reader (ome-zarr-py, iohub) is
built on, without their dask / napari-oriented extras. The wells and fields come from the plate and well
metadata; each field's full-resolution array is the first dataset of its multiscales (its path read from the
metadata, whatever it is called); its axes say which are c, y, x (t and z must be 1). Channel names come from the
`omero` channel labels. Metadata_Plate is the plate's name (else the store's name without .ome.zarr),
Metadata_Well its row and column (A01), Metadata_Site the field's place in the well's image list + 1 (as
CellProfiler counts sites), ImageNumber the field's place in the plate (wells in the plate's order, fields in
the well's) + 1.

Objects come from an object table keyed by Metadata_Well (A01 or A1) and Metadata_Site, centres in pixels of the
full-resolution level; or, without one, from each field's label image (`labels/<name>`): one object per label
value, its centre the centroid (scikit-image regionprops), ObjectNumber the label value.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cellprofiler import centre_columns, read_table
from .fields import FieldOptions, Objects, crop_dataset
from .wellnames import canonical_well

log = logging.getLogger("knowwhen")


def _ome(attrs: dict) -> dict:
    """The OME metadata of a group: under "ome" in NGFF 0.5, at the top in 0.4."""
    return attrs.get("ome", attrs)


def looks_like_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in (".zattrs", "zarr.json", ".zgroup"))


def _open_group(path: Path):
    try:
        import zarr
    except ImportError:
        raise DataError(f"{path}: reading OME-Zarr needs the zarr package: pip install 'knowwhen[zarr]'.") from None
    try:
        return zarr.open_group(str(path), mode="r")
    except Exception as e:  # zarr raises several types for a folder that is no store
        raise DataError(f"{path}: not a Zarr store ({type(e).__name__}: {e}).") from None


@dataclass
class ZarrFields:
    """The fields of an HCS plate: per field its full-resolution array and where t, c, z, y, x are."""

    path: str
    arrays: list  # zarr arrays
    axes: list[str]  # per field, its axis names, e.g. "tczyx"
    names: list[str]
    channel_names: tuple[str, ...]
    labels: list  # per field, its label group or None

    def __len__(self) -> int:
        return len(self.arrays)

    def size(self, i: int) -> tuple[int, int]:
        shape = dict(zip(self.axes[i], self.arrays[i].shape))
        return shape["y"], shape["x"]

    def name(self, i: int) -> str:
        return f"{self.path}/{self.names[i]}"

    def read(self, i: int) -> np.ndarray:
        return _cyx(np.asarray(self.arrays[i][...]), self.axes[i])


def _cyx(array: np.ndarray, axes: str) -> np.ndarray:
    """(C, Y, X) of an array with `axes` (its t and z of size 1 dropped; without c, one channel)."""
    for a in "tz":
        if a in axes:
            array, axes = array.take(0, axis=axes.index(a)), axes.replace(a, "")
    if "c" not in axes:
        array, axes = array[None], "c" + axes
    return np.transpose(array, [axes.index(a) for a in "cyx"])


def _field(group, where: str) -> tuple:
    """(full-resolution array, axis names, channel names) of one image group."""
    multiscales = _ome(group.attrs.asdict()).get("multiscales")
    if not multiscales:
        raise DataError(f"{where}: no multiscales metadata; each field of an HCS plate is an OME-NGFF image.")
    scale = multiscales[0]
    axes = "".join((a["name"] if isinstance(a, dict) else a) for a in scale.get("axes", "tczyx"))
    array = group[scale["datasets"][0]["path"]]
    if not {"y", "x"} <= set(axes) or len(axes) != array.ndim:
        raise DataError(f"{where}: axes {axes!r} for an array of {array.ndim} dimensions; need y and x.")
    sizes = dict(zip(axes, array.shape))
    for a in "tz":
        if sizes.get(a, 1) != 1:
            raise DataError(f"{where}: {sizes[a]} planes along {a}; knowwhen reads 2-D fields, so project or select "
                            f"one {'time point' if a == 't' else 'z plane'} first.")
    omero = _ome(group.attrs.asdict()).get("omero", {})
    names = tuple(str(c.get("label", "")) for c in omero.get("channels", []))
    return array, axes, names if len(names) == sizes.get("c", 1) and all(names) else ()


def plate_fields(path: Path) -> tuple[ZarrFields, dict[str, np.ndarray]]:
    """The fields of the HCS plate at `path`, and per field its Metadata_Plate/Well/Site and ImageNumber."""
    root = _open_group(path)
    plate = _ome(root.attrs.asdict()).get("plate")
    if not plate:
        raise DataError(f"{path}: a Zarr store without HCS plate metadata (no 'plate' key); give an OME-Zarr plate "
                        "(plate -> well -> field), or images in another format.")
    name = plate.get("name") or path.name.removesuffix(".zarr").removesuffix(".ome")
    rows, cols = [r["name"] for r in plate["rows"]], [c["name"] for c in plate["columns"]]
    arrays, axes, names, labels, meta, channels = [], [], [], [], {"Metadata_Plate": [], "Metadata_Well": [],
                                                                  "Metadata_Site": []}, None
    for well in plate["wells"]:
        group = root[well["path"]]
        label = canonical_well(rows[well["rowIndex"]] + cols[well["columnIndex"]], f"{path}/{well['path']}")
        images = _ome(group.attrs.asdict()).get("well", {}).get("images", [])
        for site, image in enumerate(images, start=1):
            where = f"{path}/{well['path']}/{image['path']}"
            array, field_axes, field_names = _field(group[image["path"]], where)
            channels = field_names if channels is None else channels
            if field_names != channels:
                raise DataError(f"{where}: channels {field_names} differ from the first field's {channels}.")
            arrays.append(array), axes.append(field_axes), names.append(f"{well['path']}/{image['path']}")
            labels.append(group[image["path"]]["labels"] if "labels" in group[image["path"]] else None)
            for k, v in (("Metadata_Plate", name), ("Metadata_Well", label), ("Metadata_Site", str(site))):
                meta[k].append(v)
    if not arrays:
        raise DataError(f"{path}: the plate's wells hold no fields.")
    log.info("%s: plate %s, %d wells, %d fields, channels %s", path, name, len(plate["wells"]), len(arrays),
             ", ".join(channels) if channels else "unnamed (no omero channel labels)")
    meta = {k: np.asarray(v, dtype=str) for k, v in meta.items()}
    meta["ImageNumber"] = np.arange(1, len(arrays) + 1)
    return ZarrFields(str(path), arrays, axes, names, channels or (), labels), meta


def open_omezarr(path: str | Path, options: FieldOptions) -> "ImageDataset":  # noqa: F821
    """The cells of an OME-Zarr HCS plate: crops around the objects of `options.objects` (keyed by Metadata_Well
    and Metadata_Site) or of the fields' label images."""
    path = Path(path)
    fields, meta = plate_fields(path)
    if options.objects is not None:
        objects, sources = table_objects(Path(options.objects), meta, options.label_column), [Path(options.objects)]
    else:
        objects, sources = label_objects(fields, meta, options.labels, path), []
    return crop_dataset(fields, objects, options, str(path), "omezarr", sources)


def table_objects(path: Path, meta: dict[str, np.ndarray], label_column: str | None) -> Objects:
    """The objects of a table keyed by Metadata_Well and Metadata_Site (and Metadata_Plate when it has one)."""
    table = read_table(path)
    for column in ("Metadata_Well", "Metadata_Site"):
        if column not in table:
            raise DataError(f"{path}: no {column} column; an object table for an OME-Zarr plate names each object's "
                            "well (A01) and site (the field's place in the well, from 1).")
    x_name, y_name = centre_columns(table, path)
    key = {(w, s): i for i, (w, s) in enumerate(zip(meta["Metadata_Well"], meta["Metadata_Site"]))}
    wells = [canonical_well(w, f"{path}: Metadata_Well") for w in np.asarray(table["Metadata_Well"]).astype(str)]
    sites = [str(int(float(s))) for s in table["Metadata_Site"]]
    field = np.array([key.get(k, -1) for k in zip(wells, sites)], np.int64)
    if "Metadata_Plate" in table and not (np.asarray(table["Metadata_Plate"]).astype(str) ==
                                          meta["Metadata_Plate"][0]).all():
        raise DataError(f"{path}: Metadata_Plate names another plate than {meta['Metadata_Plate'][0]!r}; give this "
                        "plate's objects.")
    if (field < 0).any():
        i = int(np.flatnonzero(field < 0)[0])
        raise DataError(f"{path} line {i + 2}: well {wells[i]} site {sites[i]} is no field of the plate; "
                        f"{int((field < 0).sum())} object(s) like it. Sites count from 1 in each well's image list.")
    columns = {k: v[field] for k, v in meta.items()}
    for name, values in table.items():
        if name not in columns and name not in (x_name, y_name):
            if name.startswith("Metadata_") or values.dtype.kind == "U" or name in ("ObjectNumber", label_column):
                columns[name] = values
    if "ImageNumber" in table:
        columns["ImageNumber"] = np.asarray(table["ImageNumber"]).astype(np.int64)
    columns.setdefault("ObjectNumber", np.arange(1, len(field) + 1))
    columns["Location_Center_X"] = np.asarray(table[x_name], np.float64)
    columns["Location_Center_Y"] = np.asarray(table[y_name], np.float64)
    return Objects(field, columns["Location_Center_X"], columns["Location_Center_Y"], columns,
                   lambda i: f"{path} line {i + 2}")


def label_objects(fields: ZarrFields, meta: dict[str, np.ndarray], name: str | None, path: Path) -> Objects:
    """One object per label value of each field's label image `name` (the only one when None), its centre the
    centroid of its pixels (regionprops; x = column, y = row)."""
    from skimage.measure import regionprops

    parts = []
    for i, group in enumerate(fields.labels):
        if group is None:
            raise DataError(f"{fields.name(i)}: no label image; give the objects with --objects TABLE.csv "
                            "(Metadata_Well, Metadata_Site, Location_Center_X/Y).")
        names = list(_ome(group.attrs.asdict()).get("labels", []))
        chosen = name or (names[0] if len(names) == 1 else None)
        if chosen not in names:
            raise DataError(f"{fields.name(i)}: label images {names}; choose one with --option labels=NAME.")
        array, axes, _ = _field(group[chosen], f"{fields.name(i)}/labels/{chosen}")
        image = _cyx(np.asarray(array[...]), axes)[0]
        props = regionprops(image.astype(np.int64))
        parts.append((i, [p.label for p in props], [p.centroid for p in props]))
    log.info("%s: objects from the label images (%s), centres by regionprops", path, name or "the only one")
    field = np.concatenate([np.full(len(labels), i, np.int64) for i, labels, _ in parts])
    number = np.concatenate([np.asarray(labels, np.int64) for _, labels, _ in parts])
    centre = np.concatenate([np.asarray(c, np.float64).reshape(-1, 2) for _, _, c in parts])
    columns = {k: v[field] for k, v in meta.items()}
    columns.update(ObjectNumber=number, Location_Center_X=centre[:, 1], Location_Center_Y=centre[:, 0])
    return Objects(field, centre[:, 1], centre[:, 0], columns, lambda i: f"{fields.name(int(field[i]))} object "
                   f"{number[i]}")
