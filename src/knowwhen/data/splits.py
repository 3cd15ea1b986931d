"""Seeded, stratified train / validation / test splits, with classes held out as "novel"."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .dataset import ImageDataset


@dataclass(frozen=True)
class Split:
    """Indices into one ImageDataset.

    Attributes:
        train, val, test: indices of known-class images, sorted.
        calibration: indices of known-class images kept apart to calibrate conformal sets, sorted.
        novel: indices of images of the held-out classes (never seen in training or validation).
        class_names: the classes the model learns (the dataset's, minus the held-out ones), in order.
        label_map: (K_dataset,) array mapping dataset label -> model class index, -1 for held-out classes.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    novel: np.ndarray
    class_names: tuple[str, ...]
    label_map: np.ndarray
    calibration: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def sizes(self) -> dict[str, int]:
        return {k: int(len(getattr(self, k))) for k in SPLITS}


SPLITS = ("train", "val", "test", "novel", "calibration")


def _stratified_take(indices: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """Splits `indices` into (taken, rest), taking `fraction` of every class but never its last image."""
    taken = []
    for c in np.unique(labels[indices]):
        members = rng.permutation(indices[labels[indices] == c])
        k = min(int(np.floor(len(members) * fraction + 0.5)), len(members) - 1)
        taken.append(members[:k])
    taken = np.sort(np.concatenate(taken)) if taken else np.empty(0, np.int64)
    return taken, np.setdiff1d(indices, taken)


def label_map_for(class_names, holdout: tuple[str, ...], where: str) -> np.ndarray:
    """(K,) dataset label -> model class index, -1 for the held-out classes."""
    unknown = [c for c in holdout if c not in class_names]
    if unknown:
        raise DataError(f"{where}: cannot hold out {', '.join(map(repr, unknown))}: no such class "
                        f"(classes: {', '.join(class_names)}).")
    kept = [c for c in class_names if c not in holdout]
    if len(kept) < 2:
        raise DataError(f"{where}: holding out {', '.join(holdout)} leaves {len(kept)} class; keep at least 2.")
    index = {c: i for i, c in enumerate(kept)}
    return np.array([index.get(c, -1) for c in class_names], dtype=np.int64)


def split_dataset(ds: ImageDataset, val_fraction: float = 0.1, test_fraction: float = 0.2,
                  holdout_classes=(), seed: int = 0, calibration_fraction: float = 0.0) -> Split:
    """Stratified split of a labelled dataset; a predefined test split (IDX train/t10k) is kept.

    `test_fraction` of the known-class images go to test (unless the data has its own test split), then
    `val_fraction` of the rest to validation, then `calibration_fraction` of that same rest (before validation
    was taken) to calibration. Images of `holdout_classes` all go to `novel`. Test and validation do not depend
    on `calibration_fraction`.

    Example:
        >>> s = split_dataset(open_dataset("digits"), holdout_classes=["9"], seed=0)  # doctest: +SKIP
    """
    if not ds.labelled:
        raise DataError(f"{ds.path}: the images have no labels; training needs ROOT/<class>/ folders, "
                        "a label column or a label dataset.")
    label_map = label_map_for(ds.class_names, tuple(holdout_classes), ds.path)
    rng = np.random.default_rng(seed)
    all_idx = np.arange(len(ds))
    known = all_idx[label_map[ds.labels] >= 0]
    novel = all_idx[label_map[ds.labels] < 0]
    if ds.split is not None:
        test, pool = known[ds.split[known] == "test"], known[ds.split[known] != "test"]
    else:
        test, pool = _stratified_take(known, ds.labels, test_fraction, rng)
    val, train = _stratified_take(pool, ds.labels, val_fraction, rng)
    calibration = np.empty(0, np.int64)
    if calibration_fraction > 0:
        calibration, train = _stratified_take(train, ds.labels, calibration_fraction / (1 - val_fraction), rng)
    if len(train) == 0:
        raise DataError(f"{ds.path}: no images left for training after the split; use more data or smaller fractions.")
    kept = tuple(c for c, m in zip(ds.class_names, label_map) if m >= 0)
    return Split(train, val, test, novel, kept, label_map, calibration)


def split_for_config(ds: ImageDataset, d: DataConfig, seed: int) -> Split:
    """The split `d` asks for (its fractions and held-out classes) with `seed`: the split a run trained on."""
    return split_dataset(ds, d.val_fraction, d.test_fraction, d.holdout_classes, seed, d.calibration_fraction)
