"""What a screen can find: the smallest fraction of a well's cells that must be novel for the hit test to call the
well with 80% power, at the plate's median cells per well.

Under the alternative a fraction f of the well's cells pass the threshold because they are novel, and the others
behave like the plate's null (`welltest.WellNull`: novel with probability mu, wells spread by rho): the count is
BetaBinomial(n, f + (1 - f) mu, rho) (binomial for rho 0). The well is called when its p-value is at most
fdr / wells, the Benjamini-Hochberg threshold of a plate with a single hit (the hardest case; with many hits BH is
more lenient, so this is an upper bound on the fraction needed). f counts cells that *pass the threshold*: a novel
phenotype whose cells pass it at a rate r (near phenotypes: well below 1) needs about f / r of its cells in the
well. Estimated for the binomial and beta-binomial tests; the rank tests have no count model (None).
"""
from __future__ import annotations

import math

import numpy as np

from .welltest import WellNull, well_p_value

POWER = 0.8


def critical_count(n: int, null: WellNull, alpha: float) -> int | None:
    """The smallest novel count of a well of n cells whose p-value is <= alpha; None when none is."""
    lo, hi = 0, n
    if well_p_value(n, n, null) > alpha:
        return None
    while lo < hi:                      # p falls as k grows: bisect
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if well_p_value(mid, n, null) <= alpha else (mid + 1, hi)
    return lo


def call_probability(f: float, n: int, null: WellNull, k_crit: int) -> float:
    """P(a well of n cells, a fraction f of them novel, reaches k_crit novel cells)."""
    from scipy.stats import betabinom, binom

    mu = f + (1 - f) * null.mu
    if null.rho <= 0 or mu >= 1:
        return float(binom.sf(k_crit - 1, n, min(mu, 1.0)))
    total = 1 / null.rho - 1
    return float(betabinom.sf(k_crit - 1, n, mu * total, (1 - mu) * total))


def detectable_fraction(null: WellNull, cells: int, wells: int, fdr: float, power: float = POWER) -> float | None:
    """The smallest f (to 0.001) at which a well of `cells` cells is called with probability >= `power`; None
    when no fraction reaches it (too few cells for the test)."""
    k_crit = critical_count(int(cells), null, fdr / max(1, wells))
    if k_crit is None or call_probability(1.0, cells, null, k_crit) < power:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(int(math.ceil(math.log2(1000)))):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if call_probability(mid, cells, null, k_crit) >= power else (mid, hi)
    return round(hi, 3)


def plate_power(wells: list[dict], nulls: dict, plate_column: str, fpr: float, fdr: float, hit_test: str) -> dict:
    """{plate: {median_cells, detectable_fraction, note}} for the hit test used (the binomial test's null is the
    binomial at `fpr`)."""
    out = {}
    for plate, null in nulls.items():
        n = int(np.median([w["cells"] for w in wells if w[plate_column] == plate]))
        m = sum(w[plate_column] == plate for w in wells)
        if hit_test in ("rank", "wellrank"):
            out[plate] = {"median_cells": n, "detectable_fraction": None,
                          "note": f"power not estimated: the {hit_test} test has no count model"}
            continue
        used = null if hit_test == "betabinom" else WellNull(fpr, 0.0, 0, "binomial at fpr")
        f = detectable_fraction(used, n, m, fdr)
        out[plate] = {"median_cells": n, "detectable_fraction": f,
                      "note": (f"a well of {n} cells is called with 80% power when >= {f:.1%} of its cells pass the "
                               "threshold beyond the controls' rate" if f is not None else
                               f"{n} cells per well are too few for the {hit_test} test to call any well with 80% "
                               "power")}
    return out
