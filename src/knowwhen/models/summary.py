"""A layer table: name, type, output shape and parameter count for every leaf layer."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


def layer_table(model: nn.Module, input_shape) -> list[LayerRow]:
    """One LayerRow per leaf module, in execution order, from a forward pass on one zero input.

    A module called more than once (a recurrent cell at every time step) is listed once; for a module
    returning a tuple (an LSTM cell's (h, c)) the first element's shape is shown.
    """
    rows, hooks, seen = [], [], set()
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        def hook(mod, _inp, out, name=name):
            if name in seen:
                return
            seen.add(name)
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            first = out[0] if isinstance(out, tuple) else out
            rows.append(LayerRow(name, type(mod).__name__, tuple(first.shape[1:]), params))
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


def model_summary(model: nn.Module, input_shape) -> str:
    """The layer table as text, with the total number of parameters."""
    rows = layer_table(model, input_shape)
    lines = [f"{'layer':<16}{'type':<14}{'output shape':<20}{'params':>10}"]
    lines += [f"{r.name:<16}{r.kind:<14}{str(r.output_shape):<20}{r.params:>10,}" for r in rows]
    total = sum(p.numel() for p in model.parameters())
    lines.append(f"total parameters: {total:,} (input {tuple(input_shape)})")
    return "\n".join(lines)
