"""One novelty score from many: each score becomes its empirical p-value against reference images known to be of the
trained classes (label-free), and the p-values are combined.

At each distinct reference score u the p-value is the conformal one, p(u) = (1 + #{reference scores >= u}) / (n +
1): the fraction of known images at least as extreme (for a known image exchangeable with the references, P(p <= a)
<= a). Between two distinct reference scores it is linear, from p(u_j) down to p(u_j+1): never below the step
p-value there (so still conservative), and continuous, so that a score that moves by a float rounding step (another
batch size, another CPU's kernels) moves its p-value by as little, not by a whole rank. Beyond the largest
reference score u_max the count is 0 and the step p-value would stay at its floor however far the score goes, so
that ranks among images beyond every known one are kept; there the tail is extrapolated as an exponential from the
value at u_max, p(s) = p(u_max) exp(-(s - u_max) / beta), beta the mean excess of the top 10% of the references over
their smallest (peaks over a threshold), and bounded below: p >= 1 / ((n + 1) 10^TAIL_DECADES), TAIL_DECADES
decades below the smallest conformal p-value, so that one score far out of range cannot outvote the others without
limit (each family's -log10 p is at most log10(n + 1) + TAIL_DECADES; 5.7 for 5,400 references). Below the smallest
reference score p = 1. Scores are oriented higher = more novel. A family seen two ways (a fused member "a|b") takes
the smaller of its two p-values with Bonferroni's correction, min(1, 2 min(p_a, p_b)), which keeps the bound. The
families are combined by Fisher's method, -2 sum_i ln p_i,
reported as -log10 of its chi-square (2m degrees of freedom) tail, or by the smallest p-value with Bonferroni's
correction, -log10 min(1, m min_i p_i). The scores are dependent, so neither is an exact p-value; both are monotone scores
(higher = more novel).
"""
from __future__ import annotations

import numpy as np

from .measures import SCORED_MEASURES, uncertainty_scores

COMBINATIONS = ("fisher", "min")
FUSED = "novelty"  # the fused score's column
UNION = "|"  # a fused member "a|b": one family seen two ways, its p-value Bonferroni's min(1, 2 min(p_a, p_b))
# The fused families, each its members in order of preference: the first a run has represents the family. Chosen on
# leave-one-class-out Fashion-MNIST (benchmarks/novelty_fashion_mnist.py, docs/results.md): the MC doubt and the
# energy see far-away images; the feature-space family sees classes that look like a known one, either as an image
# between the two nearest classes (mahalanobis_tie) or as one far from its predicted class under that class's own
# covariance (own_mahalanobis). They are two ways one image can be untypical of its class, often one without the
# other, so the family takes the stronger of them (min-p) instead of adding them as independent evidence.
FAMILIES = (("mutual_info_mc", "p_max"), ("energy",), ("mahalanobis_tie" + UNION + "own_mahalanobis",))


def member_scores(member: str) -> list[str]:
    """The scores a fused member is made of: one, or the views of a union "a|b"."""
    return member.split(UNION)


def fusion_members(available) -> tuple[str, ...]:
    """The members fused from the scores `available`: of each family of FAMILIES the first whose scores are all
    present."""
    have = set(available)
    present = lambda m: set(member_scores(m)) <= have  # noqa: E731
    return tuple(next(m for m in family if present(m)) for family in FAMILIES if any(map(present, family)))


def chosen_members(members, available) -> tuple[str, ...]:
    """Fused members a user chose (`knowwhen refit --fuse`), each a score or a union "a|b", checked against the
    scores `available`: ValueError naming the first member that is not made of them, or that comes twice."""
    members, have = tuple(members), set(available) - {FUSED, "set_size"}
    if not members:
        raise ValueError("no measure to fuse")
    for i, m in enumerate(members):
        absent = [k for k in member_scores(m) if k not in have]
        if absent:  # an empty name is absent too: member_scores('') == ['']
            raise ValueError(f"'{m}': {', '.join(absent) or 'an empty name'} is not among the measures "
                             f"({', '.join(sorted(have))})")
        if m in members[:i]:
            raise ValueError(f"'{m}' is given twice")
    return members


def member_p_values(reference: dict, measures: dict, member: str) -> np.ndarray:
    """The p-value of a fused member: its score's against the reference scores; for a union "a|b|...", Bonferroni's
    min(1, k min_i p_i) over its k scores."""
    p = [empirical_p_values(reference[k], uncertainty_scores(measures, k)) for k in member_scores(member)]
    return p[0] if len(p) == 1 else np.minimum(1.0, len(p) * np.min(p, axis=0))


TAIL = 0.1  # the fraction of the largest reference scores whose mean excess sets the extrapolated tail
TAIL_DECADES = 2.0  # how far below the smallest conformal p-value, 1 / (n + 1), the tail may go (module note)


def empirical_p_values(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(n,) p-values of `scores` against the reference scores (any order); higher score = smaller p; continuous in
    the score: linear between distinct reference scores, an exponential tail beyond the largest, bounded below by
    `tail_floor` (module note)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    s = np.asarray(scores, dtype=np.float64)
    if not len(ref):
        return np.ones(len(s))
    knots, first = np.unique(ref, return_index=True)           # first: the sorted position of each distinct score
    at_knot = (1.0 + len(ref) - first) / (len(ref) + 1.0)      # (1 + #{ref >= u}) / (n + 1)
    p = np.interp(s, knots, at_knot)
    top = ref[-max(2, int(np.ceil(TAIL * len(ref)))):]
    beta = float(np.mean(top - top[0])) if len(ref) > 1 else 0.0
    beyond = s > knots[-1]
    if beta > 0 and beyond.any():
        with np.errstate(over="ignore"):   # a score near the largest float: exp(-inf) = 0, then the floor
            p[beyond] = np.maximum(at_knot[-1] * np.exp(-(s[beyond] - knots[-1]) / beta), tail_floor(len(ref)))
    return p


def tail_floor(n: int) -> float:
    """The smallest p-value against n reference scores: 1 / ((n + 1) 10^TAIL_DECADES)."""
    return 1.0 / ((n + 1) * 10 ** TAIL_DECADES)


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


class Reference(dict):
    """{measure: sorted (n,) validation scores, oriented higher = more novel}, and `fused`: the measures the fused
    `novelty` combines (`fusion_members`), or None for a reference saved before they were recorded, whose
    `novelty` combines every measure it holds (the rule it was made with, so its thresholds stay true)."""

    def __init__(self, scores: dict, fused: tuple[str, ...] | None):
        super().__init__(scores)
        self.fused = None if fused is None else tuple(fused)


def reference_scores(batches, members=None) -> Reference:
    """The Reference of the validation batches (dicts of measures, or objects with `.measures`): every measure they
    carry (MC measures, feature scores, p_max), the measures fused (one per family, `fusion_members`, or `members`
    as `chosen_members` checks them), and the fused `novelty` of each validation image against the others (so that
    a threshold on `novelty` can be set at a chosen fraction of known images)."""
    raw: dict[str, list] = {}
    for b in batches:
        m = getattr(b, "measures", b)
        for name in SCORED_MEASURES:
            if name in m and name not in (FUSED, "set_size"):
                raw.setdefault(name, []).append(np.asarray(m[name]))
    measures = {k: np.concatenate(v) for k, v in raw.items()}
    fused = fusion_members(measures) if members is None else chosen_members(members, measures)
    ref = Reference({k: np.sort(uncertainty_scores(measures, k)) for k in measures}, fused)
    if ref:
        ref[FUSED] = np.sort(fused_novelty(ref, measures))
    return ref


def fused_novelty(reference: Reference, measures: dict, how: str = "fisher") -> np.ndarray:
    """The fused `novelty` score of a batch: the p-value of each fused member (`reference.fused`, see
    `member_p_values`; every measure for an older reference) against the reference scores, combined; higher = more
    novel."""
    fused = getattr(reference, "fused", None)
    names = [m for m in (reference if fused is None else fused)
             if m != FUSED and all(k in reference and k in measures for k in member_scores(m))]
    return combined_score([member_p_values(reference, measures, m) for m in names], how)
