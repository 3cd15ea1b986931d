"""What every knowwhen LightningModule shares: the network, the optimiser of its OptimConfig, the RNG in resumes."""
from __future__ import annotations

import lightning as L
import torch

from ..config import OptimConfig


class RunModule(L.LightningModule):
    """Trains `net` with the optimiser of `config`; subclasses write the loss (`Classifier`, `Regressor`)."""

    def __init__(self, net: torch.nn.Module, config: OptimConfig):
        super().__init__()
        self.net, self.cfg = net, config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

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
