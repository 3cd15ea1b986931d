"""train(config, out) for image classifiers: open the images, split, normalise, fit with Lightning, write the run
directory."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import TrainConfig, config_to_dict
from ..data import ImageDataset, open_dataset
from ..data.fingerprint import dataset_fingerprint, training_sample_hashes
from ..data.loader import make_loader
from ..data.normalize import Normalizer, fit_normalizer
from ..data.splits import SPLITS, Split, split_for_config
from ..errors import ConfigError
from ..models import check_model_task, create_model
from ..seed import seed_everything
from ..training.callbacks import EpochMetrics
from ..training.rundir import RESUME, prepare_run_dir, resume_message, write_config
from ..training.trainer import make_trainer, quiet_lightning, training_metrics
from .holdout import split_metrics
from .temperature import MIN_TEMPERATURE_IMAGES, temperature_note
from .posthoc import fit_posthoc
from .run import load_run

log = logging.getLogger("knowwhen")


MIN_SPLIT = 50  # below this many images a split's accuracy is a rough estimate (a 95% interval near +-14 points)


def _check_split_sizes(ds: ImageDataset, split: Split, d) -> None:
    """Refuses a validation or test split that was asked for but came out empty; warns about small ones."""
    if d.calibration_fraction > 0 and len(split.calibration) == 0:
        log.warning("%s: --calibration-fraction %g of %d images gives no calibration images; the run gets no "
                    "conformal sets until `knowwhen conformal RUN DATA` calibrates it.", ds.path,
                    d.calibration_fraction, len(ds))
    for name, fraction in (("val", d.val_fraction), ("test", d.test_fraction)):
        n, flag = len(getattr(split, name)), f"--{name}-fraction"
        if n == 0 and fraction > 0:
            raise ConfigError(f"{ds.path}: {flag} {fraction} of {len(ds)} images gives no {name} images (each class "
                              f"rounds to 0); raise {flag}, or set it to 0 to train without a {name} split.")
        if 0 < n < MIN_SPLIT:
            extra = f"; no temperature is fitted on fewer than {MIN_TEMPERATURE_IMAGES}" if name == "val" else ""
            log.warning("%s: the %s split has only %d images: its accuracy is a rough estimate%s.", ds.path, name, n,
                        extra)


def _content(ds: ImageDataset, split: Split, seed: int, saved: dict | None) -> dict:
    """What identifies the training data by content (see `knowwhen.data.fingerprint`); a resumed run keeps what
    it saved, as it keeps its normalisation, instead of reading those images again."""
    data = (saved or {}).get("data", {})
    if "fingerprint" in data and "training_sample" in data:
        return {"fingerprint": data["fingerprint"], "training_sample": data["training_sample"]}
    return {"fingerprint": dataset_fingerprint(ds), "training_sample": training_sample_hashes(ds, split.train, seed)}


def _payload(config: TrainConfig, ds: ImageDataset, split: Split, normalizer: Normalizer, content: dict,
             status: str, **extra) -> dict:
    counts = lambda idx: np.bincount(ds.labels[idx], minlength=len(ds.class_names)).tolist()  # noqa: E731
    return {
        "knowwhen_version": __version__,
        "status": status,
        "model": {"name": config.model.name, "args": dict(config.model.args)},
        "class_names": list(split.class_names),
        "input_shape": list(ds.shape),
        "normalization": normalizer.to_dict(),
        "train": config_to_dict(config),
        "data": {"source": ds.path, "format": ds.format, "images": len(ds), "class_names": list(ds.class_names),
                 "channel_names": list(ds.channel_names),
                 "holdout_classes": list(config.data.holdout_classes), "sizes": split.sizes(),
                 "class_counts": {k: counts(getattr(split, k)) for k in SPLITS},
                 **content},
        **extra,
    }


def train_network(config: TrainConfig, out: str | Path, dataset: ImageDataset | None = None, resume: bool = False,
                  overwrite: bool = False, posthoc: bool = True) -> Path | None:
    """Trains one network as `config` says and writes the run directory `out`; returns its path. (`train` in
    `knowwhen.classify.train_run` also trains ensembles; use that.)

    Under distributed data parallel (`config.devices` x `config.num_nodes` > 1) every process runs this;
    rank 0 writes the run directory and returns its path, the other ranks return None.

    Args:
        config: what to train on and how.
        out: the run directory (created). It receives model.safetensors (the best epoch), config.json
            and metrics.csv; resume.ckpt holds the training state until training ends.
        dataset: an already opened dataset; by default `config.data` is opened.
        resume: continue an interrupted run in `out` (same settings; `epochs` may grow).
        overwrite: replace a run already in `out`.
        posthoc: fit the post-hoc parts at the end (`knowwhen.classify.posthoc`); an ensemble's members skip
            them (the ensemble fits its own).
    """
    out = Path(out)
    check_model_task(config.model.name, "classify")  # before anything is read or written
    quiet_lightning()
    d = config.data
    ds = dataset if dataset is not None else open_dataset(d.source, d.format, d.options, d.skip_bad)
    split = split_for_config(ds, d, config.seed)
    _check_split_sizes(ds, split, d)
    has_val = len(split.val) > 0
    trainer = make_trainer(config, out, "val_loss" if has_val else "train_loss", has_val)
    # Under DDP every process runs this function; only rank 0 prepares and writes the run directory.
    lead = trainer.is_global_zero
    saved = prepare_run_dir(out, config, resume, overwrite) if lead else None
    if saved and any(saved.get("data", {}).get("sizes", {}).get(k, 0) != n for k, n in split.sizes().items()):
        raise ConfigError(f"{out}: the data changed since this run started (split sizes "
                          f"{saved['data'].get('sizes')} then, {split.sizes()} now); resume on the same data.")
    normalizer = (Normalizer.from_dict(saved["normalization"]) if saved
                  else fit_normalizer(ds, split.train, d.clip_percentiles, config.seed))
    content = _content(ds, split, config.seed, saved) if lead else {}
    seed_everything(config.training_seed)
    net = create_model(config.model.name, ds.shape, len(split.class_names), **config.model.args)
    if lead:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out, _payload(config, ds, split, normalizer, content, "training"))

    from ..training.classifier import Classifier

    loader = lambda idx, shuffle: make_loader(ds, idx, normalizer, config.batch_size, shuffle,  # noqa: E731
                                              config.training_seed, split.label_map, config.num_workers,
                                              trainer.global_rank, trainer.world_size)
    ckpt = out / RESUME if resume and (out / RESUME).exists() else None
    if resume and lead:
        log.info(resume_message(out, ckpt is not None, config.epochs))
    trainer.fit(Classifier(net, config), loader(split.train, True), loader(split.val, False) if has_val else None,
                ckpt_path=ckpt, weights_only=True)
    if not trainer.is_global_zero:
        return None  # the other DDP processes leave the run directory to rank 0
    final = _final(trainer, out, ds, split, config, posthoc)
    write_config(out, _payload(config, ds, split, normalizer, content, "complete", **final))
    (out / RESUME).unlink(missing_ok=True)
    return out


def _final(trainer, out: Path, ds: ImageDataset, split: Split, config: TrainConfig, posthoc: bool) -> dict:
    """Metrics of the best epoch on validation and test, and the training time over all sessions."""
    epochs = next(c for c in trainer.callbacks if isinstance(c, EpochMetrics))
    metrics = training_metrics(trainer, config.epochs)
    # Summed from metrics.csv so that time spent before a --resume counts too.
    seconds = sum(float(r["seconds"]) for r in epochs.rows)
    return finish_run(out, ds, split, config, metrics, seconds, posthoc)


def finish_run(out: Path, ds: ImageDataset, split: Split, config: TrainConfig, metrics: dict, seconds: float,
               posthoc: bool = True) -> dict:
    """What config.json records at the end of training: `metrics` with the run's accuracy and loss on its own
    splits, the temperature, the training time and (with `posthoc`) the post-hoc parts, which it fits."""
    run = load_run(out, allow_incomplete=True)
    metrics = {**metrics, **split_metrics(run, ds, split, config)}
    # Prediction divides logits by this temperature (1.0 when too few validation images were there to fit it).
    note = temperature_note(len(split.val))
    final = {"metrics": metrics, "train_seconds": round(seconds, 2), "temperature": metrics.get("temperature", 1.0),
             **({"temperature_note": note} if note else {})}
    run.info.update(final)
    return {**final, **(fit_posthoc(run, ds, split, config.calibration_mc, progress=config.progress) if posthoc
                        else {})}
