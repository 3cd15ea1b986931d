"""Image-quality measures of raw cell images (NumPy), computed beside the predictions for a screen's QC.

Per image and channel, on the raw pixel values (before the run's normalisation):

| measure      | formula                                                                                       |
|--------------|-----------------------------------------------------------------------------------------------|
| `focus`      | Var(L) / mean(x)^2, L the 4-neighbour Laplacian x[i-1,j] + x[i+1,j] + x[i,j-1] + x[i,j+1] - 4 x[i,j] on the interior pixels (variance of the Laplacian, Pech-Pacheco et al. 2000); divided by the squared mean so that a dimmer well does not read as out of focus (both scale with the gain squared) |
| `intensity`  | mean(x)                                                                                       |
| `p99`        | the 99th percentile of x (linear interpolation)                                                |
| `saturation` | the fraction of pixels equal to the image's own maximum: a clipped plateau (a detector at its limit) holds many, an unclipped image about one |

A blank image (mean 0) has focus 0.
"""
from __future__ import annotations

import numpy as np

QUALITY = ("focus", "intensity", "p99", "saturation")


def image_quality(images: np.ndarray) -> dict[str, np.ndarray]:
    """{measure: (n, C)} of raw images (n, C, H, W); see the module's table."""
    x = np.asarray(images, dtype=np.float64)
    lap = x[:, :, :-2, 1:-1] + x[:, :, 2:, 1:-1] + x[:, :, 1:-1, :-2] + x[:, :, 1:-1, 2:] - 4 * x[:, :, 1:-1, 1:-1]
    mean = x.mean(axis=(2, 3))
    flat = x.reshape(*x.shape[:2], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        focus = np.where(mean > 0, lap.var(axis=(2, 3)) / mean ** 2, 0.0)
    return {"focus": focus, "intensity": mean, "p99": _percentile_99(flat),
            "saturation": (flat == flat.max(axis=2, keepdims=True)).mean(axis=2)}


def _percentile_99(flat: np.ndarray) -> np.ndarray:
    """np.percentile(flat, 99, axis=-1) (linear interpolation) from a partial sort of the two values it needs:
    twice as fast as the full sort, which shows when every cell of a screen is measured."""
    pos = 0.99 * (flat.shape[-1] - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, flat.shape[-1] - 1)
    part = np.partition(flat, [lo, hi], axis=-1)
    return part[..., lo] + (pos - lo) * (part[..., hi] - part[..., lo])


def quality_columns(channel_names, channels: int) -> list[str]:
    """The column of each measure and channel: `qc_<measure>` for one channel, `qc_<measure>_<channel>` for more
    (channels the data does not name are ch0, ch1, ...)."""
    names = list(channel_names) if len(channel_names) == channels else [f"ch{k}" for k in range(channels)]
    return [f"qc_{m}" if channels == 1 else f"qc_{m}_{c}" for m in QUALITY for c in names]


def quality_measures(images: np.ndarray, channel_names) -> dict[str, np.ndarray]:
    """{column: (n,)} of `quality_columns`, for raw images (n, C, H, W)."""
    q, channels = image_quality(images), np.asarray(images).shape[1]
    pairs = [(m, k) for m in QUALITY for k in range(channels)]
    return {col: q[m][:, k] for col, (m, k) in zip(quality_columns(channel_names, channels), pairs)}
