"""Does a well hold the known phenotypes in other proportions than its plate's controls? The predicted classes of
its cells that are *not* novel, against those of the plate's control cells: Pearson's chi-square test of the 2 x K
table (classes that neither holds are left out; `scipy.stats.chi2_contingency`, no continuity correction). A small
`composition_p` says "known phenotypes in new proportions", a finding of its own, different from a new phenotype.
Like the binomial test it counts cells as independent, so on plates whose wells vary it calls more than it should:
read it beside the hit, not as a hit test. Plates without control wells get NaN.
"""
from __future__ import annotations

import numpy as np


def composition_p_value(well: np.ndarray, controls: np.ndarray) -> float:
    """One-sided-free chi-square p-value that the class counts `well` (K,) come from the mix of `controls` (K,)."""
    from scipy.stats import chi2_contingency

    table = np.stack([np.asarray(well, np.int64), np.asarray(controls, np.int64)])
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2 or (table.sum(1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def add_composition(rows: list[dict], known_counts: list[np.ndarray], plate_column: str) -> None:
    """Sets each well row's `p_value_composition` against the pooled non-novel control cells of its plate."""
    for plate in dict.fromkeys(r[plate_column] for r in rows):
        mine = [j for j, r in enumerate(rows) if r[plate_column] == plate]
        controls = [j for j in mine if rows[j]["control"]]
        pooled = np.sum([known_counts[j] for j in controls], axis=0) if controls else None
        for j in mine:
            rows[j]["p_value_composition"] = (composition_p_value(known_counts[j], pooled) if pooled is not None
                                              else float("nan"))
