"""build_screen_report(screen_dir, ds): the review page of a screen, screen_dir/report.html.

One self-contained file (data as embedded JSON, thumbnails as PNG data URIs, plain JavaScript, no network
request): a plate map per plate coloured by the novel fraction with hits outlined; a click on a well shows its
most novel and most confident cells with their scores and predicted classes (for cells cut from fields, a click
on a cell shows its field with the cell outlined: PNGs in fields/ beside the page); a sortable hit table; buttons
that download the hit list and a well's cells as CSV.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..data import ImageDataset
from ..errors import DataError
from ..screen.wells import HIT_COLUMNS
from .field_views import field_views
from .figures import composite, composite_legend
from .screen_index import file_safe, index_page
from .screen_page import PAGE

MAX_LISTED_CELLS = 50_000  # above this many cells the page lists only each well's picked cells
THUMB = 64                  # thumbnails are upscaled (nearest) to at least this many pixels


PLATES_PER_PAGE = 4  # a screen of more plates gets one page per plate and an index: a page's size is a plate's


def build_screen_report(screen_dir: str | Path, ds: ImageDataset) -> Path:
    """Writes screen_dir/report.html from what `knowwhen.screen.screen_run` wrote there and the screen's images
    `ds` (for the thumbnails); returns its path. With more than PLATES_PER_PAGE plates, report.html is an index
    and each plate has its page, report-<plate>.html."""
    d = Path(screen_dir)
    if not (d / "screen.json").exists():
        raise DataError(f"{d}: no screen.json; run `knowwhen screen RUN DATA --out {d}` first.")
    summary = json.loads((d / "screen.json").read_text(encoding="utf-8"))
    picks = json.loads((d / "picks.json").read_text(encoding="utf-8"))
    wells = _rows(d / "wells.csv")
    plate_col = summary.get("plate_column", "Metadata_Plate")
    cells = _cell_lists(d, summary, plate_col, summary.get("well_column", "Metadata_Well"))
    plates = list(dict.fromkeys(w[plate_col] for w in wells))
    if len(plates) <= PLATES_PER_PAGE:
        return _write_page(d / "report.html", summary, wells, picks, cells, ds)
    rows = {str(p[plate_col]): p for p in summary["plates"]}
    pages = {}
    for plate in plates:
        mine = {"cells": rows[plate]["cells"], "wells": rows[plate]["wells"], "hits": rows[plate]["hits"],
                "plates": [rows[plate]], "index": "report.html"}
        pages[plate] = _write_page(d / f"report-{file_safe(plate)}.html", {**summary, **mine},
                                   [w for w in wells if w[plate_col] == plate], {plate: picks.get(plate, {})},
                                   {plate: cells[plate]} if cells and plate in cells else None, ds).name
    out = d / "report.html"
    write_text_atomic(out, index_page(summary, wells, plate_col, pages))
    return out


def _write_page(path: Path, summary: dict, wells: list[dict], picks: dict, cells: dict | None,
                ds: ImageDataset) -> Path:
    test = summary.get("hit_test", "binomial")  # screens made before the rank test used the binomial one
    data = {"summary": summary, "plate_column": summary.get("plate_column", "Metadata_Plate"),
            "well_column": summary.get("well_column", "Metadata_Well"), "wells": wells,
            "hit_columns": HIT_COLUMNS[test], "test": test, "group_by": summary.get("group_by"),
            "picks": picks, "thumbs": _thumbnails(ds, picks), "cells": cells,
            "fields": field_views(ds, _picked(picks), path.parent),
            "legend": composite_legend(list(ds.channel_names), ds.shape[0]) if ds.shape[0] > 1 else ""}
    page = PAGE.replace("__TITLE__", html.escape(f"knowwhen screen: {summary['data']}")).replace(
        "__TEST__", html.escape(test)).replace(
        "__INDEX__", f'<p><a href="{summary["index"]}">All plates</a></p>' if summary.get("index") else "").replace(
        "__DATA__", json.dumps(_finite(data), allow_nan=False).replace("</", "<\\/"))
    write_text_atomic(path, page)
    return path


def _finite(value):
    """`value` with every NaN / infinite float written as a string ("nan", "inf"): JSON has no such numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else str(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _picked(picks: dict) -> list[int]:
    """The indices of every picked cell, in order."""
    return sorted({c["index"] for wells in picks.values() for w in wells.values() for cells in w.values()
                   for c in cells})


def _thumbnails(ds: ImageDataset, picks: dict) -> dict[str, str]:
    """{cell index: PNG data URI} of every picked cell."""
    from PIL import Image

    index = _picked(picks)
    out = {}
    for start in range(0, len(index), 256):
        chunk = np.array(index[start:start + 256])
        for i, image in zip(chunk, ds.images(chunk)):
            rgb = composite(np.asarray(image, np.float32))
            arr = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
            im = Image.fromarray(arr)
            scale = max(1, THUMB // max(arr.shape[:2]))
            im = im.resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            out[str(int(i))] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return out


def _cell_lists(d: Path, summary: dict, plate_col: str, well_col: str) -> dict | None:
    """{plate: {well: [[id, predicted class, score, novel], ...]}} for the download buttons; None for screens of
    more than MAX_LISTED_CELLS cells (the page then offers each well's picked cells only)."""
    if summary["cells"] > MAX_LISTED_CELLS:
        return None
    fmt = summary.get("cells_format")  # a recount in the other format leaves the first table beside it
    path = d / f"cells.{fmt}" if fmt else next(d.glob("cells.*"))
    cols = [plate_col, well_col, "id", "pred_mc" if summary.get("mc_passes") else "pred", summary["score"], "novel"]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=cols).to_pydict()
        rows = zip(*(table[c] for c in cols))
    else:
        rows = ([r[c] for c in cols] for r in _rows(path))
    out: dict = {}
    for plate, well, cid, pred, score, novel in rows:
        out.setdefault(plate, {}).setdefault(well, []).append([cid, pred, float(score), _flag(novel)])
    return out


def _flag(value) -> int:
    """1 or 0 from a cell table's flag: a bool (Parquet), "True"/"False" (CSV), or 1.0/0.0 (screens before 0.2)."""
    return int(value == "True") if isinstance(value, str) and value in ("True", "False") else int(float(value))
