"""Channel layout: every loader hands out (N, C, H, W) whatever the file stores."""
from __future__ import annotations

import math

import numpy as np

from ..errors import DataError

CHANNELS = ("auto", "first", "last")


def layout_for(sample_shape: tuple[int, ...], where: str, channels: str = "auto",
               image_shape: tuple[int, ...] | None = None):
    """A function mapping a batch stored with `sample_shape` per item to (n, C, H, W).

    Args:
        sample_shape: shape of one stored item, e.g. (28, 28), (64, 64, 3), (8192,).
        where: file name for error messages.
        channels: "first", "last" or "auto" (decide when unambiguous: a channel axis has at most 4 entries).
        image_shape: (C, H, W) for flat rows stored channel-major (planar), as DeepLoc does.
    """
    if channels not in CHANNELS:
        raise DataError(f"{where}: channels={channels!r}; use one of {', '.join(CHANNELS)}.")
    if len(sample_shape) == 1:
        return _flat_layout(sample_shape[0], where, image_shape)
    if len(sample_shape) == 2:
        return lambda x: x[:, None]
    if len(sample_shape) == 3:
        first, last = sample_shape[0], sample_shape[2]
        if channels == "auto":
            if first <= 4 < last:
                channels = "first"
            elif last <= 4 < first:
                channels = "last"
            else:
                raise DataError(f"{where}: cannot tell the channel axis of images shaped {sample_shape}; "
                                "say channels='first' (C, H, W) or channels='last' (H, W, C).")
        return (lambda x: x) if channels == "first" else (lambda x: np.moveaxis(x, -1, 1))
    raise DataError(f"{where}: items shaped {sample_shape}; expected (H, W), (C, H, W), (H, W, C) or flat rows.")


def _flat_layout(length: int, where: str, image_shape):
    if image_shape is None:
        side = math.isqrt(length)
        if side * side != length:
            raise DataError(f"{where}: rows of {length} values are not a square image; "
                            "give image_shape=C,H,W (rows stored channel-major).")
        image_shape = (1, side, side)
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or math.prod(image_shape) != length:
        raise DataError(f"{where}: image_shape {image_shape} does not hold rows of {length} values; "
                        "give image_shape=C,H,W whose product is the row length.")
    return lambda x: x.reshape(len(x), *image_shape)
