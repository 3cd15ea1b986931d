"""Training, shared by every task: the trainer factory, the LightningModules, the losses and the run directory.

The tasks' own training functions compose these: `knowwhen.classify.train` and `knowwhen.forecast.train`.
Lightning takes seconds to import, so the trainer factory is loaded on first use.
"""
from .rundir import CONFIG, METRICS, RESUME, WEIGHTS, load_weights, prepare_run_dir, read_config, write_config

__all__ = ["CONFIG", "METRICS", "RESUME", "WEIGHTS", "load_weights", "make_trainer", "prepare_run_dir",
           "quiet_lightning", "read_config", "write_config"]


def __getattr__(name):
    if name in ("make_trainer", "quiet_lightning"):
        from . import trainer
        return getattr(trainer, name)
    raise AttributeError(f"module 'knowwhen.training' has no attribute {name!r}")
