"""MC dropout, the one engine for images and sequences: T stochastic passes, batch norm on its running statistics.

Masks (`MaskSource`): dropout site s is the s-th module in `model.modules()` that is an nn.Dropout* or a
`VariationalDropout` with p > 0. The mask of (seed, site s, pass t) is row t of a (T, *shape) block drawn from a
generator seeded by (seed, s), and every input of pass t sees it. An image or a window therefore sees T
independent masks, and its numbers do not depend on the batch or chunk it is predicted in, nor on the other
inputs beside it. No global random state is touched: the model stays in eval mode and the masks come from
hooks on the dropout sites.

Engines that compute the same passes from the same masks:
- `reference`: T full forward passes, masks applied by hooks; any nn.Module.
- `fast`: for nn.Sequential models whose dropouts are direct children. Layers before the first dropout run
  once; at a dropout followed (after Flatten) by a Linear layer, the T masks are folded into T copies of
  that layer's weights, so the T passes through it become one matrix multiplication; the remaining
  layers see (T * n) rows at once.
- `sample`: the inputs repeated for a block of passes (pass-major rows, T * n), one call of any forward
  function under the masks of those passes: for sequence models (a recurrent net unrolls once for all
  passes; a recursive forecast keeps each pass's masks through every fed-back step).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..models.sequence import VariationalDropout

log = logging.getLogger("knowwhen")
ENGINES = ("auto", "fast", "reference")
FEW_PASSES = 10  # below this the spread measures are coarse (and exactly 0 at one pass)
NO_DROPOUT = ("the model has no dropout layer with a rate above 0, so MC dropout would repeat one prediction; "
              "train a model with dropout (e.g. --dropout 0.5; recurrent forecasters: --model-arg "
              "recurrent_dropout=0.2) or leave MC dropout out.")


def dropout_sites(model: nn.Module) -> list[nn.Module]:
    """The dropout modules with a rate above 0 (nn.Dropout* and VariationalDropout), in `model.modules()` order."""
    kinds = (nn.modules.dropout._DropoutNd, VariationalDropout)
    return [m for m in model.modules() if isinstance(m, kinds) and m.p > 0]


def pass_masks(p: float, shape: tuple[int, ...], passes: int, seed: int, site: int) -> torch.Tensor:
    """(T, *shape) inverted-dropout masks (0 or 1/(1-p)) for one site, from a generator of (seed, site)."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + site) % 2**63)
    keep = torch.rand((passes, *shape), generator=g) >= p
    return keep.to(torch.float32) / (1.0 - p)


class MaskSource:
    """The masks of every dropout site of a model for `passes` passes and one seed, drawn once per site."""

    def __init__(self, sites: list[nn.Module], passes: int, seed: int):
        self.sites, self.passes, self.seed = sites, passes, seed
        self._blocks: dict[int, torch.Tensor] = {}

    def block(self, site: int, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """(T, *shape) masks of `site`; drawn on the CPU generator (the same on any device), kept on `device`."""
        b = self._blocks.get(site)
        if b is None or tuple(b.shape[1:]) != tuple(shape):
            b = pass_masks(self.sites[site].p, tuple(shape), self.passes, self.seed, site)
        self._blocks[site] = b = b.to(device)
        return b

    def rows(self, site: int, shape: tuple[int, ...], passes: slice, n: int, device) -> torch.Tensor:
        """Masks for a batch of passes `passes` x `n` inputs in pass-major order: (k * n, *shape), or the
        (*shape) mask of the pass when there is one (it broadcasts over the batch)."""
        b = self.block(site, shape, device)[passes]
        return b[0] if len(b) == 1 else b.repeat_interleave(n, dim=0)


@contextmanager
def masks_applied(source: MaskSource, passes: slice, n: int):
    """Inside the block, each dropout site applies the masks of `passes` to a batch of k * n rows, pass-major
    (rows t*n .. (t+1)*n - 1 belong to pass passes.start + t). The model must be in eval mode."""
    def scale(site):       # nn.Dropout*: multiplies its input (it is the identity in eval mode)
        return lambda mod, inputs: inputs[0] * source.rows(site, inputs[0].shape[1:], passes, n, inputs[0].device)

    def supply(site):      # VariationalDropout: returns the mask its network multiplies with
        return lambda mod, inputs, out: source.rows(site, inputs[0].shape[1:], passes, n, inputs[0].device).expand(
            inputs[0].shape)

    handles = [m.register_forward_hook(supply(i)) if isinstance(m, VariationalDropout)
               else m.register_forward_pre_hook(scale(i)) for i, m in enumerate(source.sites)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class MCDropout:
    """T-pass MC-dropout prediction for one model; masks are fixed at construction (seed, passes).

    Example:
        >>> mc = MCDropout(run.model, passes=100, seed=0)  # doctest: +SKIP
        >>> logits, passes = mc.predict(x)   # (n, K) deterministic logits, (T, n, K) MC softmax passes
        >>> outputs = mc.sample(windows)     # (T, n, H) raw outputs of a forecaster
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
            raise ConfigError(NO_DROPOUT)
        if self.passes < FEW_PASSES:
            log.warning("only %d MC pass(es): sigma_mc, mutual_info_mc and variation_ratio_mc are 0 at one pass and "
                        "coarse below %d (variation ratio moves in steps of 1/T); use --mc 100 to rank images by them.",
                        self.passes, FEW_PASSES)
        fast_ok = isinstance(self.model, nn.Sequential) and all(any(s is c for c in self.model) for s in self.sites)
        if self.engine == "fast" and not fast_ok:
            raise ConfigError("the fast MC engine needs an nn.Sequential whose dropouts are direct children; "
                              "use engine='reference'.")
        self.engine_ = "fast" if fast_ok and self.engine != "reference" else "reference"
        self.masks = MaskSource(self.sites, self.passes, self.seed)
        self._announced = False

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic logits (n, K) with dropout off, and the T MC softmax passes (T, n, K).

        The passes are softmax(logits_t / temperature); the deterministic logits are left unscaled.
        """
        det, z = self.pass_logits(x)
        return det, torch.softmax(z / self.temperature, dim=-1)

    @torch.no_grad()
    def predict_log(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As `predict`, with the passes as log-probabilities log_softmax(logits_t / temperature): exact where a
        probability would round to 0 (the NLL of a confidently wrong image)."""
        det, z = self.pass_logits(x)
        return det, torch.log_softmax(z / self.temperature, dim=-1)

    @torch.no_grad()
    def pass_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic logits (n, K) with dropout off, and the logits of the T passes (T, n, K), unscaled."""
        if not self._announced:
            log.info("MC dropout: %s engine, %d passes", self.engine_, self.passes)
            self._announced = True
        self.model.eval()  # batch norm uses its running statistics in every pass; masks replace dropout
        if self.engine_ == "fast":
            return self._fast(x)
        det = self.model(x)
        return det, torch.stack([self._reference_pass(x, t) for t in range(self.passes)])

    @torch.no_grad()
    def sample(self, x: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
               block: int | None = None) -> torch.Tensor:
        """(T, n, ...) outputs of `forward` (default: the model) on x (n, ...) in every pass, unscaled.

        `block` passes (default: all) run as one batch of block * n rows, pass-major; `forward` may call the
        model several times (e.g. a recursive forecast), every call of a pass under that pass's masks.
        """
        forward = forward or self.model
        self.model.eval()
        n, block, out = x.shape[0], block or self.passes, []
        for start in range(0, self.passes, block):
            k = min(block, self.passes - start)
            with masks_applied(self.masks, slice(start, start + k), n):
                y = forward(x.repeat(k, *[1] * (x.dim() - 1)))
            out.append(y.reshape(k, n, *y.shape[1:]))
        return torch.cat(out)

    def _reference_pass(self, x: torch.Tensor, t: int) -> torch.Tensor:
        with masks_applied(self.masks, slice(t, t + 1), x.shape[0]):
            return self.model(x)

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
        return det, z

    def _apply_site(self, z: torch.Tensor, per_pass: bool, layers: list, j: int, site: int):
        """Applies dropout site `site` (layers[j]); returns (T, n, ...) and the next layer index.

        Before any mask, a dropout followed (past Flatten) by a Linear layer is folded into its weights.
        """
        k = j + 1
        while k < len(layers) and isinstance(layers[k], nn.Flatten):
            k += 1
        if not per_pass and k < len(layers) and isinstance(layers[k], nn.Linear):
            mask = self.masks.block(site, tuple(z.shape[1:]), z.device).flatten(1)   # (T, D)
            return _folded_linear(z.flatten(1), mask, layers[k], self.chunk), k + 1
        mask = self.masks.block(site, tuple(z.shape[2:] if per_pass else z.shape[1:]), z.device)  # (T, ...)
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


# The network, the MC passes and the feature scores always see blocks of exactly ROWS images (the last one of a
# batch padded with zeros): the CPU's kernels block a product differently for another number of rows, so an
# image's numbers would otherwise differ in their last bits with the batch size, and a score that sits on a
# reference score would move the fused novelty by a rank. With fixed blocks an image's numbers are bit for bit
# the same whatever the batch size or its neighbours (tested); a batch size is then only the reading unit. 512 is the
# default batch size, so the default pads nothing, and it bounds the memory of one block.
ROWS = 512


def padded_chunks(x: torch.Tensor, rows: int = ROWS):
    """Yields (block, n): x in blocks of exactly `rows` rows, the first n of them real (the last block padded)."""
    for start in range(0, len(x), rows):
        block = x[start:start + rows]
        n = len(block)
        yield (torch.cat([block, block.new_zeros((rows - n, *block.shape[1:]))]) if n < rows else block), n
