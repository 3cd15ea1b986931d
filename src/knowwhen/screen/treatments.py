"""Treatments (any metadata column, `--group-by`) from their replicate wells: the wells, not the cells, are the units.

Under the null each replicate well i of a treatment holds K_i novel cells ~ BetaBinomial(n_i, its plate's null; see
`welltest`), independently of the others; the treatment's p-value is P(sum_i K_i >= its novel count), from the
exact convolution of the wells' distributions. Wells that vary around each other the way the plate's control wells
do therefore add no significance, and a treatment whose replicates agree gains it. `wells_called` counts the
replicates whose own beta-binomial p-value is below 0.05, and the novel fractions' range shows how consistent
they are. q-values are Benjamini-Hochberg over the treatments.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .wells import bh_q_values
from .welltest import WellNull, well_p_value


def count_distribution(n: int, null: WellNull) -> np.ndarray:
    """(n + 1,) P(K = k) for a well of n cells under `null` (the binomial when rho is 0)."""
    from scipy.stats import betabinom, binom

    k = np.arange(n + 1)
    if null.rho <= 0:
        return binom.pmf(k, n, null.mu)
    a, b = null.shape
    return betabinom.pmf(k, n, a, b)


def treatment_p_value(novel: list[int], cells: list[int], nulls: list[WellNull]) -> float:
    """P(sum of the wells' novel counts >= sum(novel)) with each well's count from its null, independently."""
    total = np.ones(1)
    for n, null in zip(cells, nulls):
        total = np.convolve(total, count_distribution(n, null))
    return float(min(1.0, total[int(sum(novel)):].sum()))


def treatment_table(wells: list[dict], nulls: dict, group_by: str, plate_column: str, well_column: str,
                    fdr: float) -> list[dict]:
    """One row per value of `group_by`: its replicate wells, pooled counts, p / q, `hit` (q < fdr) and how
    consistent its wells are. A column whose value differs within a well is refused."""
    groups: dict = {}
    for w in wells:
        if group_by not in w:
            raise DataError(f"--group-by {group_by}: its value differs within well {w[plate_column]} "
                            f"{w[well_column]}; group by a column that holds one value per well (a treatment).")
        groups.setdefault(w[group_by], []).append(w)
    rows = []
    for value, mine in groups.items():
        fractions = [w["novel"] / w["cells"] for w in mine]
        single = [well_p_value(w["novel"], w["cells"], nulls[w[plate_column]]) for w in mine]
        rows.append({group_by: value, "wells": len(mine), "plates": len({w[plate_column] for w in mine}),
                     "cells": sum(w["cells"] for w in mine), "novel": sum(w["novel"] for w in mine),
                     "novel_fraction": sum(w["novel"] for w in mine) / sum(w["cells"] for w in mine),
                     "novel_fraction_min": min(fractions), "novel_fraction_max": max(fractions),
                     "wells_called": sum(p < 0.05 for p in single),
                     "p_value": treatment_p_value([w["novel"] for w in mine], [w["cells"] for w in mine],
                                                  [nulls[w[plate_column]] for w in mine]),
                     "control": any(w["control"] for w in mine)})
    for row, q in zip(rows, bh_q_values([r["p_value"] for r in rows])):
        row["q_value"], row["hit"] = q, bool(q < fdr)
    return rows
