"""The classifier's LightningModule: one network, one loss, a short training step."""
from __future__ import annotations

import torch

from ..config import TrainConfig
from ..data.augment import augment_batch
from .losses import LOSSES
from .module import RunModule


class Classifier(RunModule):
    """Trains `net` (images -> logits) with the loss and optimiser of `config`."""

    def __init__(self, net: torch.nn.Module, config: TrainConfig):
        super().__init__(net, config)
        self.loss_fn = LOSSES[config.loss]

    def _augment(self, x: torch.Tensor, batch_idx: int) -> torch.Tensor:
        # A generator per (seed, epoch, batch) keeps augmentation identical after --resume.
        g = torch.Generator().manual_seed(hash((self.cfg.training_seed, self.current_epoch, batch_idx)) % 2**63)
        return augment_batch(x, self.cfg.augment, g)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(self._augment(x, batch_idx))
        loss = self.loss_fn(logits, y)
        self.log("loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        self._log_epoch("train", loss, logits, y)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self._log_epoch("val", self.loss_fn(logits, y), logits, y)

    def _log_epoch(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        acc = (logits.argmax(dim=1) == y).float().mean()
        opts = dict(on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}_loss", loss, prog_bar=stage == "val", **opts)
        self.log(f"{stage}_acc", acc, prog_bar=True, **opts)
