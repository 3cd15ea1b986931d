"""A deep ensemble's layout on disk (Lakshminarayanan et al. 2017): M networks trained on one split from different
seeds (initialisation, data order, augmentation, training dropout; `TrainConfig.training_seed`), side by side in
one run directory, out/members/<m>/, each a complete run of its own. The ensemble's own config.json names them;
`load_run` builds an `Ensemble` of them, and prediction treats every MC pass of every member as one sample
(`knowwhen.uncertainty.ensemble_mc`). `knowwhen.classify.train_run.train_ensemble` trains them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import TrainConfig, config_to_dict
from ..errors import ConfigError
from ..training.rundir import CONFIG, read_config

MEMBERS_DIR = "members"
SHARED = ("knowwhen_version", "model", "class_names", "input_shape", "normalization", "data")
MEMBER_METRICS = ("best_epoch", "val_acc", "val_loss", "test_acc", "test_loss", "temperature")


def member_dir(out: str | Path, member: int) -> Path:
    return Path(out) / MEMBERS_DIR / str(member)


def member_config(config: TrainConfig, member: int, progress: bool) -> TrainConfig:
    """The settings of member `member`: the ensemble's, with that member's seed (see `training_seed`)."""
    return dataclasses.replace(config, ensemble=1, member=member, progress=progress)


def member_status(path: Path) -> str | None:
    """A member's training status (`training`, `complete`), None before it started."""
    return read_config(path).get("status") if (path / CONFIG).exists() else None


def member_layout(config: TrainConfig) -> dict:
    """config.json's `ensemble` block: how many members, where, from which training seeds."""
    return {"members": config.ensemble, "dirs": [str(member_dir(".", m)) for m in range(config.ensemble)],
            "training_seeds": [member_config(config, m, False).training_seed for m in range(config.ensemble)]}


def ensemble_payload(out: Path, config: TrainConfig) -> tuple[dict, float]:
    """The ensemble's config.json from its finished members' (what they share, each one's metrics) and their
    training seconds summed; refused when the members disagree on their classes, normalisation or input shape."""
    saved = [read_config(member_dir(out, m)) for m in range(config.ensemble)]
    for key in ("class_names", "normalization", "input_shape"):
        if any(s.get(key) != saved[0].get(key) for s in saved[1:]):
            raise ConfigError(f"{out}: the members' {key} differ (trained on different data?); retrain the ensemble "
                              "with --overwrite.")
    layout = {**member_layout(config),
              "member_metrics": [{k: s.get("metrics", {}).get(k) for k in MEMBER_METRICS} for s in saved]}
    payload = {**{k: saved[0][k] for k in SHARED if k in saved[0]}, "train": config_to_dict(config), "ensemble": layout}
    return payload, sum(float(s.get("train_seconds", 0)) for s in saved)
