"""Image files (PNG, JPEG, TIFF; 8/16-bit, grey, RGB, multi-channel) read lazily, one batch at a time."""
from __future__ import annotations

import io
import struct
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8\xff"
# IHDR colour type -> channels as read_image returns them (a palette is expanded to RGB).
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def _tiff_channels_last(shape: tuple[int, ...], axes: str, path: Path) -> bool | None:
    """Where a TIFF keeps its channels: True (last), False (first), None (a grey 2-D image)."""
    if len(shape) == 2:
        return None
    if len(shape) != 3:
        raise DataError(f"{path}: TIFF holds an array shaped {shape} (axes {axes or '?'}); "
                        "knowwhen reads one 2-D image with optional channels per file.")
    if axes[-1:] in ("S", "C"):
        return True
    if axes[:1] in ("S", "C"):
        return False
    # Page-stacked files (axes like QYX) do not say which axis holds channels: take the smallest.
    return shape[-1] < min(shape[:2])


def _chw_shape(shape: tuple[int, ...], channels_last: bool | None) -> tuple[int, int, int]:
    if channels_last is None:
        return (1, *shape)
    return (shape[2], shape[0], shape[1]) if channels_last else tuple(shape)


def tiff_header_shape(path: Path) -> tuple[int, int, int]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return _chw_shape(series.shape, _tiff_channels_last(series.shape, series.axes, path))


def tiff_channel_names(path: Path, channels: int) -> tuple[str, ...]:
    """Channel names a TIFF carries: ImageJ's Labels, else its pages' PageName tags; () unless one per channel."""
    import tifffile

    if not _is_tiff(path):
        return ()
    with tifffile.TiffFile(path) as tif:
        names = list((tif.imagej_metadata or {}).get("Labels") or [])
        if len(names) != channels:
            names = [p.tags["PageName"].value for p in tif.pages if "PageName" in p.tags]
    return tuple(str(n) for n in names) if len(names) == channels else ()


def _pil_channels(mode: str) -> int:
    return {"1": 1, "L": 1, "P": 3, "I": 1, "F": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4,
            "YCbCr": 3, "PA": 4}.get(mode.split(";")[0], 1)


def png_header_shape(head: bytes) -> tuple[int, int, int] | None:
    """(C, H, W) from the IHDR chunk a PNG must start with; None unless `head` starts like a well-formed PNG.

    A screen checks every cell's file before it starts: 26 bytes and no decoder per file keep that step short.
    """
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, _depth, colour = struct.unpack(">IIBB", head[16:26])
    channels = PNG_CHANNELS.get(colour)
    return (channels, height, width) if channels and width and height else None


def pil_header_shape(path: Path) -> tuple[int, int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return (_pil_channels(im.mode), im.height, im.width)


def _pil_open(path: Path):
    """PIL's image of `path`, read in one call and opened by the format its first bytes name.

    Telling PIL the format skips its sniffing of every plug-in; per-cell files are small, so reading them whole
    costs no memory worth counting and one system call instead of several.
    """
    from PIL import Image

    data = path.read_bytes()
    formats = ["PNG"] if data.startswith(PNG_SIGNATURE) else ["JPEG"] if data.startswith(JPEG_START) else None
    return Image.open(io.BytesIO(data), formats=formats)


def read_image(path: Path) -> np.ndarray:
    """One image file as a (C, H, W) array in its own dtype (uint8, uint16, float...)."""
    if _is_tiff(path):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            arr = series.asarray()
            last = _tiff_channels_last(arr.shape, series.axes, path)
            return arr[None] if last is None else (np.moveaxis(arr, -1, 0) if last else arr)
    with _pil_open(path) as im:
        if im.mode == "P":
            im = im.convert("RGB")
        elif im.mode == "PA":
            im = im.convert("RGBA")
        arr = np.asarray(im)
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


def header_shape(path: Path) -> tuple[int, int, int]:
    """(C, H, W) from the file header, without decoding pixels."""
    if _is_tiff(path):
        return tiff_header_shape(path)
    with open(path, "rb") as f:
        shape = png_header_shape(f.read(26))
    return shape if shape is not None else pil_header_shape(path)


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", disable=len(items) < 2000, file=sys.stderr, leave=False)


@dataclass
class FileSource:
    """Images stored one per file; checked at open, decoded only when a batch is read."""

    paths: list[Path]
    shape: tuple[int, int, int] = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def item_id(self, index: int) -> str:
        return str(self.paths[index])

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape), dtype=np.float32)
        for row, i in enumerate(indices):
            out[row] = self._decode(self.paths[i])
        return out

    def _decode(self, path: Path) -> np.ndarray:
        arr = decoded_image(path)
        if arr.shape != self.shape:
            raise DataError(f"{path}: image is {arr.shape} (C, H, W) but the others are {self.shape}; "
                            "resize it or remove it so that all images have one size.")
        return arr


def checked_file_source(paths: list[Path], skip_bad: bool) -> FileSource:
    """A FileSource over `paths` after checking every file.

    Without `skip_bad` every header is read (cheap) and the first bad file stops with its name.
    With `skip_bad` every file is fully decoded, bad ones are dropped and listed on stderr.
    """
    source = FileSource(paths=[])
    check = _decode_shape if skip_bad else _header_shape_or_error
    for path in _progress(paths, "checking images"):
        try:
            shape = check(path)
        except DataError as e:
            if not skip_bad:
                raise
            source.skipped.append((path, str(e)))
            continue
        if source.shape is None:
            source.shape = shape
        elif shape != source.shape:
            if skip_bad:
                source.skipped.append((path, f"size {shape} differs from {source.shape}"))
                continue
            raise DataError(f"{path}: image is {shape} (C, H, W) but {source.paths[0]} is {source.shape}; "
                            "resize so that all images have one size, or pass --skip-bad to skip odd ones.")
        source.paths.append(path)
    for path, why in source.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if source.skipped:
        print(f"skipped {len(source.skipped)} of {len(paths)} image files (--skip-bad)", file=sys.stderr)
    return source


def _guarded(read, path: Path, problem: str):
    """read(path), with any decoder failure turned into one DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read(path)
    except DataError:
        raise
    except Exception as e:  # PIL and tifffile raise many types for corrupt files
        raise DataError(f"{path}: {problem} ({type(e).__name__}: {e}); "
                        "replace or delete it, or rerun with --skip-bad to skip broken images.") from None


def _header_shape_or_error(path: Path) -> tuple[int, int, int]:
    return _guarded(header_shape, path, "not a readable image")


def decoded_image(path: Path) -> np.ndarray:
    """`read_image`, with any decoder failure turned into a DataError naming the file."""
    return _guarded(read_image, path, "cannot decode this image")


def _decode_shape(path: Path) -> tuple[int, int, int]:
    return tuple(decoded_image(path).shape)
