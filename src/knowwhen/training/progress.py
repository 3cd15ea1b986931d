"""What a user sees while a run trains: a progress bar on a terminal, one line per epoch in a log file.

Epochs count from 1 here, as on the report's axes: "epoch 3/10" is the third of ten.
"""
from __future__ import annotations

import logging
import math
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

log = logging.getLogger("knowwhen")


class EpochBar(TQDMProgressBar):
    """Lightning's bar, with the epoch counted from 1 out of the maximum ("Epoch 3/10")."""

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


class EpochLines(L.Callback):
    """Logs one line per finished epoch: where stderr is no terminal (SLURM, nohup) a bar would write nothing
    readable until the end."""

    def __init__(self, metrics: tuple[str, ...]):
        self.metrics, self._start = metrics, time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        values = {k: trainer.callback_metrics.get(k) for k in self.metrics}
        shown = ", ".join(f"{k} {float(v):.4f}" for k, v in values.items() if v is not None and math.isfinite(v))
        log.info("epoch %d/%d: %s (%.1f s)", trainer.current_epoch + 1, trainer.max_epochs, shown or "no metrics",
                 time.perf_counter() - self._start)


def progress_callbacks(progress: bool, metrics: tuple[str, ...]) -> list[L.Callback]:
    """The bar on a terminal, epoch lines elsewhere, nothing when `progress` is off."""
    if not progress:
        return []
    return [EpochBar()] if sys.stderr.isatty() else [EpochLines(metrics)]
