"""Per-well and per-plate summaries of a screen from running sums (memory grows with wells, not cells), and hit
calling: a well is a hit when its fraction of novel cells is above the fraction expected of known cells (the
`fpr` the threshold was set at), by a one-sided binomial test, with Benjamini-Hochberg q-values over all wells."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..evaluation.perclass import wilson_interval


@dataclass
class WellSums:
    """Running sums per (plate, well): cells, novel cells, predicted-class counts, sums of each measure, and the
    metadata values that are constant within the well."""

    classes: int
    measures: tuple[str, ...]
    cells: dict = field(default_factory=dict)

    def add(self, plate: np.ndarray, well: np.ndarray, novel: np.ndarray, pred: np.ndarray, values: dict,
            metadata: dict, control: np.ndarray) -> None:
        """Adds a batch of cells (arrays of one value per cell)."""
        combo = np.char.add(np.char.add(np.asarray(plate, str), "\x1f"), np.asarray(well, str))
        keys, first, inv = np.unique(combo, return_index=True, return_inverse=True)
        count = lambda w=None: np.bincount(inv, weights=w, minlength=len(keys))  # noqa: E731
        classes = np.zeros((len(keys), self.classes), np.int64)
        np.add.at(classes, (inv, np.asarray(pred, np.int64)), 1)
        sums = {m: count(np.nan_to_num(np.asarray(values[m], np.float64))) for m in self.measures}
        differs = {n: count((np.asarray(v) != np.asarray(v)[first][inv]).astype(float)) > 0
                   for n, v in metadata.items()}
        n, k_novel, k_control = count(), count(novel.astype(float)), count(control.astype(float))
        for j, key in enumerate(keys.tolist()):
            s = self.cells.setdefault(tuple(key.split("\x1f", 1)), {
                "cells": 0, "novel": 0, "control": 0, "classes": np.zeros(self.classes, np.int64),
                "sums": dict.fromkeys(self.measures, 0.0), "metadata": {}})
            s["cells"] += int(n[j])
            s["novel"] += int(k_novel[j])
            s["control"] += int(k_control[j])
            s["classes"] += classes[j]
            for m in self.measures:
                s["sums"][m] += float(sums[m][j])
            for name, v in metadata.items():
                value = None if differs[name][j] else str(v[first[j]])
                old = s["metadata"].get(name, value)
                s["metadata"][name] = old if old == value else None  # None: the value differs within the well


def well_table(sums: WellSums, class_names, fpr: float, fdr: float, plate_column: str, well_column: str) -> list[dict]:
    """One row per well: counts, novel fraction with its Wilson 95% interval, the one-sided binomial p-value
    against `fpr`, the BH q-value over all wells, `hit` (q < fdr), class composition, mean measures, and the
    metadata constant within the well."""
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import binom_test

    rows = []
    for (plate, well), s in sums.cells.items():
        lo, hi = wilson_interval(s["novel"], s["cells"])
        row = {plate_column: plate, well_column: well, "cells": s["cells"], "novel": s["novel"],
               "novel_fraction": s["novel"] / s["cells"], "ci_low": lo, "ci_high": hi,
               "p_value": float(binom_test(s["novel"], s["cells"], prop=fpr, alternative="larger")),
               "control": s["control"] > 0}
        row.update({k: v for k, v in s["metadata"].items() if v is not None and k not in (plate_column, well_column)})
        row.update({f"frac_{c}": n / s["cells"] for c, n in zip(class_names, s["classes"])})
        row.update({f"mean_{m}": v / s["cells"] for m, v in s["sums"].items()})
        rows.append(row)
    q = multipletests([r["p_value"] for r in rows], method="fdr_bh")[1] if rows else []
    for row, qv in zip(rows, q):
        row["q_value"], row["hit"] = float(qv), bool(qv < fdr)
    return rows


def plate_table(wells: list[dict], plate_column: str, thresholds: dict) -> list[dict]:
    """One row per plate: cells, wells, hits, the threshold and where it came from, and the novel fraction of its
    control cells (a check: far from the fpr means the threshold does not transfer to this plate)."""
    out = []
    for plate in dict.fromkeys(w[plate_column] for w in wells):
        mine = [w for w in wells if w[plate_column] == plate]
        t = thresholds.get(plate, thresholds.get(None, {}))
        out.append({plate_column: plate, "cells": sum(w["cells"] for w in mine), "wells": len(mine),
                    "hits": sum(w["hit"] for w in mine), "threshold": t.get("threshold"),
                    "threshold_from": t.get("source"), "control_cells": t.get("control_cells", 0),
                    "control_novel_fraction": t.get("control_novel_fraction")})
    return out
