"""Callbacks that write the run directory: metrics.csv, the best weights, the resume state."""
from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import lightning as L

from ..atomic import atomic_path
from ..tables import write_rows_csv
from .rundir import METRICS, RESUME, save_weights

log = logging.getLogger("knowwhen")
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _metric(trainer, name: str) -> float:
    value = trainer.callback_metrics.get(name)
    return float(value) if value is not None else math.nan


class EpochMetrics(L.Callback):
    """Rewrites run_dir/metrics.csv (atomically) with one row per finished epoch."""

    def __init__(self, run_dir: Path, columns: tuple[str, ...] = METRIC_COLUMNS):
        self.path, self.rows, self._start = Path(run_dir) / METRICS, [], time.perf_counter()
        self.columns = columns  # epoch, the logged metrics, lr, seconds

    def on_train_start(self, trainer, pl_module):
        # Keep only epochs the resume state covers; a later row belongs to an epoch being redone.
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < trainer.current_epoch]

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        values = [trainer.current_epoch] + [_metric(trainer, k) for k in self.columns[1:-2]]
        self.rows.append(dict(zip(self.columns, values + [lr, round(time.perf_counter() - self._start, 3)])))
        write_rows_csv(self.path, self.rows, self.columns)


class BestWeights(L.Callback):
    """Saves model.safetensors whenever the monitored loss improves, so the best epoch is kept."""

    def __init__(self, run_dir: Path, monitor: str):
        self.run_dir, self.monitor = Path(run_dir), monitor
        self.best, self.best_epoch = math.inf, -1

    def on_train_epoch_end(self, trainer, pl_module):
        score = _metric(trainer, self.monitor)
        if score < self.best:
            self.best, self.best_epoch = score, trainer.current_epoch
            if trainer.is_global_zero:
                save_weights(pl_module.net, self.run_dir)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class ResumeState(L.Callback):
    """Saves the full training state after every epoch (atomically), so a killed run loses at most one."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / RESUME

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            trainer.save_checkpoint(self.path)  # collective call; only rank 0 writes
            return
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp)


class TimeLimitNotice(L.Callback):
    """Says when the time limit (`max_minutes`) stopped training, and which epoch it cut short: that epoch saw
    only part of the training images, and its weights may be the ones kept, so a run that trained less than
    asked must not pass for a complete one. `stopped` holds what happened, for the run's config.json."""

    def __init__(self, max_minutes: float, epochs: int):
        self.max_minutes, self.epochs = max_minutes, epochs
        self.batches, self.epoch, self.stopped = 0, 0, None

    def on_train_epoch_start(self, trainer, pl_module):
        self.batches, self.epoch = 0, trainer.current_epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def on_train_end(self, trainer, pl_module):
        from lightning.pytorch.callbacks import Timer

        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        total = trainer.num_training_batches
        complete = self.epoch + 1 >= self.epochs and self.batches >= total
        if timer is None or complete or timer.time_remaining("train") > 0:
            return
        self.stopped = {"epoch": self.epoch + 1, "of_epochs": self.epochs, "batches": self.batches,
                        "of_batches": int(total), "max_minutes": self.max_minutes}
        if trainer.is_global_zero:
            cut = self.batches < total
            log.warning("training stopped at its time limit (%g min) in epoch %d of %d%s; the weights kept are "
                        "the best epoch's so far%s. Raise --max-minutes to train every epoch.", self.max_minutes,
                        self.epoch + 1, self.epochs, f", after {self.batches} of its {total} batches" if cut else "",
                        " (it may be this cut-short one)" if cut else "")
