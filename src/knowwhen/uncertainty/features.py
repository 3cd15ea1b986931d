"""Novelty scores in the network's feature space: the penultimate features (the input of the last Linear layer)
compared with those of the training images. Every score is oriented higher = more novel.

| name            | score of an image with features f and logits z                                                |
|-----------------|-----------------------------------------------------------------------------------------------|
| `energy`        | -logsumexp_k z_k (Liu et al. 2020); needs no statistics                                         |
| `mahalanobis`   | min_k sqrt((f - mu_k)' S^-1 (f - mu_k)), S the covariance shared by the classes (Lee et al. 2018) |
| `rel_mahalanobis` | min_k (f - mu_k)' S^-1 (f - mu_k) - (f - mu_0)' S_0^-1 (f - mu_0): the squared distance to the nearest |
|                 | class less that to one Gaussian of all training features (Ren et al. 2021, "relative Mahalanobis")  |
| `gauss_density` | -log sum_k pi_k N(f; mu_k, S_k), one Gaussian per class (DDU, Mukhoti et al. 2023)              |
| `knn`           | distance to the k-th nearest L2-normalised training feature (Sun et al. 2022)                  |
| `mahalanobis_tie` | d1 - d2, d1 <= d2 the two smallest squared distances (f - mu_k)' S^-1 (f - mu_k): 0 when f lies |
|                 | as close to a second class as to its nearest, very negative deep inside one class             |
| `own_mahalanobis` | (f - mu_c)' S_c^-1 (f - mu_c), c = argmax_k z_k the predicted class, S_c its own (shrunk) covariance |

The statistics come from running sums (`FeatureStats`), so the training set never has to fit in memory; the
kNN bank is a seeded sample of at most BANK_SIZE training images. S_k is shrunk towards S with the weight of
D images (D the feature dimension), ((n_k - 1) S_k + D S) / (n_k - 1 + D), plus a small ridge, so that it is
defined for classes with fewer images than feature dimensions. The background Gaussian of `rel_mahalanobis` is the
one with the moments of the class mixture, mu_0 = sum_k pi_k mu_k and S_0 = S + sum_k pi_k (mu_k - mu_0)(mu_k -
mu_0)' (within- plus between-class covariance), so runs saved before it gain the score without a refit. Why it
is there: features that every class shares (stroke thickness, overall size) inflate every class distance alike;
subtracting the background distance cancels them, and on classes close to a known one (a held-out Pullover
among Coats and Shirts) plain `mahalanobis` falls below chance while the relative one does not.
Why `mahalanobis_tie` and `own_mahalanobis`: a new phenotype that resembles known ones lies between them, not far
from all of them, so every distance to the nearest class stays small; the tie sees "between two classes" in feature
space (as p_max does in the softmax, but from the training statistics), and the predicted class's own covariance sees
an image that its class's shape does not allow. They are the members of the fused `novelty` that see look-alike
classes (benchmarks/novelty_fashion_mnist.py, docs/results.md).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models.ensemble import Ensemble
from .measures import FEATURE_SCORES

__all__ = ["FEATURE_SCORES", "FeatureScorer", "FeatureStats", "feature_dims", "feature_layers", "feature_tap",
           "last_linear"]
# The kNN score is the distance to the k-th neighbour with k = bank size / KNN_PER_NEIGHBOUR (at least 1): the same
# quantile of the neighbours whatever the bank's size. On Fashion-MNIST (benchmarks/knn_bank_size.py, docs/results.md) a
# bank of 10,000 with k = 10 scores held-out Shirt and Bag, and far-away digits, as well as all 43,200 training
# features with k = 50, at a quarter of the cost; k = 50 in a small bank lost up to 0.08 AUROC.
KNN_PER_NEIGHBOUR = 1000
BANK_SIZE = 10_000


def knn_k(bank: int) -> int:
    """The neighbour whose distance is the kNN score, for a bank of `bank` features."""
    return max(1, round(bank / KNN_PER_NEIGHBOUR))


RIDGE = 1e-6  # relative to the mean variance: keeps a covariance invertible when a feature is constant


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last nn.Linear (in `modules()` order): its input is the penultimate feature vector."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("the model has no nn.Linear layer, so it has no penultimate features to score.")
    return linears[-1]


def feature_layers(model: nn.Module) -> list[nn.Linear]:
    """The Linear layers whose inputs are the features: the last one of the model, or of each member of an
    Ensemble (its features are the members' features side by side)."""
    return [last_linear(m) for m in model.members] if isinstance(model, Ensemble) else [last_linear(model)]


def feature_dims(model: nn.Module) -> int:
    """D, the length of the feature vector `feature_tap` records."""
    return sum(layer.in_features for layer in feature_layers(model))


@contextlib.contextmanager
def feature_tap(model: nn.Module):
    """Records the input of the model's last Linear layer (of each member's, for an Ensemble, concatenated) at its
    first call inside the block: the dropout-off pass, which `MCDropout.pass_logits` and a plain `model(x)` both
    run first. Yields a dict whose "features" entry is the (n, D) tensor once every layer has run."""
    out: dict = {}
    layers = feature_layers(model)
    parts: list = [None] * len(layers)

    def hook(i):
        def record(_module, args):
            if parts[i] is None:
                parts[i] = args[0].detach().flatten(1)
                if all(p is not None for p in parts):
                    out["features"] = torch.cat(parts, 1)
        return record

    handles = [layer.register_forward_pre_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


class FeatureStats:
    """Running sums of training features per class, and a seeded sample of them for the kNN bank.

    Example:
        >>> acc = FeatureStats(classes=10, dims=128, bank_keys=np.arange(0, 60000, 2))  # doctest: +SKIP
        >>> acc.add(features, labels, keys)     # batch after batch
        >>> scorer = acc.scorer()
    """

    def __init__(self, classes: int, dims: int, bank_keys: np.ndarray | None = None):
        self.n = np.zeros(classes)
        self.s1 = np.zeros((classes, dims))
        self.s2 = np.zeros((classes, dims, dims))
        self.bank_keys = None if bank_keys is None else np.asarray(bank_keys)
        self.bank: list[np.ndarray] = []

    def add(self, features, labels, keys=None) -> FeatureStats:
        f = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels)
        for k in np.unique(y):
            fk = f[y == k]
            self.n[k] += len(fk)
            self.s1[k] += fk.sum(0)
            self.s2[k] += fk.T @ fk
        keep = np.ones(len(f), bool) if self.bank_keys is None else np.isin(np.asarray(keys), self.bank_keys)
        self.bank.append(f[keep].astype(np.float32))
        return self

    def scorer(self, k: int | None = None) -> FeatureScorer:
        """The fitted statistics; k: the kNN neighbour (default `knn_k` of the bank's size)."""
        present = self.n > 0
        if not present.any():
            raise ConfigError("no training features were added; the feature scores need the training images.")
        n = self.n[present]
        means = self.s1[present] / n[:, None]
        scatter = self.s2[present] - n[:, None, None] * np.einsum("ki,kj->kij", means, means)   # sum (f-mu)(f-mu)'
        shared = scatter.sum(0) / max(1.0, n.sum() - len(n))
        dims = shared.shape[0]
        per_class = (scatter + dims * shared[None]) / (n + dims - 1)[:, None, None]               # shrunk to shared
        bank = np.concatenate(self.bank) if self.bank else np.empty((0, dims), np.float32)
        return FeatureScorer(means, shared, per_class, n / n.sum(), bank, k or knn_k(len(bank)),
                             np.flatnonzero(present))


@dataclass
class FeatureScorer:
    """The fitted statistics; `scores(features, logits)` gives every score of FEATURE_SCORES.

    Attributes:
        means: (K, D) class means; shared: (D, D) shared covariance; per_class: (K, D, D) shrunk class
            covariances; priors: (K,) class frequencies; bank: (M, D) training features for kNN (raw; they are
            L2-normalised when scoring); k: the neighbour whose distance is the kNN score; classes: the class
            index of each row of `means` (classes without training images are left out).
    """

    means: np.ndarray
    shared: np.ndarray
    per_class: np.ndarray
    priors: np.ndarray
    bank: np.ndarray
    k: int = 10
    classes: np.ndarray | None = None

    def __post_init__(self):
        dims = self.means.shape[1]
        ridge = RIDGE * max(float(np.trace(self.shared)) / dims, 1e-12) * np.eye(dims)
        self._shared_chol = torch.linalg.cholesky(torch.from_numpy(self.shared + ridge))
        self._class_chol = torch.linalg.cholesky(torch.from_numpy(self.per_class + ridge[None]))
        self._means = torch.from_numpy(self.means)
        # Whitened once here, so that scoring is matrix products (GEMMs) rather than a triangular solve per class:
        # the class means under the shared covariance, and each class's inverse Cholesky factor with its mean.
        self._white_means = torch.linalg.solve_triangular(self._shared_chol, self._means.T, upper=False)   # (D, K)
        eye = torch.eye(dims, dtype=self._class_chol.dtype)
        self._class_inv = torch.linalg.solve_triangular(self._class_chol, eye.expand_as(self._class_chol),
                                                        upper=False)                                   # (K, D, D)
        self._class_white_means = (self._class_inv @ self._means[:, :, None])[..., 0]                 # (K, D)
        self._class_log_norm = torch.tensor(
            [math.log(p) for p in self.priors], dtype=torch.float64) - 0.5 * (
            dims * math.log(2 * math.pi) + 2 * torch.log(torch.diagonal(self._class_chol, dim1=1, dim2=2)).sum(1))
        mean0, cov0 = self.background()
        self._background_mean = torch.from_numpy(mean0)
        self._background_chol = torch.linalg.cholesky(torch.from_numpy(cov0 + ridge))
        bank = torch.from_numpy(np.asarray(self.bank, np.float32))
        self._bank = nn.functional.normalize(bank, dim=1) if len(bank) else bank

    def background(self) -> tuple[np.ndarray, np.ndarray]:
        """(D,) mean and (D, D) covariance of the one Gaussian of all training features: the class mixture's."""
        mean0 = self.priors @ self.means
        between = self.means - mean0
        return mean0, self.shared + (self.priors[:, None] * between).T @ between

    def scores(self, features, logits) -> dict[str, np.ndarray]:
        """{score name: (n,) values} for features (n, D) and dropout-off logits (n, K)."""
        f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        out = {"energy": -torch.logsumexp(torch.as_tensor(np.asarray(logits), dtype=torch.float64), 1).numpy()}
        sq = self._class_sq_distances(f)                                                      # (n, K)
        two = sq.topk(min(2, len(self.means)), dim=1, largest=False).values
        nearest_sq = two[:, 0]
        out["mahalanobis"] = nearest_sq.sqrt().numpy()
        out["rel_mahalanobis"] = (nearest_sq - self._background_sq_distance(f)).numpy()
        # one class only: no second class to tie with, so the tie is -inf (never novel by it)
        out["mahalanobis_tie"] = (nearest_sq - two[:, 1]).numpy() if two.shape[1] > 1 else np.full(len(f), -np.inf)
        own_sq = self._own_class_sq_distances(f)                                             # (K, n)
        out["gauss_density"] = (-torch.logsumexp(self._class_log_norm[:, None] - 0.5 * own_sq, 0)).numpy()
        predicted = self._row_of_class(np.asarray(logits).argmax(1), sq.argmin(1))
        out["own_mahalanobis"] = own_sq[predicted, torch.arange(len(f))].numpy()
        out["knn"] = self._knn(f.float())
        return out

    def _row_of_class(self, predicted: np.ndarray, nearest: torch.Tensor) -> torch.Tensor:
        """The row of `means` of each predicted class; for a class without training images (no statistics), the
        row of the nearest class by `mahalanobis` (`nearest`)."""
        classes = np.arange(len(self.means)) if self.classes is None else np.asarray(self.classes)
        row = np.full(max(int(classes.max()), int(np.max(predicted, initial=0))) + 1, -1)
        row[classes] = np.arange(len(classes))
        rows = torch.from_numpy(row[np.asarray(predicted)])
        return torch.where(rows >= 0, rows, nearest)

    def _class_sq_distances(self, f: torch.Tensor) -> torch.Tensor:
        """(n, K) squared Mahalanobis distances to the class means under the shared covariance:
        |L^-1 f - L^-1 mu_k|^2 expanded, one solve for the features and one product for all classes."""
        z = torch.linalg.solve_triangular(self._shared_chol, f.T, upper=False)                   # (D, n)
        m = self._white_means
        return (z.square().sum(0)[:, None] - 2 * (z.T @ m) + m.square().sum(0)[None]).clamp_min(0)

    def _background_sq_distance(self, f: torch.Tensor) -> torch.Tensor:
        z = torch.linalg.solve_triangular(self._background_chol, (f - self._background_mean).T, upper=False)
        return z.square().sum(0)

    def _own_class_sq_distances(self, f: torch.Tensor) -> torch.Tensor:
        """(K, n) squared Mahalanobis distances to each class mean under that class's own covariance, with every
        class's whitening in one batched product; `gauss_density` is -log sum_k prior_k N(f; mu_k, S_k) of them."""
        z = self._class_inv @ f.T - self._class_white_means[:, :, None]                         # (K, D, n)
        return z.square().sum(1)

    def _knn(self, f: torch.Tensor, chunk: int = 256) -> np.ndarray:
        if not len(self._bank):
            return np.full(len(f), np.nan)
        k = min(self.k, len(self._bank))
        f = nn.functional.normalize(f, dim=1)
        out = []
        for start in range(0, len(f), chunk):             # (chunk, M) similarities at a time: memory stays bounded
            sims = f[start:start + chunk] @ self._bank.T
            kth = sims.topk(k, dim=1).values[:, -1]
            out.append(torch.sqrt(torch.clamp(2 - 2 * kth, min=0)))
        return torch.cat(out).numpy().astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The statistics as named arrays (for safetensors)."""
        return {"means": self.means, "shared": self.shared, "per_class": self.per_class, "priors": self.priors,
                "bank": np.asarray(self.bank, np.float32), "classes": np.asarray(self.classes, np.int64),
                "k": np.array([self.k], np.int64)}

    @classmethod
    def from_arrays(cls, a: dict) -> FeatureScorer:
        return cls(a["means"], a["shared"], a["per_class"], a["priors"], a["bank"], int(a["k"][0]), a["classes"])
