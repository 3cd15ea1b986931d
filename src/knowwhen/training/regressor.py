"""The forecaster's LightningModules: one network, one regression loss, scaled targets; and the stateful variant."""
from __future__ import annotations

import functools

import torch

from ..config import ForecastConfig
from .losses import REGRESSION_LOSSES, huber_loss
from .module import RunModule


class Regressor(RunModule):
    """Trains `net` ((N, D, window) -> (N, outputs)) with the loss and optimiser of `config`."""

    def __init__(self, net: torch.nn.Module, config: ForecastConfig):
        super().__init__(net, config)
        self.loss_fn = (functools.partial(huber_loss, delta=config.huber_delta) if config.loss == "huber"
                        else REGRESSION_LOSSES[config.loss])

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self._training_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._log("val", self.net(x), y)

    def _training_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self._log("train", pred, y)
        self.log("loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        return loss

    def _log(self, stage: str, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(pred, y)
        opts = dict(on_step=False, on_epoch=True, batch_size=len(y))
        self.log(f"{stage}_loss", loss, prog_bar=stage == "val", **opts)
        self.log(f"{stage}_mae", (pred - y).abs().mean(), prog_bar=True, **opts)
        return loss


class StatefulRegressor(Regressor):
    """Stateful training: batch k holds segment k of every stream, and the hidden state at the end of a
    segment starts the next one (detached: back-propagation is truncated at segment borders). The state is
    reset at the start of each epoch. Validation runs once over the series from its start."""

    def on_train_epoch_start(self) -> None:
        self._state = None

    def training_step(self, batch, batch_idx):
        x, y = batch                                           # (B, D, window), (B, window, H)
        pred, state = self.net.steps(x, self._state)
        self._state = tuple(s.detach() for s in state)
        return self._training_loss(pred, y)

    def validation_step(self, batch, batch_idx):
        x, y, steps = batch                                    # (1, D, L), (n, H), (n,) steps forecast from
        pred, _ = self.net.steps(x)
        self._log("val", pred[0, steps], y)
