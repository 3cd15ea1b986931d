"""Conformal prediction sets for a saved run: the calibration probabilities it keeps, the thresholds fitted from
them when predicting, and every image's set.

A run keeps, in calibration.safetensors, the labels and probabilities of its calibration images: the softmax
(dropout off, temperature applied) and the MC mean of `calibration_mc` passes. Keeping probabilities, not one
threshold, lets `predict` choose the score, alpha and per-class thresholds without touching the data again.
`knowwhen conformal RUN DATA` replaces them with other labelled images (e.g. a new plate's controls).
The method itself (scores, quantile, guarantee) is `knowwhen.uncertainty.conformal`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import check_counts
from ..data import ImageDataset
from ..errors import CheckpointError, ConfigError, DataError
from ..training.rundir import CALIBRATION, read_arrays, read_config, write_arrays, write_config
from ..uncertainty.conformal import METHODS, ConformalClassifier, string_keys
from .classes import NOVEL
from .own_data import UNLABELLED, check_unseen, label_codes, own_split
from .predict import PredictionBatch, applied_mc_temperature, predict_dataset, run_engine
from .run import Run

log = logging.getLogger("knowwhen")
CALIBRATION_FILE = CALIBRATION  # the run directory's name (training.rundir)
PROBS = ("softmax", "mc")
SET_COLUMNS = ("set", "set_size", "set_flag")


@dataclass(frozen=True, kw_only=True)
class ConformalOptions:
    """How `predict` / `evaluate` build prediction sets.

    Attributes:
        method: `lac`, `aps` or `raps` (see `knowwhen.uncertainty.conformal`).
        alpha: sets hold the true class with probability >= 1 - alpha (on data like the calibration images).
        by_class: one threshold per class, so that every class gets its coverage.
        probs: the probabilities scored: `softmax` (dropout off, temperature applied) or `mc` (the MC mean);
            None: `mc` when MC dropout runs, else `softmax`.
        max_size: a set larger than this is flagged, as is an empty set ("the model cannot name this image");
            None: min(3, K - 1), so a set of every class is always flagged.
        k_reg, lam: RAPS's penalty lam * max(0, rank - k_reg).
        seed: seed of the APS / RAPS uniforms.
    """

    method: str = "aps"
    alpha: float = 0.1
    by_class: bool = False
    probs: str | None = None
    max_size: int | None = None
    k_reg: int = 1
    lam: float = 0.01
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"--conformal {self.method!r}: use one of {', '.join(METHODS)}.")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha {self.alpha}: use a number in (0, 1), e.g. 0.1 for 90% coverage.")
        if self.probs not in (None, *PROBS):
            raise ConfigError(f"--conformal-probs {self.probs!r}: use softmax or mc.")
        if self.max_size is not None and self.max_size < 1:
            raise ConfigError(f"--max-set-size {self.max_size}: use an integer >= 1.")


@dataclass
class Calibration:
    """Labelled calibration images of a run: labels (N,), keys (N,) that draw their APS uniforms, probabilities
    (N, K) per source (`softmax`, and `mc` when MC passes ran), and `info` (where they come from, the MC passes,
    seed and temperature they were computed with)."""

    labels: np.ndarray
    keys: np.ndarray
    probs: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)


def compute_calibration(run: Run, ds: ImageDataset, labels: np.ndarray, keys: np.ndarray, mc: int, seed: int = 0,
                        batch_size: int = 512, progress: bool = True, **info) -> Calibration:
    """The calibration probabilities of `ds`, whose images have the run's class indices `labels`: the tempered
    softmax, and the MC mean of `mc` passes (none when `mc` is 0). `info` is stored with them."""
    softmax, mean = [], []
    for b in predict_dataset(run, ds, run_engine(run, mc or None, seed), batch_size=batch_size, progress=progress):
        softmax.append(b.probs)
        mean.append(b.measures.get("probs_mc"))
    probs = {"softmax": np.concatenate(softmax)}
    if run.samples(mc):
        probs["mc"] = np.concatenate(mean)
    counts = np.bincount(labels, minlength=len(run.class_names)).tolist()
    info = {"images": len(labels), "class_counts": counts, "mc_passes": mc or None, "seed": seed,
            "temperature": run.temperature, "mc_temperature": applied_mc_temperature(run, True) if run.samples(mc) else None,
            **info}
    return Calibration(np.asarray(labels, np.int64), np.asarray(keys, np.int64), probs, info)


def write_calibration(run_dir: str | Path, cal: Calibration) -> None:
    """Writes calibration.safetensors atomically (labels, keys, probs_<source>; `cal.info` in its metadata)."""
    arrays = {"labels": cal.labels, "keys": cal.keys,
              **{f"probs_{k}": np.asarray(v, np.float64) for k, v in cal.probs.items()}}
    write_arrays(run_dir, CALIBRATION, arrays, {"info": json.dumps(cal.info)})


def save_calibration(run_dir: str | Path, cal: Calibration) -> None:
    """Writes calibration.safetensors and records `cal.info` in config.json ("calibration"), each atomically."""
    write_calibration(run_dir, cal)
    payload = read_config(run_dir)
    payload["calibration"] = cal.info
    write_config(Path(run_dir), {k: v for k, v in payload.items() if k not in ("format", "format_version")})


def load_calibration(run: Run) -> Calibration:
    """The calibration images a run keeps; a ConfigError saying how to get them when it has none."""
    path = Path(run.path) / CALIBRATION_FILE
    fix = f"recreate it with `knowwhen conformal {run.path} DATA`"
    got = read_arrays(run.path, CALIBRATION, fix)
    if got is None:
        raise ConfigError(f"{run.path}: no calibration images for conformal sets ({CALIBRATION_FILE} is missing); "
                          "calibrate on labelled images it never trained on with `knowwhen conformal "
                          f"{run.path} DATA`, or train with --calibration-fraction 0.1.")
    arrays = got[0]
    try:
        probs = {k: arrays[f"probs_{k}"].astype(np.float64) for k in PROBS if f"probs_{k}" in arrays}
        return Calibration(arrays["labels"], arrays["keys"], probs, run.info.get("calibration", {}))
    except KeyError as e:
        raise CheckpointError(f"{path}: unreadable ({e}); {fix}.") from None


@dataclass
class RunSets:
    """Fitted conformal thresholds of a run, ready to give each image its set.

    Attributes:
        classifier: the fitted `ConformalClassifier`.
        source: the probabilities scored (`softmax` or `mc`).
        max_size: sets larger than this are flagged (as are empty ones).
        note: why the guarantee may not hold for these predictions (settings that differ from the
            calibration's), or None.
    """

    classifier: ConformalClassifier
    source: str
    max_size: int
    calibration: dict
    note: str | None = None

    def measures(self, batch: PredictionBatch, keys: np.ndarray) -> dict[str, np.ndarray]:
        """`sets` (n, K) booleans, `set_size` and `set_flag` (1.0 for an empty or too large set; only LAC sets can
        be empty) of a batch; `keys` identify the images (they draw the APS / RAPS uniforms)."""
        probs = batch.measures["probs_mc"] if self.source == "mc" else batch.probs
        sets = self.classifier.predict_sets(probs, keys)
        size = sets.sum(1)
        return {"sets": sets, "set_size": size.astype(np.float64),
                "set_flag": ((size == 0) | (size > self.max_size)).astype(np.float64)}

    def describe(self) -> dict:
        """What metrics.json records about these sets."""
        c = self.classifier
        threshold = c.threshold_.tolist() if np.ndim(c.threshold_) else float(c.threshold_)
        return {"method": c.method, "alpha": c.alpha, "by_class": c.by_class, "probs": self.source,
                "max_size": self.max_size, "threshold": threshold, "calibration": self.calibration,
                **({"k_reg": c.k_reg, "lambda": c.lam} if c.method == "raps" else {}),
                **({"note": self.note} if self.note else {})}


def run_sets(run: Run, options: ConformalOptions, mc: int | None, seed: int = 0,
             use_temperature: bool = True) -> RunSets:
    """Thresholds fitted on the run's calibration images for predictions made with `mc` passes, `seed` and
    (or without) the temperature; logs what it chose and any setting that breaks the guarantee."""
    cal = load_calibration(run)
    source = options.probs or ("mc" if run.samples(mc) else "softmax")
    if source == "mc" and not run.samples(mc):
        raise ConfigError("--conformal-probs mc scores the MC mean: add --mc T (e.g. --mc 100).")
    if source not in cal.probs:
        raise ConfigError(f"{run.path}: its calibration images have no MC mean (computed with no MC passes); use "
                          f"--conformal-probs softmax, or recompute them with `knowwhen conformal {run.path} DATA "
                          "--mc 100`.")
    k = len(run.class_names)
    clf = ConformalClassifier(options.method, options.alpha, options.by_class, options.k_reg, options.lam,
                              seed=options.seed, class_names=tuple(run.class_names)).fit(cal.probs[source],
                                                                                       cal.labels, cal.keys)
    sets = RunSets(clf, source, options.max_size or min(3, k - 1), cal.info,
                   _mismatch(cal.info, source, mc, seed, run.temperature if use_temperature else 1.0,
                             applied_mc_temperature(run, use_temperature)))
    log.info("conformal sets: %s on the %s probabilities, alpha %g (target coverage %.0f%%)%s, calibrated on %d "
             "images (%s)", options.method, source, options.alpha, 100 * (1 - options.alpha),
             ", one threshold per class" if options.by_class else "", len(cal.labels), cal.info.get("source", "?"))
    if sets.note:
        log.warning("conformal sets: %s", sets.note)
    return sets


def _mismatch(info: dict, source: str, mc: int | None, seed: int, temperature: float,
              mc_temperature: float) -> str | None:
    """Why predictions made this way are not exchangeable with the calibration scores, or None."""
    why = []
    if source == "softmax" and abs(float(info.get("temperature", 1.0)) - temperature) > 1e-9:
        why.append(f"temperature {temperature:g} here, {info.get('temperature')} at calibration")
    saved_mc_t = info.get("mc_temperature", info.get("temperature", 1.0))  # older calibrations: the softmax's
    if source == "mc" and abs(float(saved_mc_t) - mc_temperature) > 1e-9:
        why.append(f"MC temperature {mc_temperature:g} here, {saved_mc_t} at calibration")
    if source == "mc" and (mc != info.get("mc_passes") or seed != info.get("seed")):
        why.append(f"MC passes / seed {mc} / {seed} here, {info.get('mc_passes')} / {info.get('seed')} at "
                   "calibration")
    if not why:
        return None
    return (f"the probabilities differ from the calibration's ({'; '.join(why)}), so the coverage is not "
            "guaranteed; predict with the calibration's settings, or recalibrate with `knowwhen conformal`.")


def with_sets(batches, sets: RunSets | None):
    """The batches with their set measures added; an image's id is its key (it draws the APS / RAPS uniform), so
    an image gets the same set wherever it sits."""
    for b in batches:
        if sets is not None:
            b.measures.update(sets.measures(b, string_keys(b.ids)))
        yield b


EMPTY_SET = "{}"  # the `set` of an empty set: an empty cell would read as missing (NaN in pandas)


def set_strings(sets: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(n,) each set's class names joined by `|` ("{}" for an empty set)."""
    return np.array(["|".join(classes[row]) or EMPTY_SET for row in np.asarray(sets, bool)], dtype=object).astype(str)


def calibrate_run(run: Run, ds: ImageDataset, mc: int = 100, seed: int = 0, batch_size: int = 512,
                  progress: bool = True, allow_training_images: bool = False) -> Calibration:
    """Computes a run's calibration probabilities on labelled images of `ds` and saves them into the run,
    replacing the ones it had. When `ds` is the run's own training data (by content), its calibration split is
    used; other data must hold no image it trained on. Images of classes the run held out are skipped.

    Example:
        >>> calibrate_run(load_run("runs/deeploc"), open_dataset("plate7_controls.h5"))  # doctest: +SKIP
    """
    check_counts(mc=mc, batch_size=batch_size)
    split = own_split(run, ds)
    if split is not None:
        if not len(split.calibration):
            raise DataError(f"{ds.path} is the data run {run.path} was trained on, and the run kept no calibration "
                            "images from it (trained with no --calibration-fraction); calibrate on labelled images "
                            "it never saw, or train again with --calibration-fraction 0.1.")
        idx, where = split.calibration, f"the calibration split of {ds.path}"
        log.info("%s holds the data run %s was trained on (same content); calibrating on its calibration split "
                 "(%d images)", ds.path, run.path, len(idx))
    else:
        check_unseen(run, ds, "calibration", allow_training_images)
        idx, where = _labelled_known(run, ds), str(ds.path)
    labels = label_codes(run, ds)[ds.labels[idx]]
    cal = compute_calibration(run, ds.subset(idx), labels, idx, mc, seed, batch_size, progress, source=where)
    save_calibration(run.path, cal)
    run.info["calibration"] = cal.info
    return cal


def _labelled_known(run: Run, ds: ImageDataset) -> np.ndarray:
    """Indices of the images of `ds` with one of the run's classes; refuses unlabelled images."""
    codes = label_codes(run, ds)[ds.labels]
    if (codes == UNLABELLED).any():
        raise DataError(f"{ds.path}: {int((codes == UNLABELLED).sum())} images have no label; calibration needs "
                        "the true class of every image (ROOT/<class>/ folders, a label column or dataset).")
    if (codes == NOVEL).any():
        log.info("%s: skipping %d images of classes the run held out", ds.path, int((codes == NOVEL).sum()))
    idx = np.flatnonzero(codes >= 0)
    if not len(idx):
        raise DataError(f"{ds.path}: none of the images belongs to the run's classes; nothing to calibrate on.")
    return idx
