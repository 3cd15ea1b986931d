"""MC dropout: T stochastic passes per image, dropout on, batch norm on its running statistics.

Masks: for dropout site s (the s-th nn.Dropout in `model.modules()` with p > 0) and pass t, one mask is
drawn from a generator seeded by (seed, s) and shared by every image in pass t. An image therefore sees T
independent masks, and its numbers do not depend on the batch size or on the other images in its batch.

Two engines compute the same per-pass probabilities from the same masks:
- `reference`: T full forward passes, masks applied by hooks on the dropout modules; any nn.Module.
- `fast`: for nn.Sequential models whose dropouts are direct children. Layers before the first dropout run
  once; at a dropout followed (after Flatten) by a Linear layer, the T masks are folded into T copies of
  that layer's weights, so the T passes through it become one matrix multiplication; the remaining
  layers see (T * n) rows at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError

log = logging.getLogger("knowwhen")
ENGINES = ("auto", "fast", "reference")


def dropout_sites(model: nn.Module) -> list[nn.Dropout]:
    """The dropout modules with a rate above 0, in `model.modules()` order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


def pass_masks(p: float, shape: tuple[int, ...], passes: int, seed: int, site: int) -> torch.Tensor:
    """(T, *shape) inverted-dropout masks (0 or 1/(1-p)) for one site, from a generator of (seed, site)."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + site) % 2**63)
    keep = torch.rand((passes, *shape), generator=g) >= p
    return keep.to(torch.float32) / (1.0 - p)


@dataclass
class MCDropout:
    """T-pass MC-dropout prediction for one model; masks are fixed at construction (seed, passes).

    Example:
        >>> mc = MCDropout(run.model, passes=100, seed=0)  # doctest: +SKIP
        >>> logits, passes = mc.predict(x)   # (n, K) deterministic logits, (T, n, K) MC softmax passes
    """

    model: nn.Module
    passes: int = 100
    seed: int = 0
    engine: str = "auto"
    chunk: int = 10
    temperature: float = 1.0

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r}: use one of {', '.join(ENGINES)}.")
        if self.passes < 1:
            raise ConfigError(f"`mc` is {self.passes}; use at least 1 pass (typically 100).")
        self.sites = dropout_sites(self.model)
        if not self.sites:
            raise ConfigError("the model has no dropout layer with a rate above 0, so MC dropout would repeat "
                              "one prediction; train a model with dropout (e.g. --dropout 0.5).")
        fast_ok = isinstance(self.model, nn.Sequential) and all(any(s is c for c in self.model) for s in self.sites)
        if self.engine == "fast" and not fast_ok:
            raise ConfigError("the fast MC engine needs an nn.Sequential whose dropouts are direct children; "
                              "use engine='reference'.")
        self.engine_ = "fast" if fast_ok and self.engine != "reference" else "reference"
        log.info("MC dropout: %s engine, %d passes", self.engine_, self.passes)
        self._masks: dict[int, torch.Tensor] = {}

    def _mask(self, site: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        # Drawn on the CPU generator (the same masks on any device), then kept on the model's device.
        if site not in self._masks or self._masks[site].device != device:
            self._masks[site] = pass_masks(self.sites[site].p, shape, self.passes, self.seed, site).to(device)
        return self._masks[site]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic logits (n, K) with dropout off, and the T MC softmax passes (T, n, K).

        The passes are softmax(logits_t / temperature); the deterministic logits are left unscaled.
        """
        self.model.eval()  # batch norm uses its running statistics in every pass; masks replace dropout
        if self.engine_ == "fast":
            return self._fast(x)
        det = self.model(x)
        return det, torch.stack([self._softmax(self._reference_pass(x, t)) for t in range(self.passes)])

    def _softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax of temperature-scaled logits (temperature 1: plain softmax)."""
        return torch.softmax(logits / self.temperature, dim=-1)

    def _reference_pass(self, x: torch.Tensor, t: int) -> torch.Tensor:
        def hook(site):
            return lambda mod, inputs: inputs[0] * self._mask(site, tuple(inputs[0].shape[1:]), inputs[0].device)[t]
        handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(self.sites)]
        try:
            return self.model(x)
        finally:
            for h in handles:
                h.remove()

    def _fast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layers = list(self.model)
        site_of = {id(m): i for i, m in enumerate(self.sites)}
        first = next(j for j, m in enumerate(layers) if id(m) in site_of)
        h = nn.Sequential(*layers[:first])(x)                    # (n, ...): computed once, not T times
        det = nn.Sequential(*layers[first:])(h)
        z, per_pass, j = h, False, first                          # z becomes (T, n, ...) at the first mask
        while j < len(layers):
            if id(layers[j]) in site_of:
                z, j = self._apply_site(z, per_pass, layers, j, site_of[id(layers[j])])
                per_pass = True
            else:
                z = _per_pass(layers[j], z) if per_pass else layers[j](z)
                j += 1
        return det, self._softmax(z)

    def _apply_site(self, z: torch.Tensor, per_pass: bool, layers: list, j: int, site: int):
        """Applies dropout site `site` (layers[j]); returns (T, n, ...) and the next layer index.

        Before any mask, a dropout followed (past Flatten) by a Linear layer is folded into its weights.
        """
        k = j + 1
        while k < len(layers) and isinstance(layers[k], nn.Flatten):
            k += 1
        if not per_pass and k < len(layers) and isinstance(layers[k], nn.Linear):
            mask = self._mask(site, tuple(z.shape[1:]), z.device).flatten(1)   # (T, D)
            return _folded_linear(z.flatten(1), mask, layers[k], self.chunk), k + 1
        mask = self._mask(site, tuple(z.shape[2:] if per_pass else z.shape[1:]), z.device)  # (T, ...)
        return (z if per_pass else z[None]) * mask[:, None], j + 1


def _per_pass(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Applies `layer` to (T, n, ...) by folding passes into the batch."""
    t, n = z.shape[:2]
    out = layer(z.reshape(t * n, *z.shape[2:]))
    return out.reshape(t, n, *out.shape[1:])


def _folded_linear(x: torch.Tensor, masks: torch.Tensor, linear: nn.Linear, chunk: int) -> torch.Tensor:
    """(T, n, H) = linear(x * masks[t]) for every pass t, as (n, D) @ (D, chunk * H) products.

    Folding mask t into the weights, W_t = W * masks[t], turns T masked inputs into one wide product;
    chunks of passes bound the memory of the folded weights.
    """
    w, b = linear.weight, linear.bias                            # (H, D), (H,)
    outs = []
    for start in range(0, masks.shape[0], chunk):
        m = masks[start:start + chunk]                            # (c, D)
        folded = (w[None] * m[:, None, :]).reshape(-1, w.shape[1])  # (c * H, D)
        y = (x @ folded.T).reshape(x.shape[0], m.shape[0], w.shape[0]).transpose(0, 1)  # (c, n, H)
        outs.append(y + b if b is not None else y)
    return torch.cat(outs)
