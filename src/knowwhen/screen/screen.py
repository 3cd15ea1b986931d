"""screen_run: predict every cell of a screen, flag the novel ones, and summarise wells and plates.

Phase 1 is `write_predictions` (streamed, resumable after a kill, shared among processes); phase 2 reads that
table back in batches: it sets each plate's threshold, writes cells.parquet (or .csv) with every metadata
column and the `novel` flag, and sums wells and plates. Memory grows with the wells, not the cells.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import check_output_dir, write_text_atomic
from ..config import check_counts
from ..classify.predict import check_compatible
from ..classify.run import Run
from ..classify.write import PredictOptions, write_predictions
from ..data import ImageDataset
from ..data.fields import PADDED
from ..distributed import Ranks
from ..errors import ConfigError
from ..precision import check_precision
from ..tables import TableWriter, read_batches, write_rows_csv
from ..uncertainty.conformal import conformal_quantile
from ..uncertainty.measures import SCORED_MEASURES, uncertainty_scores
from .metadata import (PLATE, WELL, canonical_well, check_group_column, control_mask, split_key, well_keys,
                       well_names)
from .picks import WellPicks
from .power import plate_power
from .qc import WellQC, qc_flags
from .treatments import treatment_table
from .wells import HIT_COLUMNS, WellSums, plate_table, well_table

log = logging.getLogger("knowwhen")
PICKS = "picks.json"  # per well, its most novel and most confident cells (for the review page)
PREDICTIONS = ".predictions.parquet"  # every cell's predictions, kept for recounting with other settings


@dataclass(frozen=True, kw_only=True)
class ScreenOptions:
    """How `screen_run` screens.

    Attributes:
        mc: MC-dropout passes per cell (the MC measures; 0 for none).
        score: the novelty score that flags cells (oriented higher = more novel); None: `novelty` (the fused
            score) when the run has it, else `mutual_info_mc` with MC, else `p_max`.
        fpr: the fraction of known cells the threshold flags: the threshold is the finite-sample (1 - fpr)
            quantile of the score on known cells (each plate's control cells, else the run's validation images).
        fdr: wells with a Benjamini-Hochberg q-value below this are hits.
        hit_test: the test whose q-value calls hits: `betabinom` (the well's novel count against its plate's
            control wells, their well-to-well spread included; without control wells, the binomial), `wellrank`
            (the well's AUC against its control wells' AUCs and their spread), `binomial`
            (the well's novel fraction against `fpr`, cells as independent) or `rank` (the well's scores against the
            reference scores, Mann-Whitney); wells.csv has all four. The default was chosen on
            benchmarks/screen_realistic.py (docs/screens.md).
        controls: control cells, COLUMN=VALUE or wells A01,B01,...; None: thresholds from validation.
        plate_column, well_column: the metadata columns naming plate and well.
        cells_format: `parquet` or `csv` for the per-cell table.
        qc: measure every cell's image quality in the prediction pass (`knowwhen.data.quality`) and flag wells
            outside the control wells' range (`knowwhen.screen.qc`); hits there are artefact suspects.
        group_by: a metadata column (one value per well, e.g. Metadata_Compound): treatments.csv tests each of
            its values on its replicate wells (`knowwhen.screen.treatments`).
        precision: fp32, bf16 or auto for the network's layers (`knowwhen.precision`).
        prefetch: batches of images decoded ahead in a thread while the network runs (0: none).
    """

    mc: int = 100
    seed: int = 0
    score: str | None = None
    fpr: float = 0.05
    fdr: float = 0.05
    controls: str | None = None
    plate_column: str = PLATE
    well_column: str = WELL
    cells_format: str = "parquet"
    batch_size: int = 512
    part_size: int = 100_000
    progress: bool = True
    hit_test: str = "betabinom"
    qc: bool = True
    group_by: str | None = None
    precision: str = "fp32"
    prefetch: int = 2

    def __post_init__(self):
        check_counts(mc=self.mc, batch_size=self.batch_size, part_size=self.part_size)
        for name in ("fpr", "fdr"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"--{name} {getattr(self, name)}: use a fraction in (0, 1), e.g. 0.05.")
        if self.hit_test not in HIT_COLUMNS:
            raise ConfigError(f"--hit-test {self.hit_test!r}: use one of {', '.join(HIT_COLUMNS)}.")
        if self.cells_format not in ("parquet", "csv"):
            raise ConfigError(f"--cells-format {self.cells_format!r}: use parquet or csv.")
        check_precision(self.precision)


def chosen_score(run: Run, o: ScreenOptions) -> str:
    """The score that flags novel cells (see ScreenOptions.score)."""
    score = o.score or ("novelty" if run.reference is not None else "mutual_info_mc" if run.samples(o.mc) else "p_max")
    if score not in SCORED_MEASURES or score == "set_size":
        raise ConfigError(f"--score {score!r}: use one of {', '.join(m for m in SCORED_MEASURES if m != 'set_size')}.")
    if score.endswith("_mc") and not run.samples(o.mc):
        raise ConfigError(f"--score {score} is an MC measure: add --mc 100.")
    return score


def screen_run(run: Run, ds: ImageDataset, metadata: dict[str, np.ndarray], out: str | Path,
               options: ScreenOptions = ScreenOptions(), ranks: Ranks = Ranks()) -> dict | None:
    """Screens `ds` (with `metadata`, one value per image, see `knowwhen.screen.metadata`) and writes to `out`:
    cells.parquet, wells.csv, plates.csv, screen.json and picks.json (what the review page shows; build it with
    `knowwhen.report.screen.build_screen_report`); returns screen.json's content (None on ranks other
    than 0). Killed, the same call resumes from the last finished part of the predictions.

    Example:
        >>> ds = open_dataset("plate1/manifest.csv")  # doctest: +SKIP
        >>> screen_run(load_run("runs/deeploc"), ds, screen_metadata("plate1/manifest.csv", ds), "screen/")
    """
    o, out = options, Path(out)
    check_output_dir(out, "--out")
    check_compatible(run, ds)
    score = chosen_score(run, o)
    _warn_mc_mismatch(run, score, o)
    names, layout = well_names(metadata[o.well_column], f"{ds.path}: {o.well_column}")
    metadata = {**metadata, o.well_column: names}
    control = control_mask(metadata, o.controls, o.well_column, str(ds.path))
    if o.group_by:
        check_group_column(metadata, o.group_by, o.plate_column, o.well_column, str(ds.path))
    predictions = _predict_once(run, ds, out, o, ranks)
    if not ranks.lead:
        return None
    thresholds = _thresholds(run, predictions, score, metadata[o.plate_column], control, o)
    for plate, t in thresholds.items():
        log.info("plate %s: novel = %s above %.4g (%s)", plate if plate is not None else "(all)", score,
                 t["threshold"], t["source"])
    wells, nulls = _cells_and_wells(run, predictions, metadata, control, score, thresholds, out, o)
    edges = _with_edges(wells, ds, metadata, o)
    plates = plate_table(wells, o.plate_column, thresholds, nulls)
    power = plate_power(wells, nulls, o.plate_column, o.fpr, o.fdr, o.hit_test)
    for p in plates:
        p["median_cells"], p["detectable_fraction"] = (power[p[o.plate_column]][k] for k in ("median_cells",
                                                                                            "detectable_fraction"))
        log.info("plate %s: %s", p[o.plate_column], power[p[o.plate_column]]["note"])
    treatments = (treatment_table(wells, nulls, o.group_by, o.plate_column, o.well_column, o.fdr)
                  if o.group_by else None)
    write_rows_csv(out / "wells.csv", wells)
    write_rows_csv(out / "plates.csv", plates)
    if treatments is not None:
        write_rows_csv(out / "treatments.csv", treatments)
    summary = {"run": str(run.path), "data": str(ds.path), "cells": int(len(ds)), "score": score, "fpr": o.fpr,
               "fdr": o.fdr, "hit_test": o.hit_test, "mc_passes": o.mc or None, "controls": o.controls,
               "plate_column": o.plate_column, "well_column": o.well_column, "group_by": o.group_by,
               "cells_format": o.cells_format,
               "plate_layout": dict(zip(("wells", "rows", "columns"), layout)),
               **({"fields": {"objects_beyond_field": edges}} if edges else {}),
               "wells": len(wells), "hits": int(sum(w["hit"] for w in wells)), "plates": plates,
               **({"treatments": len(treatments), "treatment_hits": int(sum(t["hit"] for t in treatments))}
                  if treatments is not None else {}),
               "convention": f"a cell is novel when its {score} (higher = more novel) exceeds its plate's threshold"}
    write_text_atomic(out / "screen.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _predict_once(run: Run, ds: ImageDataset, out: Path, o: ScreenOptions, ranks: Ranks) -> Path:
    """The per-cell predictions of the screen (out/.predictions.parquet), predicted unless a screen of the same
    run files, data, MC passes, seed and QC made them: they are kept, so that another --score, --fpr, --fdr,
    --hit-test, --controls or --group-by only recounts (delete the file to free its space)."""
    predictions, stamp = out / PREDICTIONS, out / ".predictions.json"
    settings = {"run": str(Path(run.path).resolve()), "run_files": run_fingerprint(run.path), "data": str(ds.path),
                "cells": len(ds), "mc": o.mc, "seed": o.seed, "qc": o.qc, **({"origin": ds.origin} if ds.origin else {}),
                **({"precision": o.precision} if o.precision != "fp32" else {})}
    if predictions.exists() and stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == settings:
        log.info("%s: its cells were predicted before with the same run, data, MC passes and seed; recounting "
                 "them without predicting again", out)
        return predictions
    stamp.unlink(missing_ok=True)  # phase 1; after a kill, write_predictions resumes from its last finished part
    write_predictions(run, ds, predictions, PredictOptions(mc=o.mc or None, seed=o.seed, batch_size=o.batch_size,
                                                           part_size=o.part_size, progress=o.progress,
                                                           quality=o.qc, precision=o.precision,
                                                           prefetch=o.prefetch), ranks)
    if ranks.lead:
        write_text_atomic(stamp, json.dumps(settings))
    return predictions


def run_fingerprint(run_dir) -> str:
    """SHA-256 over the files of a run that decide its predictions (weights, config, feature statistics, reference)."""
    import hashlib

    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "features.safetensors", "reference.safetensors"):
        path = Path(run_dir) / name
        h.update(name.encode() + (path.read_bytes() if path.exists() else b"-"))
    return h.hexdigest()


def _warn_mc_mismatch(run: Run, score: str, o: ScreenOptions) -> None:
    """Says when the flagging score mixes MC measures of another T than the run's validation reference."""
    ref_mc = run.info.get("reference", {}).get("mc_passes")
    if (score == "novelty" or score.endswith("_mc")) and (o.mc or None) != ref_mc:
        log.warning("the run's validation reference scores used %s and this screen uses %s: the MC measures' "
                    "p-values (and so %s) are off; screen with --mc %s, or refit the reference with `knowwhen "
                    "refit %s --parts reference --mc %s`.", _passes(ref_mc), _passes(o.mc), score, ref_mc or 0,
                    run.path, o.mc)


def _passes(mc: int | None) -> str:
    return f"{mc} MC passes" if mc else "no MC dropout"


def _thresholds(run: Run, predictions: Path, score: str, plates: np.ndarray, control: np.ndarray,
                o: ScreenOptions) -> dict:
    """{plate: {threshold, source, control_cells, ...}}: from each plate's control cells when there are controls
    (a plate without control cells uses the validation images), else one entry None from validation."""
    validation = _validation_threshold(run, score, o.fpr)
    if not control.any():
        return {None: validation}
    values = np.concatenate([uncertainty_scores(b, score) for b in read_batches(predictions, [score])])
    out = {}
    for plate in dict.fromkeys(plates.tolist()):
        mine = control & (plates == plate)
        if not mine.any():
            log.warning("plate %s has no control cells: its threshold comes from the run's validation images", plate)
            out[plate] = validation
            continue
        q = conformal_quantile(values[mine], o.fpr)
        out[plate] = {"threshold": q, "source": f"{int(mine.sum())} control cells of the plate",
                      "reference": np.sort(values[mine]),
                      "control_cells": int(mine.sum()), "control_novel_fraction": float((values[mine] > q).mean())}
    return out


def _validation_threshold(run: Run, score: str, fpr: float) -> dict:
    reference = run.reference or {}
    if score not in reference:
        raise ConfigError(f"run {run.path} has no validation scores of {score} to set the threshold with; run "
                          f"`knowwhen refit {run.path} --parts reference`, or give control cells with --controls.")
    ref = np.sort(np.asarray(reference[score], np.float64))
    return {"threshold": conformal_quantile(ref, fpr), "source": f"{len(ref)} validation images of the run",
            "reference": ref}


def _cells_and_wells(run: Run, predictions: Path, metadata: dict, control: np.ndarray, score: str, thresholds: dict,
                     out: Path, o: ScreenOptions) -> tuple[list[dict], dict]:
    """Streams the predictions: writes the per-cell table with metadata and `novel`; returns the well rows and
    each plate's null of the well test."""
    classes = np.asarray(run.class_names)
    index = {c: k for k, c in enumerate(run.class_names)}
    measures = tuple(m for m in SCORED_MEASURES if m != "set_size")
    sums, start, picks, qc = None, 0, WellPicks(), None
    plates = metadata[o.plate_column]
    with TableWriter(out / f"cells.{o.cells_format}") as writer:
        for batch in read_batches(predictions):
            n = len(batch["id"])
            rows = slice(start, start + n)
            meta = {k: v[rows] for k, v in metadata.items()}
            values = uncertainty_scores(batch, score)
            limit, below, ref_n = _against_reference(values, plates[rows], thresholds)
            novel = values > limit
            writer.write({**meta, **batch, "control": control[rows], "novel": novel})
            present = tuple(m for m in measures if m in batch)
            sums = sums or WellSums(len(classes), present)
            pred = np.array([index[p] for p in batch["pred_mc" if "pred_mc" in batch else "pred"]], np.int64)
            sums.add(plates[rows], meta[o.well_column], novel, pred, batch, meta, control[rows], below, ref_n)
            picks.add(plates[rows], meta[o.well_column], values, np.arange(start, start + n), classes[pred],
                      batch["id"])
            qc = qc or WellQC([c for c in batch if c.startswith("qc_")])
            qc.add(plates[rows], meta[o.well_column], np.arange(start, start + n), batch)
            start += n
    write_text_atomic(out / PICKS, json.dumps(picks.to_dict()))
    wells, nulls = well_table(sums, classes, o.fpr, o.fdr, o.plate_column, o.well_column, o.hit_test)
    return _with_qc(wells, qc, o), nulls


def _with_edges(wells: list[dict], ds: ImageDataset, metadata: dict, o: ScreenOptions) -> dict | None:
    """For cells cut from fields: each well's `edge_padded` (cells whose crop reached beyond the field, padded)
    and `edge_skipped` (objects left out by --edge skip) added to its row; the totals for screen.json."""
    if ds.metadata is None or PADDED not in metadata:
        return None
    keys = well_keys(metadata[o.plate_column], metadata[o.well_column])
    found, counts = np.unique(keys[np.asarray(metadata[PADDED], bool)], return_counts=True)
    padded = {split_key(k): int(n) for k, n in zip(found.tolist(), counts.tolist())}
    skipped = {(str(p), canonical_well(w, str(ds.path))): n for (p, w), n in ds.skipped_objects.items()}
    for w in wells:
        key = (w[o.plate_column], w[o.well_column])
        w["edge_padded"] = padded.get(key, 0)
        w["edge_skipped"] = int(skipped.pop(key, 0))
    for (plate, well), n in skipped.items():
        log.warning("plate %s well %s: all %d of its objects were skipped at the field's edge (--edge skip); it is "
                    "not in wells.csv", plate, well, n)
    return {"rule": ds.origin.get("edge", "pad"), "padded": int(sum(w["edge_padded"] for w in wells)),
            "skipped": int(sum(ds.skipped_objects.values()))}


def _with_qc(wells: list[dict], qc: WellQC | None, o: ScreenOptions) -> list[dict]:
    """The well rows with their QC medians, `qc_cells`, `qc_flag` and `hit_artefact_suspect` (a hit on a flagged
    well), when the screen measured QC."""
    if qc is None or not qc.columns:
        return wells
    for w in wells:
        w.update(qc.medians(w[o.plate_column], w[o.well_column]), qc_cells=w["cells"])
    sources = qc_flags(wells, o.plate_column, qc.columns)
    for plate, source in sources.items():
        log.info("plate %s: QC flags wells outside the range of %s", plate, source)
    for w in wells:
        w["hit_artefact_suspect"] = bool(w["hit"] and w["qc_flag"])
    return wells


def _against_reference(values: np.ndarray, plates: np.ndarray, thresholds: dict):
    """Per cell: its plate's threshold, the number of its plate's reference scores below its score (ties 1/2; the
    Mann-Whitney count) and the size of that reference."""
    limit, below, ref_n = (np.zeros(len(values)) for _ in range(3))
    for plate in dict.fromkeys(plates.tolist()):
        mine = plates == plate
        t = thresholds.get(plate, thresholds.get(None))
        ref, v = t["reference"], values[mine]
        limit[mine], ref_n[mine] = t["threshold"], len(ref)
        below[mine] = (np.searchsorted(ref, v, "left") + np.searchsorted(ref, v, "right")) / 2
    return limit, below, ref_n
