"""A saved image classifier: the run directory of `knowwhen train` loaded with everything needed to use it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig, config_from_dict
from ..data.normalize import Normalizer
from ..errors import CheckpointError, KnowwhenError
from ..models import Ensemble, create_model, model_summary
from ..training.rundir import CONFIG, config_field, load_weights, read_config
from ..uncertainty.ensemble_mc import samples_per_image
from ..uncertainty.features import FeatureScorer
from .features import load_features, load_reference


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
        features: the feature statistics of its training split (feature-space novelty scores), or None.
        reference: the validation images' scores per measure (for the fused `novelty` score), or None.
    """

    path: Path
    model: nn.Module
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    normalizer: Normalizer
    config: TrainConfig
    info: dict = field(default_factory=dict)
    features: FeatureScorer | None = None
    reference: dict | None = None

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """Raw images (n, C, H, W) -> the normalised float32 tensor the model was trained on."""
        return torch.from_numpy(self.normalizer(np.asarray(images, dtype=np.float32)))

    @property
    def metrics(self) -> dict:
        return self.info.get("metrics", {})

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The input channels' names as the training data gave them (e.g. RFP, DIC), or () when it did not."""
        return tuple(self.info.get("data", {}).get("channel_names", ()))

    @property
    def temperature(self) -> float:
        """The temperature fitted on the validation logits (1.0 when none was fitted)."""
        return float(self.info.get("temperature", 1.0))

    @property
    def mc_temperature(self) -> float | None:
        """The temperature dividing each MC pass's logits, fitted on validation for the MC mean; None when the run
        has none (trained before it; `knowwhen refit` fits it): the passes then use `temperature`."""
        value = self.info.get("mc_temperature")
        return float(value) if value is not None else None

    @property
    def members(self) -> int:
        """Networks in the run: M for a deep ensemble, 1 for a single network."""
        return len(self.model.members) if isinstance(self.model, Ensemble) else 1

    def samples(self, mc: int | None) -> int:
        """Prediction samples per image with `mc` MC passes: M x T for an ensemble (M without MC), else T (0: none)."""
        return samples_per_image(self.model, mc)

    def summary(self) -> str:
        if isinstance(self.model, Ensemble):
            return (f"deep ensemble of {self.members} members; each member:\n"
                    + model_summary(self.model.members[0], self.input_shape))
        return model_summary(self.model, self.input_shape)


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
    model_cfg = config_field(payload, "model", run_dir)
    class_names = tuple(config_field(payload, "class_names", run_dir))
    input_shape = tuple(config_field(payload, "input_shape", run_dir))
    try:
        build = lambda: create_model(model_cfg["name"], input_shape, len(class_names),  # noqa: E731
                                     **model_cfg.get("args", {}))
        model = build()
        normalizer = Normalizer.from_dict(config_field(payload, "normalization", run_dir))
        config = config_from_dict(TrainConfig, config_field(payload, "train", run_dir), f"{run_dir / CONFIG}: train",
                                   saved=True)
    except (KnowwhenError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{run_dir / CONFIG}: cannot rebuild the run ({e}).") from None
    if "ensemble" in payload:
        model = Ensemble([_member(run_dir / d, build()) for d in config_field(payload, "ensemble", run_dir)["dirs"]])
    else:
        load_weights(model, run_dir)
    info = {k: v for k, v in payload.items() if k not in ("model", "class_names", "input_shape", "normalization")}
    return Run(run_dir, model.eval(), class_names, input_shape, normalizer, config, info, load_features(run_dir),
               load_reference(run_dir))


def _member(member_dir: Path, model: nn.Module) -> nn.Module:
    """An ensemble member's network, filled from its own run directory (which must have finished training)."""
    status = read_config(member_dir).get("status") if (member_dir / CONFIG).exists() else "missing"
    if status != "complete":
        raise CheckpointError(f"{member_dir}: this ensemble member did not finish training (status {status!r}); "
                              "continue the ensemble with `knowwhen train --resume --out RUN`.")
    load_weights(model, member_dir)
    return model
