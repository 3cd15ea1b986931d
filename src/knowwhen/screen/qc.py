"""Well-level image QC of a screen: each well's median of every qc_* measure of its cells (`knowwhen.data.quality`,
computed in the prediction pass), and a flag for wells whose images lie outside the range of the plate's control
wells, so that a hit on such a well is marked as an artefact suspect.

Medians come from a sample of at most SAMPLE cells per well, the same whatever the order of the cells: the cells
with the smallest hash of their row number (exact for wells of up to SAMPLE cells). Memory grows with the wells.

The rule (per plate and measure): the control wells' medians give a centre M (their median) and a spread
S = max(1.4826 MAD, FLOOR); a well is flagged when its median is more than K spreads from M: below or above for
focus, intensity and p99 (on a log10 scale, so a spread is a factor), above for saturation (on its own scale).
Without control wells, every well of the plate is the reference (most wells are not artefacts; stated in
screen.json).
"""
from __future__ import annotations

import numpy as np

from ..uncertainty.conformal import uniforms
from .metadata import well_keys

SAMPLE = 256
K = 4.0
FLOOR = {"log": 0.05, "saturation": 0.01}   # the least spread: a factor of 10^0.05 (12%), or 1% of the pixels


class WellQC:
    """Per (plate, well) a fixed-size sample of its cells' qc_* values."""

    def __init__(self, columns: list[str]):
        self.columns = list(columns)
        self.kept: dict = {}

    def add(self, plates: np.ndarray, wells: np.ndarray, rows: np.ndarray, values: dict) -> None:
        """Adds a batch: the plate and well of each cell, `rows` their positions in the screen, `values`
        {column: (n,)}."""
        if not self.columns:
            return
        priority = uniforms(len(rows), seed=0, keys=np.asarray(rows), stream=7)
        table = np.stack([np.asarray(values[c], np.float64) for c in self.columns], 1)
        uniq, inverse = np.unique(well_keys(plates, wells), return_inverse=True)
        order = np.argsort(inverse.reshape(-1), kind="stable")          # the cells of each well side by side
        starts = np.searchsorted(inverse.reshape(-1)[order], np.arange(len(uniq) + 1))
        for j, key in enumerate(uniq.tolist()):
            mine = order[starts[j]:starts[j + 1]]
            old_p, old_v = self.kept.get(key, (np.empty(0), np.empty((0, len(self.columns)))))
            p, v = np.concatenate([old_p, priority[mine]]), np.concatenate([old_v, table[mine]])
            if len(p) > SAMPLE:
                keep = np.argpartition(p, SAMPLE - 1)[:SAMPLE]
                p, v = p[keep], v[keep]
            self.kept[key] = (p, v)

    def medians(self, plate, well) -> dict[str, float]:
        """{column: the median of the well's sample}."""
        _, v = self.kept[str(well_keys([plate], [well])[0])]
        return dict(zip(self.columns, np.median(v, axis=0).tolist()))


def qc_flags(rows: list[dict], plate_column: str, columns: list[str]) -> dict:
    """Sets each well row's `qc_flag` (1 outside the plate's control-well range by the module's rule, else 0) and
    returns {plate: what the rule was measured on}."""
    sources = {}
    for plate in dict.fromkeys(r[plate_column] for r in rows):
        mine = [r for r in rows if r[plate_column] == plate]
        controls = [r for r in mine if r["control"]]
        reference = controls or mine
        sources[plate] = (f"{len(controls)} control wells" if controls
                          else f"all {len(mine)} wells of the plate (no control wells)")
        flags = np.zeros(len(mine), bool)
        for col in columns:
            flags |= _outside(np.array([r[col] for r in reference]), np.array([r[col] for r in mine]), col)
        for r, f in zip(mine, flags):
            r["qc_flag"] = int(f)
    return sources


def _outside(reference: np.ndarray, values: np.ndarray, column: str) -> np.ndarray:
    saturation = column.startswith("qc_saturation")
    scale = (lambda a: a) if saturation else (lambda a: np.log10(np.maximum(a, 1e-12)))
    ref, v = scale(reference), scale(values)
    centre = np.median(ref)
    spread = max(1.4826 * np.median(np.abs(ref - centre)), FLOOR["saturation" if saturation else "log"])
    z = (v - centre) / spread
    return z > K if saturation else np.abs(z) > K
