"""The LightningModule: one network, one loss, a short training step."""
from __future__ import annotations

import lightning as L
import torch

from ..config import TrainConfig
from ..data.augment import augment_batch
from ..losses import LOSSES


class Classifier(L.LightningModule):
    """Trains `net` (images -> logits) with the loss and optimiser of `config`."""

    def __init__(self, net: torch.nn.Module, config: TrainConfig):
        super().__init__()
        self.net, self.cfg = net, config
        self.loss_fn = LOSSES[config.loss]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _augment(self, x: torch.Tensor, batch_idx: int) -> torch.Tensor:
        # A generator per (seed, epoch, batch) keeps augmentation identical after --resume.
        g = torch.Generator().manual_seed(hash((self.cfg.seed, self.current_epoch, batch_idx)) % 2**63)
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

    def configure_optimizers(self):
        c = self.cfg
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        return torch.optim.Adam(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    # Dropout masks come from torch's global generator: saving it makes a resumed run repeat an
    # uninterrupted one exactly.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
