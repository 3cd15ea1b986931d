"""Which images of a dataset a run may be scored or calibrated on: its own data is recognised by content (then
its test or calibration split is used), and other data holding images it trained on is refused."""
from __future__ import annotations

import logging

import numpy as np

from ..data import ImageDataset
from ..data.fingerprint import dataset_fingerprint, sampled_training_images_in
from ..data.splits import Split, split_for_config
from ..errors import DataError
from .classes import class_mapping
from .run import Run

log = logging.getLogger("knowwhen")
UNLABELLED = -2


def own_split(run: Run, ds: ImageDataset) -> Split | None:
    """The split the run trained with when `ds` holds the data it was trained on (same content, however its
    path is spelled), else None."""
    data = run.info.get("data", {})
    if "fingerprint" in data:
        same = len(ds) == data.get("images") and dataset_fingerprint(ds) == data["fingerprint"]
    else:
        log.info("this run has no data fingerprint (saved by an older knowwhen): comparing the data's path instead")
        same = str(ds.path) == str(data.get("source")) and len(ds) == data.get("images")
    return split_for_config(ds, run.config.data, run.config.seed) if same else None


def check_unseen(run: Run, ds: ImageDataset, use: str, allow_training_images: bool = False) -> None:
    """Refuses (DataError) data that holds any of the run's sampled training images, unless
    `allow_training_images` (then warns). `use` says what the images are for, e.g. "scores"."""
    sample = run.info.get("data", {}).get("training_sample", [])
    found = sampled_training_images_in(ds, sample) if sample else 0
    if not found:
        return
    msg = (f"{ds.path}: {found} of the {len(sample)} training images sampled by run {run.path} are among these "
           f"{len(ds)} images, so the {use} would include images the model learned")
    if not allow_training_images:
        raise DataError(f"{msg}; use images it never trained on (or the whole training data, whose own split is "
                        "then used), or pass --allow-training-images to go on anyway.")
    log.warning("%s (--allow-training-images).", msg)


def run_test_images(run: Run, ds: ImageDataset, allow_training_images: bool = False) -> ImageDataset:
    """The run's test and novel images when `ds` holds the data it was trained on (recognised by content), else
    all of `ds`, after checking that `ds` holds none of the run's sampled training images (a DataError unless
    `allow_training_images`)."""
    split = own_split(run, ds)
    if split is not None:
        log.info("%s holds the data run %s was trained on (same content); evaluating on its test split (%d images) "
                 "and its held-out classes (%d images)", ds.path, run.path, len(split.test), len(split.novel))
        return ds.subset(np.concatenate([split.test, split.novel]))
    check_unseen(run, ds, "scores", allow_training_images)
    return ds


def label_codes(run: Run, ds: ImageDataset, novel_classes=()) -> np.ndarray:
    """(K + 1,) per class of `ds` the run's class index or NOVEL (its held-out classes and `novel_classes`), and
    UNLABELLED last (for label -1). Raises DataError for a class the run does not know and nobody declared novel."""
    novel = tuple(run.info.get("data", {}).get("holdout_classes", [])) + tuple(novel_classes)
    mapping = class_mapping(ds.class_names, run.class_names, novel, where=str(ds.path))
    return np.array([mapping[n] for n in ds.class_names] + [UNLABELLED], dtype=np.int64)
