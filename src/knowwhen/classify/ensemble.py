"""Deep ensembles (Lakshminarayanan et al. 2017): `train_ensemble` trains M networks on one split from different
seeds (initialisation, data order, augmentation, training dropout; `TrainConfig.training_seed`) and keeps them
side by side in one run directory, out/members/<m>/, each a complete run of its own. The ensemble's own
config.json names them; `load_run` builds an `Ensemble` of them, and prediction treats every MC pass of every
member as one sample (`knowwhen.uncertainty.ensemble`). Members train one after another, or `jobs` at a time in
separate processes (each with its share of the CPU threads, or its own GPU where there are several).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from ..config import TrainConfig, config_to_dict
from ..data import ImageDataset, open_dataset
from ..data.splits import split_for_config
from ..errors import ConfigError
from ..training.rundir import CONFIG, prepare_run_dir, read_config, write_config
from .fit import finish_run, train_network

log = logging.getLogger("knowwhen")
MEMBERS_DIR = "members"
SHARED = ("knowwhen_version", "model", "class_names", "input_shape", "normalization", "data")
MEMBER_METRICS = ("best_epoch", "val_acc", "val_loss", "test_acc", "test_loss", "temperature")


def member_dir(out: str | Path, member: int) -> Path:
    return Path(out) / MEMBERS_DIR / str(member)


def member_config(config: TrainConfig, member: int, progress: bool) -> TrainConfig:
    """The settings of member `member`: the ensemble's, with that member's seed (see `training_seed`)."""
    return dataclasses.replace(config, ensemble=1, member=member, progress=progress)


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
    write_config(out, {"status": "training", "train": config_to_dict(config), "ensemble": _layout(out, config)})
    todo = [m for m in members if _status(member_dir(out, m)) != "complete"]
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


def _status(path: Path) -> str | None:
    return read_config(path).get("status") if (path / CONFIG).exists() else None


def _train_member(config: TrainConfig, out: Path, member: int, progress: bool, dataset=None) -> None:
    path = member_dir(out, member)
    again = _status(path) == "training"   # an interrupted member continues; a new one starts clean
    train_network(member_config(config, member, progress), path, dataset, resume=again, overwrite=not again,
                  posthoc=False)


def _member_job(config: TrainConfig, out: Path, member: int, threads: int, gpu: int | None) -> int:
    """One member in a worker process (fresh per member): its share of the CPU threads, or its own GPU."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)   # before CUDA starts in this process
    import torch

    torch.set_num_threads(threads)
    _train_member(config, out, member, progress=False)
    return member


def _train_parallel(config: TrainConfig, out: Path, todo: list[int], jobs: int) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

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


def _layout(out: Path, config: TrainConfig) -> dict:
    return {"members": config.ensemble, "dirs": [str(member_dir(".", m)) for m in range(config.ensemble)],
            "training_seeds": [member_config(config, m, False).training_seed for m in range(config.ensemble)]}


def _finish(config: TrainConfig, out: Path, dataset: ImageDataset | None) -> Path:
    """The ensemble's config.json from its members', its metrics on its own splits and its post-hoc parts."""
    saved = [read_config(member_dir(out, m)) for m in range(config.ensemble)]
    for key in ("class_names", "normalization", "input_shape"):
        if any(s.get(key) != saved[0].get(key) for s in saved[1:]):
            raise ConfigError(f"{out}: the members' {key} differ (trained on different data?); retrain the ensemble "
                              "with --overwrite.")
    layout = {**_layout(out, config),
              "member_metrics": [{k: s.get("metrics", {}).get(k) for k in MEMBER_METRICS} for s in saved]}
    payload = {**{k: saved[0][k] for k in SHARED if k in saved[0]}, "train": config_to_dict(config),
               "ensemble": layout}
    write_config(out, {**payload, "status": "training"})
    d = config.data
    ds = dataset if dataset is not None else open_dataset(d.source, d.format, d.options, d.skip_bad)
    split = split_for_config(ds, d, config.seed)
    seconds = sum(float(s.get("train_seconds", 0)) for s in saved)
    final = finish_run(out, ds, split, config, {"members": config.ensemble}, seconds)
    write_config(out, {**payload, "status": "complete", **final})
    return out
