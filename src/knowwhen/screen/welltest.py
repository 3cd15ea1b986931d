"""The well as the unit: nulls for a plate's wells fitted on its control wells, for the novel counts (beta-binomial)
and for the wells' rank statistic (random effects).

Cells of one well are not independent replicates: even untreated wells differ (density, staining, focus), so the
novel fraction of a control well varies more around the threshold's `fpr` than a binomial allows, and a per-cell
test calls that spread significant. Here each plate's control wells give the null: their novel counts k_i of n_i
cells are fitted (maximum likelihood) by a beta-binomial with mean mu and overdispersion rho (the correlation of
two cells of one well; rho = 0 is the binomial), and a well's p-value is P(K >= k) under that beta-binomial
with its own n (`scipy.stats.betabinom`). With fewer than MIN_CONTROL_WELLS control wells on a plate, rho cannot be
estimated: the plate falls back to the binomial test against `fpr` (said in a warning and in plates.csv).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("knowwhen")
MIN_CONTROL_WELLS = 3
RHO_RANGE = (1e-6, 0.5)  # rho below 1e-6 is the binomial for any well size here; above 0.5 no null is usable


@dataclass(frozen=True)
class WellNull:
    """The null of one plate's novel counts: mean `mu`, overdispersion `rho`, how many control wells set them,
    and `source` in words (a fit, or the binomial fallback and why)."""

    mu: float
    rho: float
    control_wells: int
    source: str

    @property
    def shape(self) -> tuple[float, float]:
        """The beta-binomial's (a, b): a + b = 1 / rho - 1."""
        total = 1.0 / self.rho - 1.0
        return self.mu * total, (1.0 - self.mu) * total


def fit_well_null(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(mu, rho) maximising the beta-binomial likelihood of counts k of n (one pair per control well)."""
    from scipy.optimize import minimize
    from scipy.stats import betabinom

    k, n = np.asarray(k, np.int64), np.asarray(n, np.int64)
    lo, hi = RHO_RANGE
    mu0 = float(np.clip((k.sum() + 0.5) / (n.sum() + 1.0), 1e-4, 1 - 1e-4))

    def nll(theta):
        mu, rho = _expit(theta[0]), lo + (hi - lo) * _expit(theta[1])
        total = 1.0 / rho - 1.0
        return -betabinom.logpmf(k, n, mu * total, (1.0 - mu) * total).sum()

    best = min((minimize(nll, [np.log(mu0 / (1 - mu0)), start], method="Nelder-Mead",
                         options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000}) for start in (-6.0, -2.0, 0.0)),
               key=lambda r: r.fun)
    return float(_expit(best.x[0])), float(lo + (hi - lo) * _expit(best.x[1]))


def _expit(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def plate_null(k: np.ndarray, n: np.ndarray, fpr: float, plate) -> WellNull:
    """The null of a plate from its control wells' novel counts k of n cells; the binomial at `fpr` (rho 0)
    with a warning when it has fewer than MIN_CONTROL_WELLS control wells."""
    keep = np.asarray(n) > 0
    k, n = np.asarray(k)[keep], np.asarray(n)[keep]
    if len(k) < MIN_CONTROL_WELLS:
        why = (f"{len(k)} control well(s), fewer than the {MIN_CONTROL_WELLS} the well-to-well variation needs: "
               f"binomial test against fpr {fpr:g}, which takes every cell as independent (too many hits where "
               "wells vary)")
        log.warning("plate %s: %s", plate, why)
        return WellNull(fpr, 0.0, len(k), why)
    mu, rho = fit_well_null(k, n)
    return WellNull(mu, rho, len(k), f"beta-binomial fitted on {len(k)} control wells (mu {mu:.4g}, rho {rho:.3g})")


def well_p_value(k: int, n: int, null: WellNull) -> float:
    """P(K >= k) for a well of n cells under the plate's null (the binomial when rho is 0)."""
    from scipy.stats import betabinom, binom

    if k <= 0:
        return 1.0
    if null.rho <= 0:
        return float(binom.sf(k - 1, n, null.mu))
    a, b = null.shape
    return float(betabinom.sf(k - 1, n, a, b))


@dataclass(frozen=True)
class RankNull:
    """The null of one plate's well AUCs (auc_vs_reference): mean `mean` and between-well variance `tau2` of the
    control wells beyond their sampling variance; `source` in words."""

    mean: float
    tau2: float
    control_wells: int
    source: str


def auc_variance(cells: int, reference: int) -> float:
    """Sampling variance of a Mann-Whitney AUC of `cells` scores against `reference` scores under no difference:
    (n + m + 1) / (12 n m)."""
    return (cells + reference + 1) / (12.0 * cells * reference)


def plate_rank_null(auc: np.ndarray, cells: np.ndarray, reference: int, plate) -> RankNull | None:
    """The random-effects null of a plate's well AUCs from its control wells (DerSimonian-Laird: tau^2 from the
    spread of their AUCs beyond the sampling variances); None with fewer than MIN_CONTROL_WELLS control wells."""
    auc, cells = np.asarray(auc, np.float64), np.asarray(cells, np.float64)
    if len(auc) < MIN_CONTROL_WELLS or reference <= 0:
        return None
    v = np.array([auc_variance(n, reference) for n in cells])
    w = 1 / v
    mean = float(np.sum(w * auc) / w.sum())
    q = float(np.sum(w * (auc - mean) ** 2))
    tau2 = max(0.0, (q - (len(auc) - 1)) / (w.sum() - np.sum(w ** 2) / w.sum()))
    mean = float(np.sum(auc / (v + tau2)) / np.sum(1 / (v + tau2)))
    return RankNull(mean, tau2, len(auc), f"well AUCs of {len(auc)} control wells (mean {mean:.4f}, between-well "
                                          f"sd {np.sqrt(tau2):.4f})")


def well_rank_p_value(auc: float, cells: int, reference: int, null: RankNull) -> float:
    """One-sided p-value that a well's AUC exceeds the control wells': normal, variance tau^2 + sampling."""
    from scipy.stats import norm

    return float(norm.sf((auc - null.mean) / np.sqrt(null.tau2 + auc_variance(cells, reference))))
