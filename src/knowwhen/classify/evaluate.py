"""evaluate_run: predict a dataset with MC dropout and write every evaluation table of knowwhen."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import check_output_dir, write_text_atomic
from ..config import check_counts
from ..data import ImageDataset
from ..errors import DataError
from ..precision import check_precision, resolved_precision
from ..evaluation.coverage import conformal_summary, per_class_coverage
from ..evaluation.perclass import confusion_matrix
from ..evaluation.summary import (NOVELTY_CONVENTION, accuracy_summary, calibration_summary, deterministic_log_probs,
                                  novelty_table, per_class_table, selective_table)
from ..tables import TableWriter, write_rows_csv
from .gallery import save_gallery
from .predict import MC_AT_SOFTMAX_T, applied_mc_temperature, predict_dataset, run_engine
from .classes import NOVEL
from .sets import ConformalOptions, RunSets, run_sets, with_sets
from .own_data import label_codes, run_test_images
from .run import Run
from .write import batch_columns, prediction_header

log = logging.getLogger("knowwhen")


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    """How `evaluate_run` predicts and what it accepts.

    Attributes:
        mc: MC-dropout passes per image (e.g. 100); None: the deterministic prediction only.
        seed: seed of the dropout masks.
        use_temperature: divide the logits by the run's fitted temperatures.
        batch_size: images read at once (the numbers do not depend on it).
        progress: show a progress bar.
        allow_training_images: evaluate data that contains images the run trained on (refused otherwise).
        novel_classes: class names the run does not know that are novel (others are an error).
        conformal: give every image its conformal prediction set (`knowwhen.classify.sets`).
        precision: fp32, bf16 or auto for the network's layers (`knowwhen.precision`).
    """

    mc: int | None = 100
    seed: int = 0
    use_temperature: bool = True
    batch_size: int = 512
    progress: bool = True
    allow_training_images: bool = False
    novel_classes: tuple[str, ...] = ()
    conformal: ConformalOptions | None = None
    precision: str = "fp32"

    def __post_init__(self):
        check_counts(mc=self.mc or 0, batch_size=self.batch_size)
        check_precision(self.precision)
        object.__setattr__(self, "novel_classes", tuple(self.novel_classes))


def _collect(run: Run, datasets: list, predictions_csv: Path, sets: RunSets | None, o: EvaluateOptions,
             precision: str) -> dict:
    """Streams predictions to CSV and keeps the per-image arrays the tables need (no passes). `datasets` holds
    (dataset, label codes) pairs; codes None: every image is novel."""
    parts = {"y": [], "logits": [], "measures": [], "origin": []}
    classes = np.asarray(run.class_names)
    header = prediction_header(run, datasets[0][0], run.samples(o.mc) > 0, sets is not None)
    engine = run_engine(run, o.mc, o.seed, o.use_temperature)
    with TableWriter(predictions_csv, header=header) as writer:
        for k, (ds, codes) in enumerate(datasets):
            batches = predict_dataset(run, ds, engine, batch_size=o.batch_size, progress=o.progress,
                                      use_temperature=o.use_temperature, precision=precision)
            for b in with_sets(batches, sets):
                parts["origin"].append(np.stack([np.full(len(b.indices), k), b.indices], 1))
                writer.write(batch_columns(b, header, classes))
                parts["y"].append(np.full(len(b.indices), NOVEL) if codes is None else codes[ds.labels[b.indices]])
                parts["logits"].append(b.logits.astype(np.float32))
                parts["measures"].append({name: v.astype(np.float32) if v.ndim == 2 and v.dtype != bool else v
                                          for name, v in b.measures.items()})
    y = np.concatenate(parts["y"]).astype(np.int64)
    measures = {k: np.concatenate([m[k] for m in parts["measures"]]) for k in parts["measures"][0]}
    return {"y": y, "logits": np.concatenate(parts["logits"]), "measures": measures,
            "origin": np.concatenate(parts["origin"])}


def evaluate_run(run: Run, ds: ImageDataset, out: str | Path, options: EvaluateOptions = EvaluateOptions(),
                 novel: ImageDataset | None = None) -> dict:
    """Evaluates `run` on `ds` (its test split and held-out classes, when `ds` is its training data) and
    writes metrics.json, per_class.csv, predictions.csv, calibration.csv, selective.csv, and, when there are
    novel images (`novel`, held-out classes, or classes the run never saw), novelty.csv and roc.csv;
    confusion.csv and gallery.npz (the images the report shows); the page is `knowwhen.report.build.build_report`'s
    (numbers here, the page above). With `options.conformal`, every image gets its conformal prediction set
    (see `knowwhen.classify.sets`), metrics.json a `conformal` block and per_class.csv its coverage columns.
    `options.precision` (fp32, bf16, auto): the network's layers' arithmetic (`knowwhen.precision`);
    metrics.json records the one used.

    The training data is recognised by content, however its path is spelled; other data that contains images
    the run trained on is refused unless `options.allow_training_images`. Class names match the run's after
    normalising case, spaces, `_`, `-` and `/`; a class the run does not know is novel when the run held it out
    or it is in `options.novel_classes`, and an error otherwise. Returns the content of metrics.json.

    Example:
        >>> summary = evaluate_run(load_run("runs/fmnist"), open_dataset("fashion-mnist"), "eval/",
        ...                        EvaluateOptions(mc=100))  # doctest: +SKIP
    """
    o, out = options, Path(out)
    check_output_dir(out, "--out")
    precision = resolved_precision(o.precision)
    test = run_test_images(run, ds, o.allow_training_images)
    datasets = [(test, label_codes(run, test, o.novel_classes))] + ([(novel, None)] if novel is not None else [])
    out.mkdir(parents=True, exist_ok=True)
    sets = run_sets(run, o.conformal, o.mc, o.seed, o.use_temperature) if o.conformal else None
    arrays = _collect(run, datasets, out / "predictions.csv", sets, o, precision)
    y, m = arrays["y"], arrays["measures"]
    known, novel_mask = y >= 0, y == NOVEL
    if not known.any():
        raise DataError(f"{ds.path}: none of the images belongs to the run's classes; nothing to evaluate.")
    ym = {k: v[known] for k, v in m.items()}
    summary = _summary(run, y[known], arrays["logits"][known], ym, o.mc, o.seed, o.use_temperature)
    summary["precision"] = precision
    log_probs = deterministic_log_probs(arrays["logits"][known], run.temperature)
    if "log_probs_mc" in ym:  # mc_mean: the p* of predictions.csv (prob_*, p_max_mc), at whatever temperature ran
        log_probs["mc_mean"] = ym["log_probs_mc"].astype(np.float64)
    if MC_AT_SOFTMAX_T in ym:  # the passes had their own MC temperature: the MC mean without it, to compare
        log_probs["mc_mean_softmax_temperature"] = ym[MC_AT_SOFTMAX_T].astype(np.float64)
    calib, calib_rows = calibration_summary(log_probs, y[known])
    summary["calibration"] = calib
    sel, sel_rows = selective_table(ym, y[known])
    summary["selective"] = sel
    preds = {k: ym[k] for k in ("pred", "pred_mc") if k in ym}
    per_class = per_class_table(y[known], preds, run.class_names)
    if sets is not None:
        summary["conformal"] = _conformal_block(sets, m, y)
        _add_coverage(per_class, ym["sets"], y[known], sets.calibration)
    write_rows_csv(out / "per_class.csv", per_class)
    cm = confusion_matrix(y[known], preds.get("pred_mc", preds["pred"]), len(run.class_names))
    write_rows_csv(out / "confusion.csv", [{"true_class": c, **dict(zip(run.class_names, map(int, row)))}
                                       for c, row in zip(run.class_names, cm)])
    save_gallery(out / "gallery.npz", run, [d for d, _ in datasets], arrays)
    write_rows_csv(out / "calibration.csv", calib_rows)
    write_rows_csv(out / "selective.csv", sel_rows)
    if novel_mask.any():
        scored = known | novel_mask
        table, roc = novelty_table({k: v[scored] for k, v in m.items()}, novel_mask[scored])
        summary["novelty"] = {"convention": NOVELTY_CONVENTION, "novel_images": int(novel_mask.sum()),
                              "measures": table}
        write_rows_csv(out / "novelty.csv", table)
        write_rows_csv(out / "roc.csv", roc)
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _conformal_block(sets: RunSets, m: dict, y: np.ndarray) -> dict:
    """metrics.json's `conformal`: the settings, coverage and set sizes on the known images, and how often sets
    are flagged (empty or too large) on known and on novel images."""
    known, novel = y >= 0, y == NOVEL
    block = {**sets.describe(), **conformal_summary(m["sets"][known], y[known], sets.classifier.alpha),
             "flag_rate": float(m["set_flag"][known].mean())}
    if novel.any():
        block.update(novel_flag_rate=float(m["set_flag"][novel].mean()),
                     novel_mean_size=float(m["set_size"][novel].mean()))
    return block


def _add_coverage(rows: list[dict], sets: np.ndarray, y: np.ndarray, calibration: dict) -> None:
    """per_class.csv's conformal columns: coverage with its interval, mean set size, calibration images."""
    counts = calibration.get("class_counts") or [None] * len(rows)
    for row, c, n in zip(rows, per_class_coverage(sets, y), counts):
        row.update({"coverage": c["coverage"], "coverage_ci_low": c["ci_low"], "coverage_ci_high": c["ci_high"],
                    "mean_set_size": c["mean_size"], "calibration_images": n})


def _summary(run: Run, y, logits, measures, mc, seed, use_temperature) -> dict:
    out = {"run": str(run.path), "images": int(len(y)), "mc_passes": mc, "seed": seed,
           **({"ensemble_members": run.members, "samples_per_image": run.samples(mc)} if run.members > 1 else {}),
           "temperature": run.temperature, "temperature_applied": use_temperature,
           "mc_temperature": applied_mc_temperature(run, use_temperature) if run.samples(mc) else None,
           "mc_temperature_fitted": run.mc_temperature is not None,
           "accuracy": accuracy_summary(measures["pred"] == y)}
    if "pred_mc" in measures:
        out["accuracy_mc"] = accuracy_summary(measures["pred_mc"] == y)
    return out
