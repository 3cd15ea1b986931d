"""Looking inside a network: first-layer filters, conv activation maps, class-maximising inputs."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def first_layer_filters(model: nn.Module) -> np.ndarray | None:
    """(F, C, kh, kw) weights of the first Conv2d, or None for a model without convolutions."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else conv.weight.detach().cpu().numpy()


@torch.no_grad()
def activation_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """For one normalised image x (1, C, H, W): each Conv2d's output after ReLU, as (name, (channels, h, w))."""
    maps, hooks = [], []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: maps.append((name, out[0].clamp(min=0).cpu().numpy()))))
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return maps


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 2.0, 1.0])
    k2 = (kernel[:, None] * kernel[None, :] / 16).to(x)
    c = x.shape[1]
    return F.conv2d(x, k2.expand(c, 1, 3, 3), padding=1, groups=c)


def class_maximising_inputs(model: nn.Module, input_shape, classes, steps: int = 150, lr: float = 0.05,
                            jitter: int = 2, blur_every: int = 4, decay: float = 1e-3, seed: int = 0) -> np.ndarray:
    """(len(classes), C, H, W) inputs (in normalised units) that maximise each class's logit.

    Gradient ascent on the input, DeepDream-style: random jitter (a small roll) each step and a light blur
    every few steps keep the images smooth and legible; L2 decay keeps them bounded. Eval mode throughout.
    """
    g = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(len(classes), *input_shape, generator=g)).requires_grad_(True)
    target = torch.as_tensor(list(classes))
    was_training = model.training
    model.eval()
    try:
        for step in range(steps):
            dx, dy = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
            shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            logits = model(shifted)
            score = logits.gather(1, target[:, None]).sum() - decay * (x ** 2).sum()
            grad, = torch.autograd.grad(score, x)
            with torch.no_grad():
                x += lr * grad / (grad.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)
                if blur_every and step % blur_every == 0:
                    x.copy_(_blur(x))
    finally:
        model.train(was_training)
    return x.detach().numpy()


def inside_figures(run, image: np.ndarray | None = None) -> dict:
    """The report's "inside the network" figures for a run: filters (conv models), activation maps (when an
    image (C, H, W) is given and the model has convolutions) and class-maximising inputs."""
    from . import figures as F

    out = {}
    weights = first_layer_filters(run.model)
    if weights is not None:
        out["filters"] = F.filters(weights)
        if image is not None:
            maps = activation_maps(run.model, run.preprocess(image[None]))
            out["activations"] = F.activations(maps, image)
    inputs = class_maximising_inputs(run.model, run.input_shape, range(len(run.class_names)))
    out["class_inputs"] = F.class_inputs(inputs, run.class_names)
    out["_class_input_arrays"] = inputs
    return out


def image_to_explain(run, image=None, ds=None, index: int | None = None) -> np.ndarray | None:
    """The (C, H, W) image whose activation maps to show: an image file, or image `index` of dataset `ds`; None
    without either. Raises ConfigError for an index out of range or an image of another shape than the run's."""
    from ..errors import ConfigError

    picture = None
    if image is not None:
        from ..data.images import decoded_image

        picture = decoded_image(image).astype("float32")
    elif index is not None and ds is not None:
        if not 0 <= index < len(ds):
            raise ConfigError(f"--index {index}: {ds.path} holds {len(ds)} images; use 0..{len(ds) - 1}.")
        picture = ds.images([index])[0]
    if picture is not None and tuple(picture.shape) != tuple(run.input_shape):
        raise ConfigError(f"the image is {tuple(picture.shape)} (C, H, W) but the run expects "
                          f"{tuple(run.input_shape)}.")
    return picture


def write_explanations(run, out_dir, image: np.ndarray | None = None) -> list:
    """Writes filters.png, activations.png, class_inputs.png and class_input_<k>_<name>.png to `out_dir`."""
    import re
    from pathlib import Path

    import matplotlib.pyplot as plt

    from ..atomic import atomic_path
    from .figures import composite

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs, written = inside_figures(run, image), []
    arrays = figs.pop("_class_input_arrays")
    for name, fig in figs.items():
        with atomic_path(out_dir / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        written.append(out_dir / f"{name}.png")
    for k, (arr, cls) in enumerate(zip(arrays, run.class_names)):
        path = out_dir / f"class_input_{k}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', cls)}.png"
        with atomic_path(path) as tmp:
            plt.imsave(tmp, composite(arr), cmap="gray", format="png")
        written.append(path)
    return written
