"""Several processes on one job: launch or join the ranks, give each its share of the parts, wait for all.

Used by prediction (each rank writes its parts, rank 0 merges them) and usable from Python as it is from the
CLI:

    ranks = launch_or_join(devices=2)                       # or Ranks() for one process
    write_predictions(run, ds, "out.parquet", PredictOptions(mc=100), ranks)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Ranks:
    """This process's place among `world` processes, its device, and a barrier that waits for all of them.

    The default is one process on the CPU.
    """

    rank: int = 0
    world: int = 1
    device: str | torch.device = "cpu"
    barrier: Callable[[], None] | None = None

    @property
    def lead(self) -> bool:
        """Rank 0: the process that merges and writes what all ranks share."""
        return self.rank == 0

    def share(self, parts: int) -> list[int]:
        """The part indices this rank works on: rank, rank + world, rank + 2 world, ... below `parts`."""
        return list(range(self.rank, parts, self.world))

    def wait(self) -> None:
        """Returns once every rank has called it (at once for one process)."""
        if self.barrier is not None:
            self.barrier()


def launch_or_join(devices: int = 1, num_nodes: int = 1, accelerator: str = "cpu") -> Ranks:
    """The ranks of this job, started as needed.

    Started by torchrun (WORLD_SIZE set, one device per process requested), the ranks join one gloo group.
    With `devices` x `num_nodes` > 1 or another accelerator, Lightning Fabric launches the processes (and picks
    each one's GPU), and this returns in every one of them. Otherwise: one process on the CPU.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and devices == 1 and num_nodes == 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        return Ranks(dist.get_rank(), dist.get_world_size(), "cpu", dist.barrier)
    if devices * num_nodes == 1 and accelerator == "cpu":
        return Ranks()
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                    strategy="ddp" if devices * num_nodes > 1 else "auto")
    fabric.launch()
    return Ranks(fabric.global_rank, fabric.world_size, fabric.device, fabric.barrier)
