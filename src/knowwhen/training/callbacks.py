"""Callbacks that write the run directory: metrics.csv, the best weights, the resume state."""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import lightning as L

from ..atomic import atomic_path
from ..tables import write_rows_csv
from .rundir import METRICS, RESUME, save_weights

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
