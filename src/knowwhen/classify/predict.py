"""Predictions of a saved run on any dataset or array, streamed batch by batch, with MC dropout."""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from ..data import ImageDataset
from ..data.prefetch import prefetched
from ..data.quality import quality_measures
from ..errors import DataError
from ..evaluation.calibration import softmax
from ..precision import autocast
from ..uncertainty import MCDropout, MCSums, mc_engine, measures_from_sums
from ..uncertainty.features import feature_tap
from ..uncertainty.fusion import FUSED, fused_novelty
from ..uncertainty.mc import padded_chunks
from .classes import run_class_names
from .run import Run


@dataclass
class PredictionBatch:
    """One batch of predictions.

    Attributes:
        indices: (n,) positions in the dataset.
        ids: where each image came from (file path or `name:index`).
        labels: the true class name of each image, spelled as the run spells it where it matches one of its
            classes (see `knowwhen.classify.classes`), or "" where unknown.
        probs: (n, K) deterministic softmax probabilities (dropout off, temperature applied).
        logits: (n, K) deterministic logits (no temperature).
        measures: per-image arrays: `p_max`, `pred`, and with MC dropout `p_max_mc`, `pred_mc`, `sigma_mc`,
            `entropy_mc`, `mutual_info_mc`, `variation_ratio_mc`, `probs_mc` (n, K); when the run has feature
            statistics `energy`, `mahalanobis`, `rel_mahalanobis`, `gauss_density`, `knn`, and with validation
            reference scores the fused `novelty`.
        passes: (T, n, K) every MC pass, only when asked for (`keep_passes`).
    """

    indices: np.ndarray
    ids: list[str]
    labels: list[str]
    probs: np.ndarray
    logits: np.ndarray | None = None
    measures: dict = field(default_factory=dict)
    passes: np.ndarray | None = None

    @property
    def output_probs(self) -> np.ndarray:
        """p* (the MC mean) when MC dropout ran, else the deterministic softmax."""
        return self.measures.get("probs_mc", self.probs)


def check_compatible(run: Run, ds: ImageDataset) -> None:
    """Raises DataError when `ds` images do not have the shape or the named channels (in order) of the run."""
    if tuple(ds.shape) != tuple(run.input_shape):
        raise DataError(f"{ds.path}: images are {ds.shape} (C, H, W) but run {run.path} was trained on "
                        f"{tuple(run.input_shape)}; give images of that size and channel count.")
    if run.channel_names and ds.channel_names and tuple(ds.channel_names) != tuple(run.channel_names):
        raise DataError(f"{ds.path}: channels {', '.join(ds.channel_names)} but run {run.path} was trained on "
                        f"{', '.join(run.channel_names)} in that order; take them in the run's order with "
                        "ds.in_channel_order(run.channel_names) (the command line does it by name).")


def applied_temperature(run: Run, use_temperature: bool) -> float:
    """The temperature that divides the logits: the run's fitted one, or 1.0 when it is not to be used."""
    return run.temperature if use_temperature else 1.0


def applied_mc_temperature(run: Run, use_temperature: bool) -> float:
    """The temperature that divides every MC pass's logits: the run's MC temperature when it has one, else the
    softmax's (`applied_temperature`); 1.0 when temperatures are not to be used."""
    if use_temperature and run.mc_temperature is not None:
        return run.mc_temperature
    return applied_temperature(run, use_temperature)


@torch.no_grad()
def predict_proba(run: Run, images: np.ndarray, batch_size: int = 512, use_temperature: bool = True) -> np.ndarray:
    """(n, K) softmax probabilities for raw images (n, C, H, W), with dropout off.

    The run's fitted temperature (if any) divides the logits first; `use_temperature=False` skips it.

    Example:
        >>> probs = predict_proba(load_run("runs/digits"), images)  # doctest: +SKIP
    """
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1:] != tuple(run.input_shape):
        raise DataError(f"images are {images.shape[1:]} but run {run.path} expects {tuple(run.input_shape)}.")
    run.model.eval()
    t = applied_temperature(run, use_temperature)
    out = [torch.softmax(run.model(block)[:n] / t, dim=1).numpy()
           for i in range(0, len(images), batch_size)
           for block, n in padded_chunks(run.preprocess(images[i:i + batch_size]))]
    return np.concatenate(out) if out else np.empty((0, len(run.class_names)), np.float32)


def predict(run: Run, images: np.ndarray) -> np.ndarray:
    """(n,) predicted class names for raw images (n, C, H, W)."""
    return np.asarray(run.class_names)[predict_proba(run, images).argmax(axis=1)]


def run_engine(run: Run, mc: int | None, seed: int = 0, use_temperature: bool = True,
               engine: str = "auto") -> MCDropout | None:
    """The sampling engine that `predict_dataset` runs for `run`: `mc` MC-dropout passes (e.g. 100) under the
    masks of `seed`, each pass's logits divided by the run's MC temperature (`applied_mc_temperature`); None
    without `mc` for a single network. A deep ensemble's engine samples every pass of every member (with no
    `mc`, its M members' outputs). `engine`: the MC engine's implementation (`knowwhen.uncertainty.mc`)."""
    return mc_engine(run.model, mc, seed, engine, temperature=applied_mc_temperature(run, use_temperature))


def predict_dataset(run: Run, ds: ImageDataset, engine: MCDropout | None = None, *, batch_size: int = 512,
                    progress: bool = True, use_temperature: bool = True, keep_passes: bool = False,
                    device: str | torch.device = "cpu", part: tuple[int, int] | None = None, quality: bool = False,
                    precision: str = "fp32", prefetch: int = 2) -> Iterator[PredictionBatch]:
    """Yields PredictionBatch for every image of `ds`, in order; memory stays one batch.

    Args:
        engine: the sampling engine, from `run_engine(run, mc, seed)` (its masks and MC temperature come with
            it, so one engine serves many calls); None: the deterministic prediction only.
        batch_size: images read at once; an image's numbers do not depend on it.
        use_temperature: divide logits by the run's fitted temperature (when it has one); the engine must have
            been built with the same choice.
        keep_passes: also return every pass (T, n, K): for small sets only.
        device: where the model runs (e.g. "cuda:0"); results come back as NumPy arrays.
        part: (k, n) when `ds` is part k of n of a larger prediction: the progress bar says so.
        quality: add the image-quality measures of the raw images (`knowwhen.data.quality`) to the measures.
        precision: "fp32", or "bf16" for the network's layers (`knowwhen.precision`; resolve "auto" with
            `resolved_precision` first); the measures and feature statistics stay fp32.
        prefetch: batches read ahead in a thread while the network runs (`knowwhen.data.prefetch`); 0: none.

    Example:
        >>> batches = predict_dataset(run, ds, run_engine(run, mc=100, seed=0))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    check_compatible(run, ds)
    run.model.to(device)
    t = applied_temperature(run, use_temperature)
    engine_ = _checked_engine(run, engine, use_temperature)
    names = np.asarray(run_class_names(ds.class_names, run.class_names) + [""])  # label -1 (unknown) picks ""
    desc = f"predicting ({'samples' if run.members > 1 else 'MC'} x{engine_.passes})" if engine_ else "predicting"
    desc += f", part {part[0]} of {part[1]}" if part else ""
    bar = tqdm(total=len(ds), unit="img", desc=desc, disable=not progress,
               file=sys.stderr, leave=False)
    with bar:
        for idx, images in prefetched(ds.batches(np.arange(len(ds)), batch_size), prefetch):
            x = run.preprocess(images).to(device)
            batch = PredictionBatch(idx, [ds.item_id(i) for i in idx], names[ds.labels[idx]].tolist(), None)
            with autocast(precision, device):
                _merge(batch, [_chunk(run, engine_, xb, n, keep_passes, t) for xb, n in padded_chunks(x)])
            batch.probs = softmax(batch.logits / t)
            batch.measures.update(p_max=batch.probs.max(1), pred=batch.probs.argmax(1))
            if quality:
                batch.measures.update(quality_measures(images, ds.channel_names))
            if run.reference is not None:
                batch.measures[FUSED] = fused_novelty(run.reference, batch.measures)
            yield batch
            bar.update(len(idx))


def _checked_engine(run: Run, engine, use_temperature: bool) -> MCDropout | None:
    """`engine`, refused when it is not one (a pass count) or divides by another temperature than the run's."""
    if engine is not None and not isinstance(engine, MCDropout):
        raise TypeError(f"predict_dataset takes a sampling engine, not {engine!r}: build it with "
                        "run_engine(run, mc, seed), which also carries the seed of the masks.")
    want = applied_mc_temperature(run, use_temperature)
    if engine is not None and abs(engine.temperature - want) > 1e-12:
        raise ValueError(f"the engine divides the passes by temperature {engine.temperature:g}, the run's MC "
                         f"temperature here is {want:g}: build it with run_engine(run, mc, seed, "
                         f"use_temperature={use_temperature}).")
    return engine


MC_AT_SOFTMAX_T = "log_probs_mc_softmax_t"  # the MC mean's log-probabilities with the passes at the softmax's T


def _chunk(run: Run, engine_: MCDropout | None, x: torch.Tensor, n: int, keep_passes: bool, t: float) -> dict:
    """The logits, MC measures (and passes when kept) and feature scores of one padded block, cut to its n real
    rows. When the passes use their own MC temperature, the MC mean with the passes at the softmax's temperature
    `t` is kept too (for the `mc_mean_softmax_temperature` calibration block)."""
    with feature_tap(run.model) if run.features is not None else contextlib.nullcontext({}) as tap:
        if engine_ is None:
            run.model.eval()
            with torch.no_grad():
                logits, z = run.model(x), None
        else:
            logits, z = engine_.pass_logits(x)
    # In bf16 (autocast) the layers' outputs are bf16: everything after them is computed in fp32.
    logits, z = logits.float(), None if z is None else z.float()
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _scored(run, engine_, logits, z, tap, n, keep_passes, t)


def _scored(run: Run, engine_, logits: torch.Tensor, z, tap: dict, n: int, keep_passes: bool, t: float) -> dict:
    out = {"logits": logits.cpu().numpy(), "measures": {}, "passes": None}
    if z is not None:
        log_passes = torch.log_softmax(z / engine_.temperature, dim=-1).cpu().numpy()
        passes = np.exp(log_passes)
        out["measures"] = measures_from_sums(MCSums.zeros(*out["logits"].shape).add(passes, log_passes))
        out["passes"] = passes[:, :n] if keep_passes else None
        if abs(engine_.temperature - t) > 1e-12:
            log_p = torch.log_softmax(z / t, dim=-1)
            out["measures"][MC_AT_SOFTMAX_T] = (torch.logsumexp(log_p, 0) - np.log(len(log_p))).cpu().numpy()
    if run.features is not None:
        out["measures"].update(run.features.scores(tap["features"].float().cpu().numpy(), out["logits"]))
    out["logits"] = out["logits"][:n]
    out["measures"] = {k: v[:n] for k, v in out["measures"].items()}
    return out


def _merge(batch: PredictionBatch, chunks: list[dict]) -> None:
    """Fills the batch's logits, measures and passes from its blocks, in order."""
    batch.logits = np.concatenate([c["logits"] for c in chunks])
    batch.measures = {k: np.concatenate([c["measures"][k] for c in chunks]) for k in chunks[0]["measures"]}
    batch.passes = np.concatenate([c["passes"] for c in chunks], axis=1) if chunks[0]["passes"] is not None else None
