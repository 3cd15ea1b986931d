"""KnowwhenClassifier: a scikit-learn estimator over knowwhen's training and prediction."""
from __future__ import annotations

import math
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..config import DataConfig, ModelConfig, TrainConfig
from ..data import dataset_from_arrays
from ..errors import DataError


class KnowwhenClassifier(ClassifierMixin, BaseEstimator):
    """A knowwhen model with the scikit-learn API: `fit`, `predict`, `predict_proba`, `score`.

    X is (N, C, H, W), (N, H, W), (N, H, W, C) or flat rows (N, D); flat rows are reshaped with
    `image_shape` (C, H, W), or to a square grey image when D is a square number.

    Example:
        >>> from sklearn.model_selection import cross_val_score
        >>> clf = KnowwhenClassifier(model="mlp", epochs=5)
        >>> cross_val_score(clf, X, y, cv=3)  # doctest: +SKIP
    """

    def __init__(self, model: str = "cnn", epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
                 optimizer: str = "adam", loss: str = "cross_entropy", weight_decay: float = 0.0,
                 momentum: float = 0.9, patience: int | None = 5, val_fraction: float = 0.1,
                 model_args: dict | None = None, image_shape: tuple | None = None, channels: str = "auto",
                 seed: int = 0, verbose: bool = False):
        self.model, self.epochs, self.batch_size, self.lr = model, epochs, batch_size, lr
        self.optimizer, self.loss, self.weight_decay, self.momentum = optimizer, loss, weight_decay, momentum
        self.patience, self.val_fraction, self.model_args = patience, val_fraction, model_args
        self.image_shape, self.channels, self.seed, self.verbose = image_shape, channels, seed, verbose

    def _images(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2 and self.image_shape is None and math.isqrt(X.shape[1]) ** 2 != X.shape[1]:
            raise DataError(f"rows of {X.shape[1]} values are not square images; pass image_shape=(C, H, W).")
        ds = dataset_from_arrays(X, None, channels=self.channels, image_shape=self.image_shape, name="X")
        return ds.images(np.arange(len(ds)))

    def _config(self) -> TrainConfig:
        return TrainConfig(
            # No calibration split: the estimator API has no conformal sets, so every image trains or validates.
            DataConfig("X", val_fraction=self.val_fraction, test_fraction=0.0, calibration_fraction=0.0),
            ModelConfig(self.model, dict(self.model_args or {})), optimizer=self.optimizer, lr=self.lr,
            momentum=self.momentum, weight_decay=self.weight_decay, loss=self.loss, epochs=self.epochs,
            batch_size=self.batch_size, patience=self.patience, seed=self.seed, progress=self.verbose,
            calibration_mc=0)  # predict_proba has no MC: the post-hoc parts need no MC passes

    def fit(self, X, y) -> "KnowwhenClassifier":
        """Trains on images X and labels y (any hashable labels); returns self."""
        from .run import load_run
        from .train_run import train

        images = self._images(X)
        self.classes_, encoded = np.unique(np.asarray(y), return_inverse=True)
        if len(images) != len(encoded):
            raise DataError(f"X has {len(images)} images but y has {len(encoded)} labels.")
        ds = dataset_from_arrays(images, encoded, [str(c) for c in self.classes_], channels="first", name="X")
        if np.asarray(X).ndim == 2:
            self.n_features_in_ = np.asarray(X).shape[1]
        with tempfile.TemporaryDirectory(prefix="knowwhen-") as tmp:
            train(self._config(), tmp, dataset=ds, overwrite=True)
            self.run_ = load_run(tmp)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of `classes_`."""
        from .predict import predict_proba

        check_is_fitted(self, "run_")
        return predict_proba(self.run_, self._images(X))

    def predict(self, X) -> np.ndarray:
        """(N,) predicted labels from `classes_`."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
