"""MC-dropout forecasts: T stochastic passes per window, summarised per chunk so memory stays bounded.

Each pass draws its own dropout masks (variational dropout: one mask per sequence, reused at every time step
of it). A recursive multi-step forecast feeds every pass its own previous outputs and keeps that pass's masks
for all steps, so a pass is one sampled network followed through the whole horizon. Masks come from torch's
generator seeded per chunk of windows: the same seed and `rows` give the same numbers.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .models import VariationalDropout

QUANTILES = (0.05, 0.95)  # the 90% central interval
SUMMARIES = ("mean", "std", "q05", "q95", "low", "high", "crps", "crps_mc", "samples")


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    """The dropout layers MC dropout switches on: nn.Dropout* and VariationalDropout with p > 0."""
    kinds = (nn.modules.dropout._DropoutNd, VariationalDropout)
    return [m for m in model.modules() if isinstance(m, kinds) and m.p > 0]


def _require_dropout(model: nn.Module, passes: int, example: str) -> None:
    if passes and not dropout_modules(model):
        raise ConfigError("the model has no dropout with a rate above 0, so MC passes would all agree; train it "
                          f"with dropout (e.g. --model-arg {example}) or use --mc 0.")


@contextmanager
def _dropout_on(model: nn.Module):
    """Dropout layers sample (MC mode) inside the block; the model is back in eval mode after it."""
    try:
        for m in dropout_modules(model):
            m.train()
        yield
    finally:
        model.eval()


def _with_noise(s: np.ndarray, noise_std: np.ndarray | None, seed) -> np.ndarray:
    """The passes s (T, n, H) each plus a draw of the observation noise (std per step); s itself without one."""
    if noise_std is None:
        return s
    noise = np.asarray(noise_std, dtype=np.float64)[:s.shape[-1]]
    return s + noise * np.random.default_rng(seed).standard_normal(s.shape)


def _run(model: nn.Module, x: torch.Tensor, horizon: int, recursive: bool, seed: int | None) -> torch.Tensor:
    """(rows, horizon) forecasts; with `seed`, dropout masks drawn from it (the same for every recursive step)."""
    def once(inputs):
        if seed is None:
            return model(inputs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return model(inputs)

    if not recursive:
        return once(x)[:, :horizon]
    steps, cur = [], x
    for _ in range(horizon):
        y = once(cur)[:, :1]                                   # (rows, 1): the next value, scaled
        steps.append(y)
        cur = torch.cat([cur[:, :, 1:], y[:, :, None]], dim=2)  # slide the window over its own forecast
    return torch.cat(steps, dim=1)


@dataclass
class Forecast:
    """Forecasts for n windows and `horizon` steps, in the series' units.

    Attributes:
        point: (n, H) the forecast with dropout off.
        mean, std, q05, q95: (n, H) over the MC passes (std with ddof 0): the model's uncertainty only.
        low, high: (n, H) the 90% predictive interval: 5% and 95% quantiles of the passes each plus a draw of
            the observation noise (`noise_std`); equal to q05, q95 without a noise estimate.
        crps, crps_mc: (n, H) CRPS of the predictive samples (passes + noise) and of the passes alone.
        samples: (T, n, H) the passes themselves, kept only when asked for.
    All but `point` are None without MC.
    """

    point: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    q05: np.ndarray | None = None
    q95: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    crps: np.ndarray | None = None
    crps_mc: np.ndarray | None = None
    samples: np.ndarray | None = None


@torch.no_grad()
def mc_forecast(model: nn.Module, x: np.ndarray, horizon: int, recursive: bool = False, passes: int = 100,
                seed: int = 0, scale: tuple[float, float] = (0.0, 1.0), actual: np.ndarray | None = None,
                noise_std: np.ndarray | None = None, inverse=None, keep_samples: bool = False, rows: int = 8192,
                progress=None) -> Forecast:
    """Forecasts `horizon` steps from each window of x (n, D, window), dropout off and over `passes` MC passes.

    Args:
        recursive: feed the model's one-step output back `horizon` times (univariate series only).
        passes: MC passes (0: only the forecast with dropout off).
        scale: (mean, std) of the target: outputs are mapped back with y * std + mean.
        inverse: maps values from a transformed scale back to the series' units (see `inverse_transform`);
            the noise is added before it, so it lives on the transformed scale.
        actual: (n, H) true values in series units (NaN where unknown) for the CRPS of each forecast.
        noise_std: (H,) observation-noise standard deviation per step, on the transformed scale if any (Zhu & Laptev 2017: the
            spread of the validation residuals), added to each pass for the predictive interval; None: MC only.
        rows: windows x passes evaluated at once; bounds memory.
        progress: an optional callable given the number of windows finished after each chunk.
    """
    if recursive and x.shape[1] != 1:
        raise ConfigError(f"recursive forecasts feed the forecast back as the next input, so they need a univariate "
                          f"series; this one has {x.shape[1]} columns: use multistep='direct'.")
    _require_dropout(model, passes, "dropout=0.2")
    model.eval()
    mu, sd = scale
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    inverse = inverse or (lambda v: v)
    point = inverse(_run(model, xt, horizon, recursive, None).numpy() * sd + mu)
    out = Forecast(point)
    if not passes:
        return out
    chunk = max(1, rows // passes)
    parts = {k: [] for k in SUMMARIES}
    with _dropout_on(model):
        for c, start in enumerate(range(0, len(xt), chunk)):
            xc = xt[start:start + chunk]
            reps = xc.repeat(passes, 1, 1)                     # (T * c, D, window): pass t is rows t*c..(t+1)*c
            s = _run(model, reps, horizon, recursive, seed * 1_000_003 + c).numpy()
            s = s.reshape(passes, len(xc), horizon) * sd + mu
            _summarise(inverse(s), inverse(_with_noise(s, noise_std, [seed, c])), parts,
                       None if actual is None else actual[start:start + chunk], keep_samples)
            if progress:
                progress(len(xc))
    return _filled(out, parts)


def _filled(out: Forecast, parts: dict) -> Forecast:
    """`out` with the chunks' summaries joined along the windows."""
    for k, v in parts.items():
        if v:
            setattr(out, k, np.concatenate(v, axis=1 if k == "samples" else 0))
    return out


def _summarise(s: np.ndarray, total: np.ndarray, parts: dict, actual: np.ndarray | None, keep: bool) -> None:
    """Appends the chunk's summaries of the passes `s` and the predictive samples `total` (T, c, H)."""
    from .metrics import crps_ensemble

    parts["mean"].append(s.mean(0))
    parts["std"].append(s.std(0))
    for (lo, hi), x in ((("q05", "q95"), s), (("low", "high"), total)):
        q = np.quantile(x, QUANTILES, axis=0)
        parts[lo].append(q[0])
        parts[hi].append(q[1])
    if actual is not None:
        parts["crps"].append(crps_ensemble(total, actual))
        parts["crps_mc"].append(crps_ensemble(s, actual))
    if keep:
        parts["samples"].append(s)


@torch.no_grad()
def stateful_forecast(model: nn.Module, series: np.ndarray, steps: np.ndarray, horizon: int, passes: int = 100,
                      seed: int = 0, scale: tuple[float, float] = (0.0, 1.0), actual: np.ndarray | None = None,
                      noise_std: np.ndarray | None = None, inverse=None, keep_samples: bool = False,
                      chunk: int = 10) -> Forecast:
    """Forecasts of a stateful recurrent model made at `steps` of one scaled series (1, D, L).

    The model runs once over the whole series from its first step (each MC pass with its own masks, one per
    pass for the whole series), and the forecast made at step t is its output there: it has seen the entire
    history up to t. Passes run `chunk` at a time; the (T, n, H) samples are kept until summarised.
    Arguments as for `mc_forecast`.
    """
    _require_dropout(model, passes, "recurrent_dropout=0.2")
    model.eval()
    mu, sd = scale
    inverse = inverse or (lambda v: v)
    xt = torch.from_numpy(np.ascontiguousarray(series, dtype=np.float32))
    steps = torch.as_tensor(np.asarray(steps))
    out = Forecast(inverse(model.steps(xt)[0][0, steps, :horizon].numpy() * sd + mu))
    if not passes:
        return out
    samples = []
    with _dropout_on(model):
        for c, start in enumerate(range(0, passes, chunk)):
            t = min(chunk, passes - start)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 1_000_003 + c)
                samples.append(model.steps(xt.expand(t, -1, -1))[0][:, steps, :horizon].numpy())
    s = np.concatenate(samples) * sd + mu                       # (T, n, H) on the transformed scale
    parts = {k: [] for k in SUMMARIES}
    _summarise(inverse(s), inverse(_with_noise(s, noise_std, [seed, 0])), parts, actual, keep_samples)
    return _filled(out, parts)
