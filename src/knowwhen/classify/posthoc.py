"""The parts a run fits after training from its own data: feature statistics (training split), the MC
temperature and the validation images' reference scores (for the fused `novelty` score) from the validation
split, and the conformal calibration probabilities (calibration split). `train` fits them at its end; `refit_run` (`knowwhen refit`) fits those a run lacks, so
that runs made by an older knowwhen gain them without retraining.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch

from ..data import ImageDataset, open_dataset
from ..data.splits import Split
from ..errors import ConfigError, DataError
from ..training.rundir import read_config, write_config
from ..uncertainty.features import BANK_SIZE, FeatureScorer, FeatureStats, feature_dims, feature_tap
from ..uncertainty.fusion import chosen_members, reference_scores
from ..uncertainty.measures import SCORED_MEASURES
from ..uncertainty.mc import ROWS, dropout_sites, padded_chunks
from .sets import CALIBRATION_FILE, compute_calibration, write_calibration
from .features import FEATURES_FILE, REFERENCE_FILE, save_features, save_reference
from .own_data import own_split
from .predict import predict_dataset, run_engine
from .run import Run, load_run
from .temperature import MIN_TEMPERATURE_IMAGES, fit_mc_temperature_on_validation

log = logging.getLogger("knowwhen")
# In the order they are fitted: the reference and calibration scores use the MC temperature.
PARTS = {"features": FEATURES_FILE, "mc_temperature": None, "reference": REFERENCE_FILE,
         "calibration": CALIBRATION_FILE}
DEFAULT_FUSION = "default"  # `refit --fuse default`: back to one member per family (`fusion_members`)


def fit_posthoc(run: Run, ds: ImageDataset, split: Split, mc: int, parts=tuple(PARTS), progress: bool = True,
                members: tuple[str, ...] | None = None) -> dict:
    """Fits `parts` of the run from `ds` split as it was trained (MC parts with `mc` passes, seed 0), saves
    each file into the run directory and sets it on `run`; returns what config.json records about them.
    `members`: the measures the fused `novelty` combines (`chosen_members`); None: one per family."""
    mc = mc if dropout_sites(run.model) else 0
    info = {}
    if "features" in parts:
        info["features"] = _features(run, ds, split, progress)
    if "mc_temperature" in parts and run.samples(mc) > 1 and len(split.val) >= MIN_TEMPERATURE_IMAGES:
        info.update(fit_mc_temperature_on_validation(run, ds, split, mc))
    if "reference" in parts and len(split.val):
        info["reference"] = _reference(run, ds, split, mc, progress, members)
    if "calibration" in parts and len(split.calibration):
        info["calibration"] = _calibration(run, ds, split, mc, progress)
    return info


@torch.no_grad()
def fit_feature_scorer(run: Run, ds: ImageDataset, indices: np.ndarray, labels: np.ndarray, seed: int = 0,
                       batch_size: int = 512, progress: bool = True) -> FeatureScorer:
    """Feature statistics of the images `indices` of `ds` (the training split) with the run's class indices
    `labels`, dropout off; the kNN bank is a seeded sample of at most BANK_SIZE of them."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    bank = rng.choice(indices, min(BANK_SIZE, len(indices)), replace=False) if len(indices) else indices
    stats = FeatureStats(len(run.class_names), feature_dims(run.model), bank)
    label_of = dict(zip(np.asarray(indices).tolist(), np.asarray(labels).tolist()))
    run.model.eval()
    with tqdm(total=len(indices), unit="img", desc="feature statistics", disable=not progress, file=sys.stderr,
              leave=False) as bar:
        for idx, images in ds.batches(np.asarray(indices), batch_size):
            for start, (block, n) in zip(range(0, len(idx), ROWS), padded_chunks(run.preprocess(images))):
                with feature_tap(run.model) as tap:
                    run.model(block)
                keys = idx[start:start + n]
                stats.add(tap["features"][:n].double().numpy(), np.array([label_of[i] for i in keys.tolist()]), keys)
            bar.update(len(idx))
    return stats.scorer()


def _features(run: Run, ds: ImageDataset, split: Split, progress: bool) -> dict:
    log.info("fitting feature statistics on the %d training images", len(split.train))
    labels = split.label_map[ds.labels[split.train]]
    run.features = fit_feature_scorer(run, ds, split.train, labels, run.config.seed, progress=progress)
    save_features(run.path, run.features)
    return {"images": len(split.train), "dims": int(run.features.means.shape[1]),
            "bank": len(run.features.bank), "knn_k": run.features.k}


def _reference(run: Run, ds: ImageDataset, split: Split, mc: int, progress: bool, members=None) -> dict:
    how = f"{run.samples(mc)} samples" if run.samples(mc) else "no MC"
    log.info("scoring the %d validation images as the reference of the fused novelty score (%s)", len(split.val), how)
    run.reference = None  # the reference batches must not carry a fused score of an older reference
    batches = predict_dataset(run, ds.subset(split.val), run_engine(run, mc or None), progress=progress)
    try:
        ref = reference_scores(batches, members)
    except ValueError as e:  # a chosen measure this run's reference lacks (an MC measure without MC passes)
        raise ConfigError(f"{run.path}: --fuse: {e}, those its reference holds ({how}); choose among them.") from None
    info = {"images": len(split.val), "mc_passes": mc or None, "measures": sorted(ref)}
    log.info("the fused novelty score combines %s (%s; Fisher's method over them; a|b: the smaller p-value of "
             "the two, Bonferroni-corrected)", ", ".join(ref.fused),
             "chosen with --fuse" if members is not None else "one per family, the default")
    save_reference(run.path, ref, info)
    run.reference = ref
    chosen = {"fused_chosen": True} if members is not None else {}  # kept by later refits (`refit_run`)
    return {**info, "fused": list(ref.fused), **chosen}  # config.json's record; the file keeps its own `fused`


def _calibration(run: Run, ds: ImageDataset, split: Split, mc: int, progress: bool) -> dict:
    idx = split.calibration
    log.info("computing the probabilities of the %d calibration images for conformal sets (%s)", len(idx),
             f"softmax and MC x{mc}" if mc else "softmax only")
    cal = compute_calibration(run, ds.subset(idx), split.label_map[ds.labels[idx]], idx, mc,
                              progress=progress, source=f"the calibration split of {ds.path}")
    write_calibration(run.path, cal)
    return cal.info


def missing_parts(run_dir: str | Path) -> list[str]:
    """The post-hoc parts the run directory lacks (a file, or the MC temperature in config.json)."""
    saved = read_config(run_dir)
    return [name for name, file in PARTS.items()
            if (name not in saved if file is None else not (Path(run_dir) / file).exists())]


def refit_run(run_dir: str | Path, data: ImageDataset | None = None, parts=None, mc: int | None = None,
              progress: bool = True, fuse: tuple[str, ...] | str | None = None) -> dict:
    """Fits the post-hoc parts a run lacks (or `parts`) from the data it was trained on (by default reopened from
    its config; recognised by content) and records them in config.json; nothing else changes. Returns
    {part: info} of what was fitted.

    `fuse`: the measures the fused `novelty` combines (a|b: one family seen two ways), which refits the reference;
    DEFAULT_FUSION: one per family again; None: those chosen before with `fuse`, else one per family.

    Example:
        >>> refit_run("runs/fmnist", fuse=("mutual_info_mc", "p_max", "energy", "knn"))  # doctest: +SKIP
    """
    run = load_run(run_dir)
    parts = list(parts) if parts is not None else missing_parts(run_dir)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"cannot refit {', '.join(unknown)}: the parts are {', '.join(PARTS)}.")
    members = _members(run_dir, fuse)
    if fuse is not None and "reference" not in parts:
        parts = [p for p in PARTS if p in {*parts, "reference"}]
    if not parts:
        log.info("%s has every post-hoc part (%s); nothing to refit", run_dir, ", ".join(PARTS))
        return {}
    if "mc_temperature" in parts:  # the scores computed with the old temperature would be stale
        parts = sorted(set(parts) | {"reference", "calibration"}, key=list(PARTS).index)
    d = run.config.data
    ds = data if data is not None else open_dataset(d.source, d.format, d.options, d.skip_bad)
    split = own_split(run, ds)
    if split is None:
        raise DataError(f"{ds.path}: not the data run {run_dir} was trained on (its content differs); refit needs "
                        "that data (give its path if it moved).")
    if "calibration" in parts and not len(split.calibration):
        log.info("%s kept no calibration split; calibrate its conformal sets on other labelled images with "
                 "`knowwhen conformal %s DATA`", run_dir, run_dir)
    info = fit_posthoc(run, ds, split, mc if mc is not None else run.config.calibration_mc, parts, progress, members)
    payload = read_config(run_dir)
    payload.update(info)
    write_config(Path(run_dir), {k: v for k, v in payload.items() if k not in ("format", "format_version")})
    return info


def _members(run_dir: str | Path, fuse) -> tuple[str, ...] | None:
    """The fused members a refit uses: `fuse` (its names checked first), none for DEFAULT_FUSION,
    and without `fuse` those the run's reference was given with it before (so a refit never drops a choice)."""
    if fuse == DEFAULT_FUSION:
        return None
    if fuse is None:
        saved = read_config(run_dir).get("reference") or {}
        if saved.get("fused_chosen"):
            log.info("keeping the fused measures chosen with --fuse: %s (--fuse %s: one per family)",
                     ", ".join(saved["fused"]), DEFAULT_FUSION)
            return tuple(saved["fused"])
        return None
    names = [m.strip() for m in fuse.split(",")] if isinstance(fuse, str) else fuse
    try:
        return chosen_members(names, SCORED_MEASURES)
    except ValueError as e:
        raise ConfigError(f"--fuse: {e}; or '{DEFAULT_FUSION}' for one per family.") from None
