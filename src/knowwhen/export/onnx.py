"""ONNX export of a run with its MC dropout kept: one deterministic graph that computes, for a batch of raw images,
what `knowwhen predict --mc T --seed S` computes from the same masks.

Exporting a dropout network the usual way loses its uncertainty: in eval mode dropout is the identity, and in
training mode it draws new masks on every call, so outputs cannot be reproduced. Here the T masks of seed S
(`knowwhen.uncertainty.mc.MaskSource`, the ones `predict` uses) are constants of the graph: the layers before
the first dropout run once, the masks of a dropout followed by a Linear layer are folded into T copies of its
weights (as the fast engine does), and the later layers see T x n rows. So the graph is deterministic and its
outputs equal `predict`'s columns to float32 rounding.

Inside the graph: the run's normalisation (clip to the training percentiles, then (x - mean) / std per
channel), so that the file takes raw pixel values and cannot be fed unnormalised images; the softmax's and the
MC passes' temperatures. Outputs (n = images, K = classes): `probs` (n, K) the deterministic softmax, `p_max`,
`pred`, `probs_mc` (n, K) the MC mean p*, `p_max_mc`, `pred_mc`, `sigma_mc`, `entropy_mc`, `mutual_info_mc`,
`variation_ratio_mc` (formulas in `knowwhen.uncertainty.measures`). Not in the graph: the feature-space scores
and `novelty` (they need the run's feature statistics and reference scores). Supported: single networks that
the fast engine takes (an nn.Sequential whose dropouts are direct children); deep ensembles and forecasters are
refused.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..uncertainty.mc import MCDropout

OUTPUTS = ("probs", "p_max", "pred", "probs_mc", "p_max_mc", "pred_mc", "sigma_mc", "entropy_mc", "mutual_info_mc",
           "variation_ratio_mc")
OPSET = 17


class MCGraph(nn.Module):
    """The run's network with T fixed masks, its normalisation and temperatures; forward(images) returns OUTPUTS."""

    def __init__(self, run, passes: int, seed: int = 0):
        super().__init__()
        from ..classify.predict import applied_mc_temperature

        if run.members > 1:
            raise ConfigError("export of a deep ensemble is not supported: export one member (RUN/members/0) or a "
                              "single-network run.")
        engine = MCDropout(run.model.eval(), passes, seed)
        if engine.engine_ != "fast":
            raise ConfigError("export needs a model the fast MC engine takes (an nn.Sequential whose dropouts are "
                              "direct children, as every registered image model is).")
        self.model, self.passes, self.seed = run.model, passes, seed
        n = run.normalizer
        self.register_buffer("mean", torch.tensor(n.mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(n.std, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.clip = None if n.clip_low is None else (torch.tensor(n.clip_low).reshape(1, -1, 1, 1).float(),
                                                     torch.tensor(n.clip_high).reshape(1, -1, 1, 1).float())
        self.t, self.t_mc = float(run.temperature), float(applied_mc_temperature(run, True))
        self.steps = _steps(engine, run.model, tuple(run.input_shape))

    def forward(self, images: torch.Tensor):
        x = images
        if self.clip is not None:
            x = torch.minimum(torch.maximum(x, self.clip[0]), self.clip[1])
        x = (x - self.mean) / self.std
        det = self.model(x)                                             # dropout off: eval mode
        z = _mc_logits(self.steps, x)                                   # (T, n, K)
        probs = torch.softmax(det / self.t, dim=1)
        p = torch.softmax(z / self.t_mc, dim=-1)
        p_star = p.mean(0)
        entropy = -(p_star * torch.log(p_star.clamp_min(1e-30))).sum(1)
        per_pass = -(p * torch.log(p.clamp_min(1e-30))).sum(2).mean(0)
        variance = ((p - p_star) ** 2).mean(0)    # two passes: E[p^2] - p*^2 cancels in float32 for sure images
        votes = nn.functional.one_hot(p.argmax(2), p.shape[2]).float().sum(0)
        return (probs, probs.max(1).values, probs.argmax(1), p_star, p_star.max(1).values, p_star.argmax(1),
                variance.sum(1).sqrt(), entropy, (entropy - per_pass).clamp_min(0.0),
                1.0 - votes.max(1).values / self.passes)


def _steps(engine: MCDropout, model: nn.Sequential, input_shape: tuple) -> list:
    """The fast engine's walk through the layers as a list of steps with their masks as constants:
    ("once", layer), ("fold", weights (T*H, D), bias, H), ("mask", masks (T, 1, ...)), ("each", layer)."""
    layers, site_of = list(model), {id(m): i for i, m in enumerate(engine.sites)}
    steps, z, per_pass, j = [], torch.zeros((1, *input_shape)), False, 0
    with torch.no_grad():
        while j < len(layers):
            layer = layers[j]
            if id(layer) not in site_of:
                steps.append(("each" if per_pass else "once", layer))
                z = _per_pass(layer, z) if per_pass else layer(z)
                j += 1
                continue
            k = j + 1
            while k < len(layers) and isinstance(layers[k], nn.Flatten):
                k += 1
            site = site_of[id(layer)]
            if not per_pass and k < len(layers) and isinstance(layers[k], nn.Linear):
                mask = engine.masks.block(site, tuple(z.shape[1:])).flatten(1)                 # (T, D)
                w, b = layers[k].weight, layers[k].bias
                steps.append(("fold", (w[None] * mask[:, None, :]).reshape(-1, w.shape[1]).clone(),
                              None if b is None else b.clone(), w.shape[0]))
                z, j = torch.zeros((engine.passes, 1, w.shape[0])), k + 1
            else:
                shape = tuple(z.shape[2:] if per_pass else z.shape[1:])
                steps.append(("mask", engine.masks.block(site, shape)[:, None].clone()))
                z, j = (z if per_pass else z[None].expand(engine.passes, *z.shape)), j + 1
            per_pass = True
    return steps


def _per_pass(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    out = layer(z.reshape(-1, *z.shape[2:]))
    return out.reshape(z.shape[0], -1, *out.shape[1:])


def _mc_logits(steps: list, x: torch.Tensor) -> torch.Tensor:
    z, per_pass = x, False
    for step in steps:
        kind = step[0]
        if kind == "once":
            z = step[1](z)
        elif kind == "each":
            z = _per_pass(step[1], z)
        elif kind == "fold":
            _, w, b, h = step
            flat = z.reshape(z.shape[0], -1) if not per_pass else z
            y = (flat @ w.T).reshape(flat.shape[0], -1, h).transpose(0, 1)          # (T, n, H)
            z, per_pass = (y + b if b is not None else y), True
        else:
            z, per_pass = (z * step[1] if per_pass else z[None] * step[1]), True
    return z


def export_onnx(run, out: str | Path, passes: int = 100, seed: int = 0) -> Path:
    """Writes the run as one ONNX graph with T = `passes` fixed MC-dropout masks of `seed` (see the module's
    note); the batch size is dynamic. Repeating the export writes the same bytes.

    Example:
        >>> export_onnx(load_run("runs/fmnist"), "model.onnx", passes=30)  # doctest: +SKIP
    """
    from ..atomic import atomic_path

    if passes < 1:
        raise ConfigError(f"--mc {passes}: the graph needs at least 1 MC pass (e.g. --mc 30).")
    import onnx

    graph = MCGraph(run, passes, seed).eval()
    example = torch.zeros((2, *run.input_shape))
    axes = {"images": {0: "n"}, **{name: {0: "n"} for name in OUTPUTS}}
    with atomic_path(out) as tmp, torch.no_grad():
        torch.onnx.export(graph, (example,), str(tmp), input_names=["images"], output_names=list(OUTPUTS),
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        model = onnx.load(str(tmp))
        for key, value in graph_metadata(run, graph).items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(tmp))
    return Path(out)


def graph_metadata(run, graph: MCGraph) -> dict[str, str]:
    """What a user of the file needs besides the graph: the class of each output column, the input it takes, and
    the settings it reproduces (ONNX metadata_props, strings)."""
    import json

    from .. import __version__

    return {"knowwhen_version": __version__, "class_names": json.dumps(list(run.class_names)),
            "input_shape": json.dumps(list(run.input_shape)), "input": "raw pixel values (n, C, H, W), float32; "
            "the run's normalisation is inside the graph", "channel_names": json.dumps(list(run.channel_names)),
            "mc_passes": str(graph.passes), "seed": str(graph.seed), "temperature": repr(graph.t),
            "mc_temperature": repr(graph.t_mc), "outputs": ", ".join(OUTPUTS),
            "measures": "see knowwhen.uncertainty.measures; higher = more uncertain except p_max, p_max_mc"}
