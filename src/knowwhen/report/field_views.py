"""Field views for the review page: each picked cell's whole field, downscaled, with the cell's box to outline.

Written as PNG files beside the page (fields/<n>.png, n the field's place in load_data.csv or the plate, from 1)
rather than inside it: a plate's picked cells come from hundreds of fields, and the page stays small; the browser
loads a field when it is shown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..data import ImageDataset
from ..data.fields import field_image, field_of_cell
from .figures import composite

FIELD_PX = 320  # a field view's longer side, in pixels


def field_views(ds: ImageDataset, indices, page_dir: Path) -> dict[str, list]:
    """{cell index: [field PNG path relative to the page, x0, y0, width, height]} for the cells of `indices` that
    were cut from fields (the box as fractions of the field's width and height); {} for other data."""
    boxes = {int(i): field_of_cell(ds, int(i)) for i in indices}
    boxes = {i: b for i, b in boxes.items() if b is not None}
    if not boxes:
        return {}
    out = {}
    folder = Path(page_dir) / "fields"
    folder.mkdir(exist_ok=True)
    for field in sorted({f for f, _ in boxes.values()}):
        image, factor = _downscaled(field_image(ds, field))
        name = f"fields/{field + 1}.png"
        _write_png(composite(image), Path(page_dir) / name)
        h, w = image.shape[1] * factor, image.shape[2] * factor  # the field's size, padded to whole blocks
        for i, (f, (x0, y0, size)) in boxes.items():
            if f == field:
                out[str(i)] = [name, x0 / w, y0 / h, size / w, size / h]
    return out


def _downscaled(image: np.ndarray) -> tuple[np.ndarray, int]:
    """(C, H/f, W/f) block means of a field, zero-padded to whole f x f blocks, with f the smallest integer that
    brings the longer side to FIELD_PX or below; and f. Scaled before the colour composite, whose percentiles
    would otherwise cost more than the network on a large field."""
    c, h, w = image.shape
    f = max(1, -(-max(h, w) // FIELD_PX))
    padded = np.pad(image, ((0, 0), (0, -h % f), (0, -w % f)))
    return padded.reshape(c, padded.shape[1] // f, f, padded.shape[2] // f, f).mean(axis=(2, 4)), f


def _write_png(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    im = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
