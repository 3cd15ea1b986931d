"""The trainer factory both tasks train with: Lightning, configured to write a knowwhen run directory."""
from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from pathlib import Path

from .callbacks import METRIC_COLUMNS, BestWeights, EpochMetrics, ResumeState, TimeLimitNotice


def make_trainer(config, out: Path, monitor: str, has_val: bool, columns: tuple[str, ...] = METRIC_COLUMNS):
    """A Lightning Trainer that writes the run directory `out`: metrics.csv (`columns`), the best weights by
    `monitor`, the resume state, early stopping, and progress (a bar on a terminal, a line per epoch elsewhere).
    `config` is a TrainConfig or a ForecastConfig (the latter has no distributed settings: one process)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    callbacks = [EpochMetrics(out, columns), BestWeights(out, monitor)]
    if config.patience is not None:
        callbacks.append(EarlyStopping(monitor, patience=config.patience, check_on_train_epoch_end=not has_val))
    callbacks.append(ResumeState(out))
    if config.max_minutes:
        callbacks.append(TimeLimitNotice(config.max_minutes, config.epochs))
    from .progress import EpochBar, progress_callbacks

    callbacks += progress_callbacks(config.progress, columns[1:-2])  # the logged metrics, without epoch, lr, seconds
    return L.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, devices=getattr(config, "devices", 1),
        num_nodes=getattr(config, "num_nodes", 1), strategy=getattr(config, "strategy", "auto"), logger=False,
        callbacks=callbacks, enable_checkpointing=False,
        enable_progress_bar=any(isinstance(c, EpochBar) for c in callbacks),
        enable_model_summary=False, num_sanity_val_steps=0, deterministic=True,
        max_time=timedelta(minutes=config.max_minutes) if config.max_minutes else None,
        use_distributed_sampler=False, default_root_dir=str(out),
    )


def training_metrics(trainer, epochs: int) -> dict:
    """What config.json records of how training ended, for either task: the best epoch (index from 0), the epochs
    run, whether early stopping ended it, and where the time limit cut it short (`TimeLimitNotice`), if it did."""
    best = next(c for c in trainer.callbacks if isinstance(c, BestWeights))
    metrics = {"best_epoch": best.best_epoch, "epochs_run": trainer.current_epoch,
               "stopped_early": bool(trainer.should_stop and trainer.current_epoch < epochs)}
    limit = next((c for c in trainer.callbacks if isinstance(c, TimeLimitNotice)), None)
    if limit is not None and limit.stopped:
        metrics["stopped_at_time_limit"] = limit.stopped
    return metrics


def quiet_lightning() -> None:
    """Lightning's INFO banners and the warnings that do not apply to knowwhen's loaders, silenced."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
