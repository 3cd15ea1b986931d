"""MC-dropout forecasts: T stochastic passes per window from the one MC engine, summarised chunk by chunk.

A pass is one sampled network (the masks of (seed, site, pass), see `knowwhen.uncertainty.mc`) applied to every
window; variational dropout reuses its mask at every time step. A recursive multi-step forecast feeds every
pass its own previous outputs under that pass's masks, so a pass is followed through the whole horizon. The
observation noise of window w is drawn from a generator of (seed, w's first target), so a window's numbers do
not depend on how many windows are forecast together (to float32 rounding).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..config import check_counts
from ..errors import ConfigError
from ..uncertainty.mc import MCDropout

QUANTILES = (0.05, 0.95)  # the 90% central interval
SUMMARIES = ("mean", "std", "q05", "q95", "low", "high", "crps", "crps_mc", "samples")


def _with_noise(s: np.ndarray, noise_std: np.ndarray | None, seed: int, keys: np.ndarray) -> np.ndarray:
    """The passes s (T, n, H) each plus a draw of the observation noise (std per step), window n's draw from a
    generator of (seed, keys[n]); s itself without a noise estimate."""
    if noise_std is None:
        return s
    noise = np.asarray(noise_std, dtype=np.float64)[:s.shape[-1]]
    draws = np.stack([np.random.default_rng([seed, int(k)]).standard_normal((s.shape[0], s.shape[2])) for k in keys],
                     axis=1)
    return s + noise * draws


def _forward(model: nn.Module, horizon: int, recursive: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """x (rows, D, window) -> (rows, horizon) forecasts, fed back one step at a time when `recursive`."""
    def recursive_steps(x):
        steps, cur = [], x
        for _ in range(horizon):
            y = model(cur)[:, :1]                                  # (rows, 1): the next value, scaled
            steps.append(y)
            cur = torch.cat([cur[:, :, 1:], y[:, :, None]], dim=2)  # slide the window over its own forecast
        return torch.cat(steps, dim=1)

    return recursive_steps if recursive else (lambda x: model(x)[:, :horizon])


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


@dataclass(frozen=True, kw_only=True)
class ForecastOptions:
    """How a forecast is sampled.

    Attributes:
        passes: MC-dropout passes (e.g. 100); 0: only the forecast with dropout off.
        seed: seed of the dropout masks and of the observation-noise draws.
        noise: add the observation noise (`Units.noise_std`, the run's estimate) to the passes for the predictive
            interval (low, high); False: the MC interval alone.
        batch_size: windows forecast at once; the numbers do not depend on it (to float32 rounding).
        keep_samples: keep every pass (T, n, H) in `Forecast.samples`.
        progress: show a progress bar (for the callers that draw one).
    """

    passes: int = 100
    seed: int = 0
    noise: bool = True
    batch_size: int = 64
    keep_samples: bool = False
    progress: bool = True

    def __post_init__(self):
        check_counts(mc=self.passes, batch_size=self.batch_size)


@dataclass(frozen=True, kw_only=True, eq=False)
class Units:
    """From the network's scaled outputs to the series' values: y * std + mean (the target's scaling), then
    `inverse` (from a transformed scale, see `inverse_transform`; None: none). `noise_std` (H,): the observation
    noise's standard deviation per step on the transformed scale (Zhu & Laptev 2017: the spread of the validation
    residuals), added before `inverse`; None: no estimate."""

    mean: float = 0.0
    std: float = 1.0
    inverse: Callable | None = None
    noise_std: np.ndarray | None = None

    def values(self, y: np.ndarray) -> np.ndarray:
        return y if self.inverse is None else self.inverse(y)


@torch.no_grad()
def mc_forecast(model: nn.Module, x: np.ndarray, horizon: int, options: ForecastOptions = ForecastOptions(), *,
                recursive: bool = False, units: Units = Units(), actual: np.ndarray | None = None,
                keys: np.ndarray | None = None, on_batch: Callable[[int], object] | None = None) -> Forecast:
    """Forecasts `horizon` steps from each window of x (n, D, window), dropout off and over `options.passes`
    MC passes.

    Args:
        recursive: feed the model's one-step output back `horizon` times (univariate series only).
        units: the target's scaling, transform and observation noise (added when `options.noise`).
        actual: (n, H) true values in series units (NaN where unknown) for the CRPS of each forecast.
        keys: (n,) an identity per window for its noise draws (default 0..n-1), e.g. its first target's index.
        on_batch: called with the number of windows finished after each batch (a progress bar's update).
    """
    if recursive and x.shape[1] != 1:
        raise ConfigError(f"recursive forecasts feed the forecast back as the next input, so they need a univariate "
                          f"series; this one has {x.shape[1]} columns: use multistep='direct'.")
    model.eval()
    o, u = options, units
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    forward = _forward(model, horizon, recursive)
    out = Forecast(u.values(forward(xt).numpy() * u.std + u.mean))
    if not o.passes:
        return out
    mc, keys = MCDropout(model, o.passes, o.seed), np.arange(len(x)) if keys is None else np.asarray(keys)
    noise_std = u.noise_std if o.noise else None
    parts = {k: [] for k in SUMMARIES}
    for start in range(0, len(xt), o.batch_size):
        rows = slice(start, start + o.batch_size)
        s = mc.sample(xt[rows], forward).numpy() * u.std + u.mean       # (T, c, H) on the transformed scale
        _summarise(u.values(s), u.values(_with_noise(s, noise_std, o.seed, keys[rows])), parts,
                   None if actual is None else actual[rows], o.keep_samples)
        if on_batch:
            on_batch(len(s[0]))
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
def stateful_forecast(model: nn.Module, series: np.ndarray, steps: np.ndarray, horizon: int,
                      options: ForecastOptions = ForecastOptions(), *, units: Units = Units(),
                      actual: np.ndarray | None = None, chunk: int = 10) -> Forecast:
    """Forecasts of a stateful recurrent model made at `steps` of one scaled series (1, D, L).

    The model runs once over the whole series from its first step (each MC pass with its own masks, one per
    pass for the whole series), and the forecast made at step t is its output there: it has seen the entire
    history up to t. Passes run `chunk` at a time; the (T, n, H) samples are kept until summarised.
    Arguments as for `mc_forecast`.
    """
    model.eval()
    o, u = options, units
    xt = torch.from_numpy(np.ascontiguousarray(series, dtype=np.float32))
    steps = np.asarray(steps)
    forward = lambda x: model.steps(x)[0][:, torch.as_tensor(steps), :horizon]  # noqa: E731  (rows, n, H)
    out = Forecast(u.values(forward(xt)[0].numpy() * u.std + u.mean))
    if not o.passes:
        return out
    s = MCDropout(model, o.passes, o.seed).sample(xt, forward, block=chunk)[:, 0].numpy() * u.std + u.mean
    parts = {k: [] for k in SUMMARIES}
    noise_std = u.noise_std if o.noise else None
    _summarise(u.values(s), u.values(_with_noise(s, noise_std, o.seed, steps + 1)), parts, actual, o.keep_samples)
    return _filled(out, parts)
