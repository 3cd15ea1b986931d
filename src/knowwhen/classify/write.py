"""write_predictions: one row per image to CSV or Parquet, in resumable parts, shared among ranks."""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, check_output_file, write_text_atomic
from ..config import check_counts
from ..data import ImageDataset
from ..data.quality import quality_columns
from ..distributed import Ranks
from ..errors import ConfigError
from ..precision import check_precision, resolved_precision
from ..tables import TEXT_COLUMNS, merge_parts, write_part
from ..uncertainty.measures import FEATURE_SCORES
from .sets import SET_COLUMNS, ConformalOptions, run_sets, set_strings, with_sets
from .predict import applied_mc_temperature, applied_temperature, check_compatible, predict_dataset, run_engine
from .run import Run

log = logging.getLogger("knowwhen")
MC_COLUMNS = ("pred_mc", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc")


@dataclass(frozen=True, kw_only=True)
class PredictOptions:
    """How `write_predictions` predicts.

    Attributes:
        mc: MC-dropout passes per image (e.g. 100); None: the deterministic prediction only (for a deep
            ensemble: its M members' outputs are the samples of the MC columns).
        seed: seed of the dropout masks; an image's numbers do not depend on `batch_size` (blocks of ROWS).
        use_temperature: divide the logits by the run's fitted temperature.
        batch_size: images read at once (the network runs on blocks of `knowwhen.uncertainty.mc.ROWS`).
        part_size: images per part file (the unit of resuming and of sharing among ranks).
        progress: show a progress bar.
        passes_out: also save every MC pass (T, N, K) to this .npy (small sets).
        conformal: add each image's conformal prediction set (columns set, set_size, set_flag).
        quality: add the image-quality columns qc_* of the raw images (`knowwhen.data.quality`).
        precision: fp32, bf16 or auto (bf16 where the hardware has it natively) for the network's layers
            (`knowwhen.precision`); the measures stay fp32.
        prefetch: batches decoded ahead in a thread while the network runs; 0 reads in turn.
    """

    mc: int | None = None
    seed: int = 0
    use_temperature: bool = True
    batch_size: int = 512
    part_size: int = 100_000
    progress: bool = True
    passes_out: str | Path | None = None
    conformal: ConformalOptions | None = None
    quality: bool = False
    precision: str = "fp32"
    prefetch: int = 2

    def __post_init__(self):
        check_counts(mc=self.mc or 0, batch_size=self.batch_size, part_size=self.part_size)
        check_precision(self.precision)


def prediction_header(run: Run, ds: ImageDataset, mc: bool, sets: bool = False, quality: bool = False) -> list[str]:
    """The columns of a predictions table: id, label (when any is known), pred, p_max, [MC measures], [feature
    scores], [novelty], [set, set_size, set_flag], [qc_*], prob_<class>."""
    header = ["id"] + (["label"] if (ds.labels >= 0).any() else []) + ["pred", "p_max"]
    header += list(MC_COLUMNS) if mc else []
    header += list(FEATURE_SCORES) if run.features is not None else []
    header += ["novelty"] if run.reference is not None else []
    header += list(SET_COLUMNS) if sets else []
    header += quality_columns(ds.channel_names, ds.shape[0]) if quality else []
    return header + [f"prob_{c}" for c in run.class_names]


def batch_columns(batch, header: list[str], classes: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of `header` for one PredictionBatch."""
    m, probs = batch.measures, batch.output_probs
    cols = {"id": np.asarray(batch.ids, dtype=str), "label": np.asarray(batch.labels, dtype=str)}
    cols["pred"] = classes[m["pred"]]
    if "pred_mc" in m:
        cols["pred_mc"] = classes[m["pred_mc"]]
    if "sets" in m:
        cols["set"] = set_strings(m["sets"], classes)
    cols.update({k: np.asarray(v, dtype=np.float64) for k, v in m.items() if k in header and k not in TEXT_COLUMNS})
    cols.update({f"prob_{c}": probs[:, k].astype(np.float64) for k, c in enumerate(classes)})
    return {h: cols[h] for h in header}


def _manifest(run: Run, ds: ImageDataset, header, o: PredictOptions) -> dict:
    return {"run": str(Path(run.path).resolve()), "data": str(ds.path), "images": len(ds), "part_size": o.part_size,
            "mc": o.mc, "seed": o.seed, "temperature": applied_temperature(run, o.use_temperature),
            "mc_temperature": applied_mc_temperature(run, o.use_temperature), "header": header,
            "conformal": asdict(o.conformal) if o.conformal else None}


def _parts_dir(out: Path, manifest: dict) -> Path:
    """The folder of part files beside `out`; refuses one left by a different command."""
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


def _check_options(run: Run, ds: ImageDataset, o: PredictOptions) -> None:
    if o.passes_out is not None and not run.samples(o.mc):
        raise ConfigError("saving every pass needs MC dropout: add --mc T (e.g. --mc 100).")
    if o.passes_out is not None and len(ds) > o.part_size:
        raise ConfigError(f"--save-passes keeps every pass in memory: use it on at most {o.part_size} images.")


def write_predictions(run: Run, ds: ImageDataset, out: str | Path, options: PredictOptions = PredictOptions(),
                      ranks: Ranks = Ranks()) -> Path:
    """Writes one row per image (CSV, or Parquet for a .parquet `out`): id, label (when known), pred, p_max,
    the MC measures, the conformal set (with `options.conformal`), prob_<class>.

    With `options.mc`, `prob_<class>` is the MC mean p*; without, the deterministic softmax. Images are predicted
    in parts of `options.part_size`, each written atomically to a folder beside `out`; run again after a crash,
    the same call skips the finished parts. When all parts exist they are merged, in input order, into `out`.
    With several `ranks` (see `knowwhen.distributed.launch_or_join`), each process predicts its share of the
    parts on its device, all wait, and rank 0 merges.

    Example:
        >>> write_predictions(run, ds, "predictions.parquet", PredictOptions(mc=100))  # doctest: +SKIP
    """
    o, out = options, Path(out)
    check_output_file(out, "--out")
    _check_options(run, ds, o)
    check_compatible(run, ds)
    header = prediction_header(run, ds, run.samples(o.mc) > 0, o.conformal is not None, o.quality)
    precision = resolved_precision(o.precision, ranks.device)
    sets = run_sets(run, o.conformal, o.mc, o.seed, o.use_temperature) if o.conformal else None
    parts_dir = _parts_dir(out, {**_manifest(run, ds, header, o),
                                 **({"precision": precision} if precision != "fp32" else {})})
    suffix = ".parquet" if out.suffix.lower() == ".parquet" else ".csv"
    parts = [parts_dir / f"part-{k:06d}{suffix}" for k in range(-(-len(ds) // o.part_size))]
    mine = ranks.share(len(parts))
    done = [k for k in mine if parts[k].exists()]
    if done:
        log.info("resuming: %d of %d parts were written before the last run stopped; skipping their %d images",
                 len(done), len(mine),
                 sum(min(o.part_size, len(ds) - k * o.part_size) for k in done))
    classes, passes = np.asarray(run.class_names), []
    engine = run_engine(run, o.mc, o.seed, o.use_temperature)
    for k in mine:
        if parts[k].exists():
            continue
        sub = ds.subset(np.arange(k * o.part_size, min(len(ds), (k + 1) * o.part_size)))
        batches = predict_dataset(run, sub, engine, batch_size=o.batch_size, progress=o.progress,
                                  use_temperature=o.use_temperature, keep_passes=o.passes_out is not None,
                                  device=ranks.device,
                                  part=(k + 1, len(parts)) if len(parts) > 1 else None, quality=o.quality,
                                  precision=precision, prefetch=o.prefetch)
        write_part(parts[k], _columns(with_sets(batches, sets), header, classes, passes), header)
    ranks.wait()
    if ranks.lead and all(p.exists() for p in parts):
        merge_parts(parts, out, header)
        shutil.rmtree(parts_dir)
    if passes:
        with atomic_path(o.passes_out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.concatenate(passes, axis=1).astype(np.float32))
    return out


def _columns(batches, header: list[str], classes: np.ndarray, passes: list):
    """Each batch's table columns; every pass kept aside when the batches carry them."""
    for b in batches:
        if b.passes is not None:
            passes.append(b.passes)
        yield batch_columns(b, header, classes)
