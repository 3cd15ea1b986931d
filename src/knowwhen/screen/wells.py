"""Per-well and per-plate summaries of a screen from running sums (memory grows with wells, not cells), and hit
calling with Benjamini-Hochberg q-values over all wells, by two one-sided tests:

- `binomial`: is the well's fraction of novel cells (score above the threshold) above the fraction expected of
  known cells (the `fpr` the threshold was set at)?
- `rank`: are the well's scores higher than the reference's (the plate's control cells, else the run's
  validation images)? The Mann-Whitney U test, U = sum over the well's cells of the number of reference scores
  below the cell's (ties count 1/2), from running sums; normal approximation without tie correction (ties
  shrink the variance, so leaving them out errs on the side of fewer hits). It uses every cell's score, not only
  whether it passed the threshold, and so finds wells where a minority of cells is only moderately novel.
- `betabinom`: is the well's novel count above what the plate's control *wells* show, with their well-to-well
  spread (a beta-binomial fitted on them; `welltest`)? The well, not the cell, is the unit.
- `wellrank`: is the well's AUC against the reference above the control wells' AUCs, with their spread
  (random effects; `welltest`)?
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..evaluation.perclass import wilson_interval
from .composition import add_composition
from .metadata import split_key, well_keys
from .welltest import MIN_CONTROL_WELLS, plate_null, plate_rank_null, well_p_value, well_rank_p_value


log = logging.getLogger("knowwhen")


@dataclass
class WellSums:
    """Running sums per (plate, well): cells, novel cells, predicted-class counts, sums of each measure, and the
    metadata values that are constant within the well."""

    classes: int
    measures: tuple[str, ...]
    cells: dict = field(default_factory=dict)

    def add(self, plate: np.ndarray, well: np.ndarray, novel: np.ndarray, pred: np.ndarray, values: dict,
            metadata: dict, control: np.ndarray, below: np.ndarray, reference_n: np.ndarray) -> None:
        """Adds a batch of cells (arrays of one value per cell); `below`: reference scores below each cell's score
        (ties 1/2), `reference_n`: the size of the cell's reference."""
        keys, first, inv = np.unique(well_keys(plate, well), return_index=True, return_inverse=True)
        count = lambda w=None: np.bincount(inv, weights=w, minlength=len(keys))  # noqa: E731
        classes = np.zeros((len(keys), self.classes), np.int64)
        np.add.at(classes, (inv, np.asarray(pred, np.int64)), 1)
        known = np.zeros((len(keys), self.classes), np.int64)  # the predicted classes of the cells not novel
        np.add.at(known, (inv[~novel], np.asarray(pred, np.int64)[~novel]), 1)
        sums = {m: count(np.nan_to_num(np.asarray(values[m], np.float64))) for m in self.measures}
        differs = {n: count((np.asarray(v) != np.asarray(v)[first][inv]).astype(float)) > 0
                   for n, v in metadata.items()}
        n, k_novel, k_control = count(), count(novel.astype(float)), count(control.astype(float))
        u, ref_n = count(np.asarray(below, np.float64)), np.asarray(reference_n)[first]
        for j, key in enumerate(keys.tolist()):
            s = self.cells.setdefault(split_key(key), {
                "cells": 0, "novel": 0, "control": 0, "u": 0.0, "reference_n": int(ref_n[j]),
                "classes": np.zeros(self.classes, np.int64), "known": np.zeros(self.classes, np.int64),
                "sums": dict.fromkeys(self.measures, 0.0), "metadata": {}})
            s["cells"] += int(n[j])
            s["novel"] += int(k_novel[j])
            s["control"] += int(k_control[j])
            s["u"] += float(u[j])
            s["classes"] += classes[j]
            s["known"] += known[j]
            for m in self.measures:
                s["sums"][m] += float(sums[m][j])
            for name, v in metadata.items():
                value = None if differs[name][j] else str(v[first[j]])
                old = s["metadata"].get(name, value)
                s["metadata"][name] = old if old == value else None  # None: the value differs within the well


HIT_COLUMNS = {"rank": ("p_value_rank", "q_value_rank"), "binomial": ("p_value", "q_value"),  # test -> its columns
               "betabinom": ("p_value_betabinom", "q_value_betabinom"),
               "wellrank": ("p_value_wellrank", "q_value_wellrank")}


def rank_p_value(u: float, cells: int, reference: int) -> float:
    """One-sided p-value of the Mann-Whitney U statistic `u` of `cells` scores against `reference` scores (higher
    scores in the well), normal approximation without tie correction."""
    from scipy.stats import norm

    mean, var = cells * reference / 2, cells * reference * (cells + reference + 1) / 12
    return float(norm.sf((u - mean) / np.sqrt(var))) if var > 0 else 1.0


def well_table(sums: WellSums, class_names, fpr: float, fdr: float, plate_column: str, well_column: str,
               hit_test: str) -> tuple[list[dict], dict]:
    """One row per well: counts, novel fraction with its Wilson 95% interval, the one-sided binomial p-value
    against `fpr`, the rank test's (`p_value_rank`) and the beta-binomial's against the plate's control wells
    (`p_value_betabinom`, see `welltest`), the BH q-values of each over all wells, `hit` (q < fdr by `hit_test`),
    class composition, mean measures, and the metadata constant within every well; and {plate: WellNull}."""
    from statsmodels.stats.proportion import binom_test

    rows = []
    # Carried: the columns constant within every well (one that varies in any well is left out of all rows, so
    # that every row has the same columns).
    varies = {k for s in sums.cells.values() for k, v in s["metadata"].items() if v is None}
    for (plate, well), s in sums.cells.items():
        lo, hi = wilson_interval(s["novel"], s["cells"])
        row = {plate_column: plate, well_column: well, "cells": s["cells"], "novel": s["novel"],
               "novel_fraction": s["novel"] / s["cells"], "ci_low": lo, "ci_high": hi,
               "p_value": float(binom_test(s["novel"], s["cells"], prop=fpr, alternative="larger")),
               "p_value_rank": rank_p_value(s["u"], s["cells"], s["reference_n"]),
               "auc_vs_reference": s["u"] / (s["cells"] * s["reference_n"]) if s["reference_n"] else float("nan"),
               "control": s["control"] > 0}
        row.update({k: v for k, v in s["metadata"].items() if k not in varies | {plate_column, well_column}})
        row.update({f"frac_{c}": n / s["cells"] for c, n in zip(class_names, s["classes"])})
        row.update({f"mean_{m}": v / s["cells"] for m, v in s["sums"].items()})
        rows.append(row)
    nulls = _add_betabinom(rows, plate_column, fpr)
    _add_wellrank(rows, [s["reference_n"] for s in sums.cells.values()], plate_column)
    add_composition(rows, [s["known"] for s in sums.cells.values()], plate_column)
    for suffix in ("", "_rank", "_betabinom", "_wellrank", "_composition"):
        for row, qv in zip(rows, bh_q_values([r["p_value" + suffix] for r in rows])):
            row["q_value" + suffix] = qv
    for row in rows:  # composition_p / composition_q: named for what they test, not a hit test
        row["composition_p"], row["composition_q"] = row.pop("p_value_composition"), row.pop("q_value_composition")
    for row in rows:
        row["hit"] = bool(row[HIT_COLUMNS[hit_test][1]] < fdr)
    return rows, nulls


def _add_betabinom(rows: list[dict], plate_column: str, fpr: float) -> dict:
    """Sets each row's `p_value_betabinom` against its plate's null from the plate's control wells."""
    nulls = {}
    for plate in dict.fromkeys(r[plate_column] for r in rows):
        mine = [r for r in rows if r[plate_column] == plate]
        controls = [r for r in mine if r["control"]]
        nulls[plate] = plate_null([r["novel"] for r in controls], [r["cells"] for r in controls], fpr, plate)
        for r in mine:
            r["p_value_betabinom"] = well_p_value(r["novel"], r["cells"], nulls[plate])
    return nulls


def _add_wellrank(rows: list[dict], reference_n: list[int], plate_column: str) -> None:
    """Sets each row's `p_value_wellrank`: its AUC against the spread of its plate's control wells' AUCs (the rank
    test's p-value where a plate has fewer than 3 control wells, with a warning)."""
    for plate in dict.fromkeys(r[plate_column] for r in rows):
        mine = [j for j, r in enumerate(rows) if r[plate_column] == plate]
        controls = [j for j in mine if rows[j]["control"]]
        null = plate_rank_null([rows[j]["auc_vs_reference"] for j in controls], [rows[j]["cells"] for j in controls],
                               reference_n[mine[0]], plate)
        if null is None:
            log.warning("plate %s: %d control well(s), fewer than %d: the well rank test is the rank test there",
                        plate, len(controls), MIN_CONTROL_WELLS)
        for j in mine:
            rows[j]["p_value_wellrank"] = (rows[j]["p_value_rank"] if null is None else
                                           well_rank_p_value(rows[j]["auc_vs_reference"], rows[j]["cells"],
                                                             reference_n[j], null))


def bh_q_values(p: list[float]) -> list[float]:
    """Benjamini-Hochberg q-values (statsmodels) of the p-values that are numbers; NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, np.float64)
    q = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q.tolist()


def plate_table(wells: list[dict], plate_column: str, thresholds: dict, nulls: dict) -> list[dict]:
    """One row per plate: cells, wells, hits, the threshold and where it came from, the novel fraction of its
    control cells (a check: far from the fpr means the threshold does not transfer to this plate), and the
    beta-binomial null of its wells (`null_novel_fraction`, `null_overdispersion` rho, `null_from`)."""
    out = []
    for plate in dict.fromkeys(w[plate_column] for w in wells):
        mine = [w for w in wells if w[plate_column] == plate]
        t = thresholds.get(plate, thresholds.get(None, {}))
        out.append({plate_column: plate, "cells": sum(w["cells"] for w in mine), "wells": len(mine),
                    "hits": sum(w["hit"] for w in mine), "threshold": t.get("threshold"),
                    "threshold_from": t.get("source"), "control_cells": t.get("control_cells", 0),
                    "control_novel_fraction": t.get("control_novel_fraction"),
                    "null_novel_fraction": nulls[plate].mu, "null_overdispersion": nulls[plate].rho,
                    "null_from": nulls[plate].source})
    return out
