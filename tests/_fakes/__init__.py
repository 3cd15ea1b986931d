"""Small files and datasets that tests write and share."""
from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEEPLOC = SHARED / "data" / "deeploc" / "Schuldiner_test_set.hdf5"
# Browser tests open pages in Debian's Chromium through chromedriver (the `browser` fixture in conftest.py).
NO_BROWSER = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Debian's chromium and chromium-driver are not installed (make setup installs them when run as root)")


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Writes a uint8 array as an IDX file (gzip when gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_image(path: Path, array: np.ndarray) -> Path:
    """Writes (H, W), (H, W, 3) uint8/uint16 as PNG/JPEG via Pillow, or any array as TIFF via tifffile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, array)
    else:
        from PIL import Image

        Image.fromarray(array).save(path)
    return path


def image_folder(root: Path, classes=("a", "b"), per_class: int = 4, shape=(8, 8), dtype=np.uint8,
                 suffix: str = ".png", seed: int = 0) -> Path:
    """ROOT/<class>/<i>.png with class-dependent brightness, so a model can tell them apart."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    for k, name in enumerate(classes):
        for i in range(per_class):
            base = (k + 1) / (len(classes) + 1) * top
            img = np.clip(base + rng.normal(0, top * 0.05, shape), 0, top).astype(dtype)
            write_image(root / name / f"{i:03d}{suffix}", img)
    return root
