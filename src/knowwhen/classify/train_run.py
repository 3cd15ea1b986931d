"""Training an image classifier, read top to bottom: `train` (the one entry point) trains one network
(`train_network`: open the data, split it, fit the normalisation, fit with Lightning, measure the best epoch on
the run's own splits, fit the temperature and the post-hoc parts) or a deep ensemble (`train_ensemble`, after
Lakshminarayanan et al. 2017: M such networks from different seeds, side by side in one run directory, see
`knowwhen.classify.members`); `resume_training` continues either."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch

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
from ..training.losses import LOSSES
from ..training.rundir import RESUME, prepare_run_dir, read_config, resume_message, resumed_config, write_config
from ..training.trainer import make_trainer, quiet_lightning, training_metrics
from .members import MEMBERS_DIR, ensemble_payload, member_config, member_dir, member_layout, member_status
from .posthoc import fit_posthoc
from .run import Run, load_run
from .temperature import MIN_TEMPERATURE_IMAGES, softmax_temperature, temperature_note

log = logging.getLogger("knowwhen")


def train(config: TrainConfig, out: str | Path, dataset: ImageDataset | None = None, resume: bool = False,
          overwrite: bool = False, jobs: int = 1) -> Path | None:
    """Trains a model as `config` says and writes the run directory `out`; returns its path.

    Under distributed data parallel (`config.devices` x `config.num_nodes` > 1) every process runs this;
    rank 0 writes the run directory and returns its path, the other ranks return None.

    Args:
        config: what to train on and how; `config.ensemble` = M > 1 trains a deep ensemble of M members.
        out: the run directory (created). It receives model.safetensors (the best epoch), config.json
            and metrics.csv; resume.ckpt holds the training state until training ends. An ensemble keeps its
            members side by side in out/members/0, out/members/1, ... (each a run of its own).
        dataset: an already opened dataset; by default `config.data` is opened.
        resume: continue an interrupted run in `out` (same settings; `epochs` may grow).
        overwrite: replace a run already in `out`.
        jobs: ensemble members trained at once, each in its own process (see `train_ensemble`).

    Example:
        >>> cfg = TrainConfig(DataConfig("digits"), ModelConfig("cnn"), epochs=3)  # doctest: +SKIP
        >>> run_dir = train(cfg, "runs/digits")
    """
    if config.ensemble > 1:
        return train_ensemble(config, out, dataset, resume, overwrite, jobs)
    return train_network(config, out, dataset, resume, overwrite)


def resume_training(out: str | Path, epochs: int | None = None, progress: bool = True,
                    jobs: int = 1) -> Path | None:
    """Continues the interrupted run in `out` with the settings it saved (its data, model and optimiser);
    `epochs` may raise its maximum. Returns what `train` returns.

    Example:
        >>> resume_training("runs/fmnist")  # doctest: +SKIP
    """
    return train(resumed_config(out, TrainConfig, "train", epochs, progress), out, resume=True, jobs=jobs)


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
    """Trains one network as `config` says and writes the run directory `out`; returns its path. (`train` also
    trains ensembles; use that.)

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


@torch.no_grad()
def logits_and_labels(model: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) logits of `model` in eval mode over a loader of (x, y), and the (N,) labels."""
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        logits.append(model(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def split_metrics(run: Run, ds: ImageDataset, split: Split, config: TrainConfig) -> dict:
    """{val,test}_{loss,acc,images} of the run's best weights with dropout off, and on validation (from 50
    images) the fitted temperature with the ECE before and after it."""
    out = {}
    for name in ("val", "test"):
        idx = getattr(split, name)
        if len(idx) == 0:
            continue
        logits, y = logits_and_labels(run.model, make_loader(ds, idx, run.normalizer, 512, label_map=split.label_map))
        out[f"{name}_acc"] = float((logits.argmax(1) == y).mean())
        out[f"{name}_loss"] = float(LOSSES[config.loss](torch.from_numpy(logits), torch.from_numpy(y)))
        out[f"{name}_images"] = int(len(idx))
        if name == "val" and temperature_note(len(idx)) is None:
            out.update(softmax_temperature(logits, y))
    return out


def train_ensemble(config: TrainConfig, out: str | Path, dataset: ImageDataset | None = None, resume: bool = False,
                   overwrite: bool = False, jobs: int = 1) -> Path:
    """Trains the `config.ensemble` members of a deep ensemble into `out` and fits the ensemble's post-hoc parts;
    returns `out`. With `resume`, finished members are kept and an interrupted one continues."""
    out = Path(out)
    if config.devices * config.num_nodes > 1:
        raise ConfigError("an ensemble trains its members as separate runs; use --ensemble-jobs J to train J members "
                          "at once instead of distributed data parallel (--devices / --num-nodes).")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--ensemble-jobs is {jobs!r}; use an integer >= 1.")
    prepare_run_dir(out, config, resume, overwrite)
    if not resume:
        shutil.rmtree(out / MEMBERS_DIR, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    members = range(config.ensemble)
    write_config(out, {"status": "training", "train": config_to_dict(config), "ensemble": member_layout(config)})
    todo = [m for m in members if member_status(member_dir(out, m)) != "complete"]
    if len(todo) < config.ensemble:
        log.info("%s: members %s have finished; training %s", out,
                 ", ".join(str(m) for m in members if m not in todo), ", ".join(map(str, todo)) or "none")
    if jobs > 1 and len(todo) > 1:
        if dataset is not None:
            log.warning("the members train one after another: a dataset opened in this process cannot be shared "
                        "with --ensemble-jobs processes (give the data by path to train them at once)")
            jobs = 1
        else:
            _train_parallel(config, out, todo, jobs)
    for m in todo if jobs == 1 else ():
        log.info("training ensemble member %d of %d (seed %d)", m + 1, config.ensemble,
                 member_config(config, m, False).training_seed)
        _train_member(config, out, m, config.progress, dataset)
    return _finish(config, out, dataset)


def _train_member(config: TrainConfig, out: Path, member: int, progress: bool, dataset=None) -> None:
    path = member_dir(out, member)
    again = member_status(path) == "training"   # an interrupted member continues; a new one starts clean
    train_network(member_config(config, member, progress), path, dataset, resume=again, overwrite=not again,
                  posthoc=False)


def _member_job(config: TrainConfig, out: Path, member: int, threads: int, gpu: int | None) -> int:
    """One member in a worker process (fresh per member): its share of the CPU threads, or its own GPU."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)   # before CUDA starts in this process (spawned: not yet)
    torch.set_num_threads(threads)
    _train_member(config, out, member, progress=False)
    return member


def _train_parallel(config: TrainConfig, out: Path, todo: list[int], jobs: int) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    gpus = torch.cuda.device_count() if config.accelerator != "cpu" else 0
    threads = max(1, torch.get_num_threads() // jobs)
    log.info("training %d ensemble members, %d at a time in separate processes (%s)", len(todo), jobs,
             f"one of {gpus} GPUs each" if gpus else f"{threads} CPU thread(s) each")
    with ProcessPoolExecutor(jobs, mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        futures = [pool.submit(_member_job, config, out, m, threads, m % gpus if gpus else None) for m in todo]
        for done in as_completed(futures):
            m = done.result()
            log.info("ensemble member %d finished (validation accuracy %s)", m,
                     read_config(member_dir(out, m)).get("metrics", {}).get("val_acc"))


def _finish(config: TrainConfig, out: Path, dataset: ImageDataset | None) -> Path:
    """The ensemble's config.json from its members', its metrics on its own splits and its post-hoc parts."""
    payload, seconds = ensemble_payload(out, config)
    write_config(out, {**payload, "status": "training"})
    d = config.data
    ds = dataset if dataset is not None else open_dataset(d.source, d.format, d.options, d.skip_bad)
    split = split_for_config(ds, d, config.seed)
    final = finish_run(out, ds, split, config, {"members": config.ensemble}, seconds)
    write_config(out, {**payload, "status": "complete", **final})
    return out
