"""Predictions of a saved run on any dataset or array, streamed batch by batch, with MC dropout."""
from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .atomic import atomic_path, write_text_atomic
from .checkpoint import Run
from .data import ImageDataset
from .errors import ConfigError, DataError
from .evaluation.calibration import softmax
from .uncertainty import MCDropout, MCSums, measures_from_sums

log = logging.getLogger("knowwhen")
MC_COLUMNS = ("pred_mc", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc")


@dataclass
class PredictionBatch:
    """One batch of predictions.

    Attributes:
        indices: (n,) positions in the dataset.
        ids: where each image came from (file path or `name:index`).
        labels: the true class name of each image, or "" where unknown.
        probs: (n, K) deterministic softmax probabilities (dropout off, temperature applied).
        logits: (n, K) deterministic logits (no temperature).
        measures: per-image arrays: `p_max`, `pred`, and with MC dropout `p_max_mc`, `pred_mc`, `sigma_mc`,
            `entropy_mc`, `mutual_info_mc`, `variation_ratio_mc`, `probs_mc` (n, K).
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
    """Raises DataError when `ds` images do not have the shape the run was trained on."""
    if tuple(ds.shape) != tuple(run.input_shape):
        raise DataError(f"{ds.path}: images are {ds.shape} (C, H, W) but run {run.path} was trained on "
                        f"{tuple(run.input_shape)}; give images of that size and channel count.")


def _temperature(run: Run, use_temperature: bool) -> float:
    return run.temperature if use_temperature else 1.0


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
    t = _temperature(run, use_temperature)
    out = [torch.softmax(run.model(run.preprocess(images[i:i + batch_size])) / t, dim=1).numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.empty((0, len(run.class_names)), np.float32)


def predict(run: Run, images: np.ndarray) -> np.ndarray:
    """(n,) predicted class names for raw images (n, C, H, W)."""
    return np.asarray(run.class_names)[predict_proba(run, images).argmax(axis=1)]


def predict_dataset(run: Run, ds: ImageDataset, batch_size: int = 512, progress: bool = True,
                    mc: int | MCDropout | None = None, seed: int = 0, use_temperature: bool = True,
                    keep_passes: bool = False, engine: str = "auto",
                    device: str | torch.device = "cpu") -> Iterator[PredictionBatch]:
    """Yields PredictionBatch for every image of `ds`, in order; memory stays one batch.

    Args:
        mc: number of MC-dropout passes T (e.g. 100), or an MCDropout built for `run.model` (its masks are
            then reused); None gives the deterministic prediction only.
        seed: seed of the dropout masks; with it, an image's numbers do not depend on `batch_size`.
        use_temperature: divide logits by the run's fitted temperature (when it has one).
        keep_passes: also return every pass (T, n, K): for small sets only.
        device: where the model runs (e.g. "cuda:0"); results come back as NumPy arrays.
    """
    from tqdm.auto import tqdm

    check_compatible(run, ds)
    run.model.to(device)
    t = _temperature(run, use_temperature)
    engine_ = mc if isinstance(mc, MCDropout) else MCDropout(run.model, mc, seed, engine, temperature=t) if mc else None
    names = np.asarray(ds.class_names + ("",))  # label -1 (unknown) picks ""
    desc = f"predicting (MC x{engine_.passes})" if engine_ else "predicting"
    bar = tqdm(total=len(ds), unit="img", desc=desc, disable=not progress,
               file=sys.stderr, leave=False)
    with bar:
        for idx, images in ds.batches(np.arange(len(ds)), batch_size):
            x = run.preprocess(images).to(device)
            batch = PredictionBatch(idx, [ds.item_id(i) for i in idx], names[ds.labels[idx]].tolist(), None)
            if engine_ is None:
                run.model.eval()
                with torch.no_grad():
                    batch.logits = run.model(x).cpu().numpy()
            else:
                logits, passes = engine_.predict(x)
                batch.logits, passes = logits.cpu().numpy(), passes.cpu().numpy()
                batch.measures = measures_from_sums(MCSums.zeros(*batch.logits.shape).add(passes))
                batch.passes = passes if keep_passes else None
            batch.probs = softmax(batch.logits / t)
            batch.measures.update(p_max=batch.probs.max(1), pred=batch.probs.argmax(1))
            yield batch
            bar.update(len(idx))


def _header(run: Run, ds: ImageDataset, mc: bool) -> list[str]:
    header = ["id"] + (["label"] if (ds.labels >= 0).any() else []) + ["pred", "p_max"]
    return header + (list(MC_COLUMNS) if mc else []) + [f"prob_{c}" for c in run.class_names]


def _manifest(run: Run, ds: ImageDataset, header, part_size: int, mc, seed, use_temperature) -> dict:
    return {"run": str(Path(run.path).resolve()), "data": str(ds.path), "images": len(ds), "part_size": part_size,
            "mc": mc, "seed": seed, "temperature": _temperature(run, use_temperature), "header": header}


def _parts_dir(run: Run, ds: ImageDataset, out: Path, manifest: dict) -> Path:
    """The folder of part files beside `out`; refuses one left by a different command."""
    import json

    parts = out.with_name(f".{out.name}.parts")
    saved = parts / "manifest.json"
    if saved.exists():
        previous = json.loads(saved.read_text(encoding="utf-8"))
        if previous != manifest:
            changed = sorted(k for k in manifest if previous.get(k) != manifest[k])
            raise ConfigError(f"{parts}: parts of an earlier, different prediction ({', '.join(changed)} differ); "
                              f"repeat that command to finish it, or delete {parts} to start over.")
    else:
        parts.mkdir(parents=True, exist_ok=True)
        write_text_atomic(saved, json.dumps(manifest, indent=1))
    return parts


def write_predictions(run: Run, ds: ImageDataset, out: str | Path, batch_size: int = 512, progress: bool = True,
                      mc: int | None = None, seed: int = 0, use_temperature: bool = True,
                      passes_out: str | Path | None = None, part_size: int = 100_000,
                      shard: tuple[int, int] = (0, 1), barrier=None, device: str | torch.device = "cpu") -> Path:
    """Writes one row per image (CSV, or Parquet for a .parquet `out`): id, label (when known), pred, p_max,
    the MC measures, prob_<class>.

    With `mc`, `prob_<class>` is the MC mean p*; without, the deterministic softmax. Images are predicted in
    parts of `part_size`, each written atomically to a folder beside `out`; run again after a crash, the
    same command skips the finished parts. When all parts exist they are merged, in input order, into `out`.
    `shard=(rank, world)` makes this process predict parts rank, rank + world, ...; `barrier` (e.g.
    torch.distributed.barrier) waits for the other ranks, then rank 0 merges once every part exists.
    `passes_out` (.npy) also saves every pass (T, N, K): for small sets.
    """
    from .tables import merge_parts, write_part

    if passes_out is not None and not mc:
        raise ConfigError("saving every pass needs MC dropout: add --mc T (e.g. --mc 100).")
    if passes_out is not None and len(ds) > part_size:
        raise ConfigError(f"--save-passes keeps every pass in memory: use it on at most {part_size} images.")
    out, (rank, world) = Path(out), shard
    check_compatible(run, ds)
    header = _header(run, ds, bool(mc))
    parts_dir = _parts_dir(run, ds, out, _manifest(run, ds, header, part_size, mc, seed, use_temperature))
    suffix = ".parquet" if out.suffix.lower() == ".parquet" else ".csv"
    parts = [parts_dir / f"part-{k:06d}{suffix}" for k in range(-(-len(ds) // part_size))]
    mine = [k for k in range(len(parts)) if k % world == rank]
    done = [k for k in mine if parts[k].exists()]
    if done:
        log.info("%s: %d of %d parts already written; skipping %d images", out, len(done), len(mine),
                 sum(min(part_size, len(ds) - k * part_size) for k in done))
    classes, passes = np.asarray(run.class_names), []
    engine_ = MCDropout(run.model, mc, seed, temperature=_temperature(run, use_temperature)) if mc else None
    for k in mine:
        if parts[k].exists():
            continue
        sub = ds.subset(np.arange(k * part_size, min(len(ds), (k + 1) * part_size)))
        batches = predict_dataset(run, sub, batch_size, progress, engine_, seed, use_temperature,
                                  passes_out is not None, device=device)
        write_part(parts[k], _columns(batches, header, classes, passes), header)
    if barrier is not None:
        barrier()
    if rank == 0 and all(p.exists() for p in parts):
        merge_parts(parts, out, header)
        shutil.rmtree(parts_dir)
    if passes:
        with atomic_path(passes_out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.concatenate(passes, axis=1).astype(np.float32))
    return out


def _columns(batches, header: list[str], classes: np.ndarray, passes: list):
    """Each batch's table columns; every pass kept aside when the batches carry them."""
    from .tables import batch_columns

    for b in batches:
        if b.passes is not None:
            passes.append(b.passes)
        yield batch_columns(b, header, classes)
