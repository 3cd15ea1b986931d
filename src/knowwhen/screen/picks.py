"""The cells a reviewer sees first in each well: its k most novel and k most confident cells, kept while the
cells stream by (memory grows with the wells, not the cells)."""
from __future__ import annotations

import numpy as np

from .metadata import split_key, well_keys


class WellPicks:
    """Per (plate, well): the k cells with the highest score (most novel) and the k with the lowest (most
    confident), each as (score, cell index, predicted class, id)."""

    def __init__(self, k: int = 6):
        self.k = k
        self.wells: dict[tuple[str, str], dict[str, list]] = {}

    def add(self, plate, well, score, index, pred, ids) -> None:
        keys, inv = np.unique(well_keys(plate, well), return_inverse=True)
        order = np.lexsort((np.asarray(score, np.float64), inv))          # by well, then by score ascending
        bounds = np.searchsorted(inv[order], np.arange(len(keys) + 1))
        for j, key in enumerate(keys.tolist()):
            rows = order[bounds[j]:bounds[j + 1]]
            cells = [(float(score[r]), int(index[r]), str(pred[r]), str(ids[r]))
                     for r in np.r_[rows[:self.k], rows[-self.k:]]]
            mine = self.wells.setdefault(split_key(key), {"novel": [], "confident": []})
            mine["novel"] = sorted(mine["novel"] + cells, reverse=True)[:self.k]
            mine["confident"] = sorted(mine["confident"] + cells)[:self.k]

    def to_dict(self) -> dict:
        """{plate: {well: {"novel": [...], "confident": [...]}}} with each cell as a dict (for JSON)."""
        out: dict = {}
        for (plate, well), picks in self.wells.items():
            out.setdefault(plate, {})[well] = {
                kind: [dict(zip(("score", "index", "pred", "id"), c)) for c in dict.fromkeys(cells)]
                for kind, cells in picks.items()}
        return out
