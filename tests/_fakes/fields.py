"""A synthetic screen as microscope fields: digit glyphs pasted at known centres into 16-bit fields, written as
CellProfiler would see it (one TIFF per field and channel, load_data.csv, an object table) and as an OME-Zarr
HCS plate (NGFF 0.4 or 0.5, written with ome-zarr-py), with the crops cut independently here for comparison."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CROP = 8  # the digits run's input size


@dataclass
class FieldScreen:
    fields: list[np.ndarray]  # (C, H, W) uint16, in load_data order
    meta: list[dict]  # per field: Metadata_Plate, Metadata_Well, Metadata_Site
    objects: list[dict]  # ImageNumber, ObjectNumber, Location_Center_X, Location_Center_Y (in table order)
    channels: tuple[str, ...]

    def crops(self, size: int = CROP) -> np.ndarray:
        """The crops of every object, cut here by padding each field with `size` zeros and slicing, ordered by
        ImageNumber (stable): the order knowwhen reads them in."""
        order = sorted(range(len(self.objects)), key=lambda i: self.objects[i]["ImageNumber"])
        out = []
        for i in order:
            o = self.objects[i]
            field = np.pad(self.fields[o["ImageNumber"] - 1], ((0, 0), (size, size), (size, size)))
            cx, cy = int(np.floor(o["Location_Center_X"] + 0.5)), int(np.floor(o["Location_Center_Y"] + 0.5))
            x0, y0 = cx - size // 2 + size, cy - size // 2 + size
            out.append(field[:, y0:y0 + size, x0:x0 + size])
        return np.stack(out).astype(np.float32)

    def crop_metadata(self) -> dict[str, np.ndarray]:
        order = sorted(range(len(self.objects)), key=lambda i: self.objects[i]["ImageNumber"])
        return {k: np.array([self.meta[self.objects[i]["ImageNumber"] - 1][k] for i in order])
                for k in ("Metadata_Plate", "Metadata_Well")}


def make_screen(wells=("A01", "A02", "B01", "B02"), sites=2, size=64, channels=("DNA",), per_field=9,
                novel_wells=(), seed=0, plate="P1") -> FieldScreen:
    """Fields of `size` px with `per_field` glyphs on a grid (centres with sub-pixel offsets, one exactly at .5),
    and in the first field one more object 3 px from the left border. Channel k holds the glyph times k + 1,
    transposed for odd k, so that swapped channels change what the network sees. Novel wells hold noise glyphs."""
    from sklearn.datasets import load_digits

    digits, targets = load_digits().images.astype(np.uint16), load_digits().target
    rng = np.random.default_rng(seed)
    fields, meta, objects = [], [], []
    grid = [(x, y) for y in range(8, size - 8, 14) for x in range(8, size - 8, 14)][:per_field]
    for well in wells:
        for site in range(1, sites + 1):
            field = rng.integers(0, 2, (len(channels), size, size)).astype(np.uint16)
            number = len(fields) + 1
            spots = list(grid) + ([(3, size // 2)] if number == 1 else [])
            for k, (cx, cy) in enumerate(spots):
                pick = int(rng.integers(0, len(digits)))
                glyph = rng.integers(0, 17, (8, 8)).astype(np.uint16) if well in novel_wells else digits[pick]
                x0, y0 = cx - CROP // 2, cy - CROP // 2
                for c in range(len(channels)):
                    g = (glyph.T if c % 2 else glyph) * (c + 1)
                    ya, xa = max(y0, 0), max(x0, 0)
                    field[c, ya:y0 + 8, xa:x0 + 8] += g[ya - y0:, xa - x0:]
                dx = (0.5 if k == 1 else rng.uniform(-0.45, 0.45))  # 0.5 rounds up: floor(x + 0.5)
                objects.append({"ImageNumber": number, "ObjectNumber": k + 1,
                                "Location_Center_X": cx + dx - (1 if k == 1 else 0),
                                "Location_Center_Y": cy + rng.uniform(-0.45, 0.45),
                                "Metadata_Class": "novel" if well in novel_wells else str(targets[pick])})
            fields.append(field)
            meta.append({"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": str(site)})
    return FieldScreen(fields, meta, objects, tuple(channels))


def write_cellprofiler(screen: FieldScreen, root: Path, channel_order=None, objects=None) -> tuple[Path, Path]:
    """One 16-bit TIFF per field and channel under root/images, load_data.csv (channels in `channel_order`) and
    Nuclei.csv; returns their paths."""
    import tifffile

    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    order = list(channel_order or screen.channels)
    rows = []
    for i, (field, m) in enumerate(zip(screen.fields, screen.meta)):
        row = {}
        for c, name in enumerate(screen.channels):
            file = f"{m['Metadata_Plate']}_{m['Metadata_Well']}_s{m['Metadata_Site']}_{name}.tif"
            tifffile.imwrite(root / "images" / file, field[c])
            row[name] = file
        rows.append({**{f"FileName_{n}": row[n] for n in order}, **{f"PathName_{n}": "images" for n in order}, **m})
    _write_csv(root / "load_data.csv", rows)
    _write_csv(root / "Nuclei.csv", objects if objects is not None else screen.objects)
    return root / "load_data.csv", root / "Nuclei.csv"


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_zarr_plate(screen: FieldScreen, path: Path, version: str = "0.4", labels: bool = False) -> Path:
    """The fields as an OME-Zarr HCS plate written by ome-zarr-py (NGFF `version`, Zarr v2 for 0.4 and v3 for
    0.5), channel names as omero labels; with `labels`, a label image per field with a 5x5 square of value
    ObjectNumber centred on each object's rounded centre."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels, write_plate_metadata, write_well_metadata

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    wells = list(dict.fromkeys(m["Metadata_Well"] for m in screen.meta))
    rows = sorted({w[0] for w in wells})
    cols = sorted({str(int(w[1:])) for w in wells}, key=int)
    write_plate_metadata(root, rows, cols, [f"{w[0]}/{int(w[1:])}" for w in wells], fmt=fmt,
                         name=screen.meta[0]["Metadata_Plate"])
    for well in wells:
        group = root.require_group(well[0]).require_group(str(int(well[1:])))
        numbers = [i for i, m in enumerate(screen.meta) if m["Metadata_Well"] == well]
        write_well_metadata(group, [str(k) for k in range(len(numbers))], fmt=fmt)
        for k, i in enumerate(numbers):
            image = group.require_group(str(k))
            write_image(screen.fields[i], image, axes="cyx", fmt=fmt, scaler=None)
            omero = {"channels": [{"label": c} for c in screen.channels]}
            if version == "0.4":
                image.attrs["omero"] = omero
            else:
                image.attrs["ome"] = {**image.attrs["ome"], "omero": omero}
            if labels:
                write_labels(_squares(screen, i), image, name="nuclei", axes="yx", fmt=fmt, scaler=None)
    return path


def _squares(screen: FieldScreen, i: int) -> np.ndarray:
    h, w = screen.fields[i].shape[1:]
    out = np.zeros((h, w), np.uint16)
    for o in screen.objects:
        if o["ImageNumber"] == i + 1:
            cx, cy = int(np.floor(o["Location_Center_X"] + 0.5)), int(np.floor(o["Location_Center_Y"] + 0.5))
            out[max(cy - 2, 0):cy + 3, max(cx - 2, 0):cx + 3] = o["ObjectNumber"]
    return out
