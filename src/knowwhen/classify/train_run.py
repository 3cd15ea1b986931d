"""`train`: the one entry point for training an image classifier, a single network or a deep ensemble
(`config.ensemble` > 1), and `resume_training` for either."""
from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..data import ImageDataset
from ..training.rundir import resumed_config
from .ensemble import train_ensemble
from .fit import train_network


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
