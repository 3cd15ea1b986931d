"""Random affine augmentation of a whole batch at once, on tensors (affine grids in torch)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import AugmentConfig


def _uniform(n: int, limit: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=g) * 2 - 1) * limit


def affine_matrices(n: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) matrices mapping output to input coordinates (normalised to [-1, 1])."""
    angle = _uniform(n, math.radians(cfg.rotation), g)
    shear = _uniform(n, math.radians(cfg.shear), g)
    scale = 1 + _uniform(n, cfg.zoom, g)
    shift = _uniform(2 * n, 2 * cfg.shift, g).view(n, 2)  # [-1, 1] spans the image: a fraction f is 2f
    flip_x = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.hflip else torch.ones(n)
    flip_y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.vflip else torch.ones(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    shearing = torch.zeros(n, 2, 2)
    shearing[:, 0, 0], shearing[:, 0, 1], shearing[:, 1, 1] = 1, torch.tan(shear), 1
    scaling = torch.diag_embed(torch.stack([flip_x, flip_y], -1) / scale[:, None])
    linear = rotation @ shearing @ scaling
    return torch.cat([linear, shift[:, :, None]], dim=2)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """A randomly rotated, zoomed, sheared, shifted and flipped copy of `x` (n, C, H, W).

    The random draws come from `g` (a CPU generator), so the same seed gives the same batch.
    Edges are filled by repeating the border, like Keras's 'nearest' fill.
    """
    if not cfg.enabled:
        return x
    theta = affine_matrices(x.shape[0], cfg, g).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
