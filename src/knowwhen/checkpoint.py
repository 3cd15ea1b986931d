"""Saved runs: model.safetensors + config.json (+ metrics.csv). Loading never unpickles."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path, write_text_atomic
from .config import TrainConfig, config_from_dict
from .data.normalize import Normalizer
from .errors import CheckpointError, KnowwhenError
from .models import create_model, model_summary

FORMAT = "knowwhen-run"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, METRICS = "model.safetensors", "config.json", "metrics.csv"


@dataclass
class Run:
    """A trained model with everything needed to use it on new images.

    Attributes:
        path: the run directory.
        model: the network (eval mode); it maps normalised (n, C, H, W) images to logits (n, K).
        class_names: output k of the model is class_names[k].
        input_shape: (C, H, W) the model expects.
        normalizer: the exact preprocessing fitted on the training images.
        config: the TrainConfig it was trained with.
        info: the rest of config.json: data sizes, metrics, timing.
    """

    path: Path
    model: nn.Module
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    normalizer: Normalizer
    config: TrainConfig
    info: dict = field(default_factory=dict)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """Raw images (n, C, H, W) -> the normalised float32 tensor the model was trained on."""
        return torch.from_numpy(self.normalizer(np.asarray(images, dtype=np.float32)))

    @property
    def metrics(self) -> dict:
        return self.info.get("metrics", {})

    @property
    def temperature(self) -> float:
        """The temperature fitted on the validation logits (1.0 when none was fitted)."""
        return float(self.info.get("temperature", 1.0))

    def summary(self) -> str:
        return model_summary(self.model, self.input_shape)


def save_weights(model: nn.Module, run_dir: Path) -> None:
    """Writes the model's state dict to run_dir/model.safetensors atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(Path(run_dir) / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})


def write_config(run_dir: Path, payload: dict) -> None:
    """Writes run_dir/config.json atomically, stamped with the format and its version."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    write_text_atomic(Path(run_dir) / CONFIG, json.dumps(payload, indent=2) + "\n")


def read_config(run_dir: str | Path, trainer: str = "knowwhen train") -> dict:
    """config.json of a run directory, checked to be a knowwhen run this version can read."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory; train one with `{trainer}`.")
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a knowwhen run (no {CONFIG}); point to a directory made by "
                              f"`{trainer}`.")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable ({e}); the run is damaged, retrain it.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a knowwhen run config (no \"format\": \"{FORMAT}\").")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version!r} is newer than this knowwhen reads "
                              f"({FORMAT_VERSION}); upgrade knowwhen (pip install -U knowwhen).")
    return payload


def _load_state(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the run has no weights (was training interrupted? "
                              "continue it with `knowwhen train ... --resume`).")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); retrain the run.") from None


def load_weights(model: nn.Module, run_dir: Path) -> None:
    """Fills `model` from run_dir/model.safetensors; a mismatch is a CheckpointError, never a partial load."""
    try:
        model.load_state_dict(_load_state(run_dir / WEIGHTS), strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{run_dir / WEIGHTS}: weights do not match the model in {CONFIG} "
                              f"({str(e).splitlines()[0]}); the files come from different runs.") from None


def _field(payload: dict, key: str, path: Path):
    if key not in payload:
        raise CheckpointError(f"{path / CONFIG}: missing field `{key}`; the run is damaged, retrain it.")
    return payload[key]


def load_run(run_dir: str | Path, allow_incomplete: bool = False) -> Run:
    """Loads a run directory: rebuilds the model from config.json and fills it from model.safetensors.

    Example:
        >>> run = load_run("runs/fmnist")  # doctest: +SKIP
        >>> run.class_names[:2]
        ('T-shirt/top', 'Trouser')
    """
    run_dir = Path(run_dir)
    payload = read_config(run_dir)
    if payload.get("task") == "forecast":
        raise CheckpointError(f"{run_dir}: a forecaster, not an image classifier; use `knowwhen forecast "
                              "predict` / `knowwhen forecast evaluate` for it.")
    if payload.get("status") != "complete" and not allow_incomplete:
        raise CheckpointError(f"{run_dir}: training did not finish (status {payload.get('status')!r}); "
                              "continue it with `knowwhen train ... --resume`.")
    model_cfg = _field(payload, "model", run_dir)
    class_names = tuple(_field(payload, "class_names", run_dir))
    input_shape = tuple(_field(payload, "input_shape", run_dir))
    try:
        model = create_model(model_cfg["name"], input_shape, len(class_names), **model_cfg.get("args", {}))
        normalizer = Normalizer.from_dict(_field(payload, "normalization", run_dir))
        config = config_from_dict(TrainConfig, _field(payload, "train", run_dir), f"{run_dir / CONFIG}: train")
    except (KnowwhenError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{run_dir / CONFIG}: cannot rebuild the run ({e}).") from None
    load_weights(model, run_dir)
    info = {k: v for k, v in payload.items() if k not in ("model", "class_names", "input_shape", "normalization")}
    return Run(run_dir, model.eval(), class_names, input_shape, normalizer, config, info)
