"""One novelty score from many: each score becomes its empirical p-value against reference images known to be
of the trained classes (label-free), and the p-values are combined.

p(s) = (1 + #{reference scores >= s}) / (n + 1): the fraction of known images at least as extreme (a conformal
p-value; for a known image exchangeable with the references, P(p <= a) <= a). Beyond the largest reference score
the count is 0 and p would stay at its floor 1 / (n + 1) however far the score goes, so that one score far out
of range could not outweigh several that see nothing; there the tail is extrapolated as an exponential, p(s) =
exp(-(s - max) / beta) / (n + 1), beta the mean excess of the top 10% of the references over their smallest
(peaks over a threshold). Scores are oriented higher = more novel. Combined by Fisher's method, -2 sum_i ln p_i, reported as -log10 of its chi-square (2m degrees of
freedom) tail, or by the smallest p-value with Bonferroni's correction, -log10 min(1, m min_i p_i). The scores
are dependent, so neither is an exact p-value; both are monotone scores (higher = more novel).
"""
from __future__ import annotations

import numpy as np

COMBINATIONS = ("fisher", "min")
# The fused families, each its scores in order of preference: the first a run has represents the family.
FAMILIES = (("mutual_info_mc", "p_max"), ("energy",), ("rel_mahalanobis",), ("knn",))


def fusion_members(available) -> tuple[str, ...]:
    """The scores fused from those `available`: the first present of each family of FAMILIES."""
    have = set(available)
    return tuple(next(m for m in family if m in have) for family in FAMILIES if have & set(family))


TAIL = 0.1  # the fraction of the largest reference scores whose mean excess sets the extrapolated tail


def empirical_p_values(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(n,) p-values of `scores` against the reference scores (any order); higher score = smaller p; beyond the
    largest reference score, an exponential tail (see the module's note)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    s = np.asarray(scores, dtype=np.float64)
    at_least = len(ref) - np.searchsorted(ref, s, side="left")
    p = (1.0 + at_least) / (len(ref) + 1.0)
    top = ref[-max(2, int(np.ceil(TAIL * len(ref)))):]
    beta = float(np.mean(top - top[0])) if len(ref) > 1 else 0.0
    beyond = s > ref[-1] if len(ref) else np.zeros(len(s), bool)
    if beta > 0 and beyond.any():
        p[beyond] = np.exp(-(s[beyond] - ref[-1]) / beta) / (len(ref) + 1.0)
    return p


def combined_score(p_values: list[np.ndarray], how: str = "fisher") -> np.ndarray:
    """-log10 of the combined p-value of m p-value arrays (each (n,)); higher = more novel."""
    from scipy.special import gammaln
    from scipy.stats import chi2

    # a far extrapolated tail can underflow to 0: the smallest positive double keeps the log finite
    p = np.maximum(np.stack([np.asarray(v, dtype=np.float64) for v in p_values]), np.finfo(float).tiny)
    if how == "fisher":
        stat, k = -2 * np.log(p).sum(0), 2 * len(p)
        log_sf = chi2.logsf(stat, k)
        far = ~np.isfinite(log_sf)  # the tail underflows: its asymptote, log Q(k/2, x/2) ~ (k/2-1) ln(x/2) - x/2 - ln G(k/2)
        log_sf[far] = (k / 2 - 1) * np.log(stat[far] / 2) - stat[far] / 2 - gammaln(k / 2)
        return -log_sf / np.log(10)
    if how == "min":
        return -np.log10(np.minimum(1.0, len(p) * p.min(0)))
    raise ValueError(f"how {how!r}: use one of {', '.join(COMBINATIONS)}")
