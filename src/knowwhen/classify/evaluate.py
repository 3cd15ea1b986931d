"""evaluate_run: predict a dataset with MC dropout and write every evaluation table of knowwhen."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_open, write_text_atomic
from ..data import ImageDataset
from ..data.fingerprint import dataset_fingerprint, sampled_training_images_in
from ..data.splits import split_dataset
from ..errors import DataError
from ..evaluation.perclass import confusion_matrix
from ..evaluation.summary import (NOVELTY_CONVENTION, accuracy_summary, calibration_summary, deterministic_log_probs,
                                  novelty_table, per_class_table, selective_table)
from ..tables import csv_rows, write_rows_csv
from .gallery import save_gallery
from .predict import predict_dataset
from .classes import NOVEL, class_mapping
from .run import Run
from .write import batch_columns, prediction_header

log = logging.getLogger("knowwhen")


def run_test_images(run: Run, ds: ImageDataset, allow_training_images: bool = False) -> ImageDataset:
    """The run's test and novel images when `ds` holds the data it was trained on (recognised by content), else
    all of `ds`, after checking that `ds` holds none of the run's sampled training images (a DataError unless
    `allow_training_images`)."""
    data = run.info.get("data", {})
    if _is_training_data(data, ds):
        d = run.config.data
        split = split_dataset(ds, d.val_fraction, d.test_fraction, d.holdout_classes, run.config.seed)
        log.info("%s holds the data run %s was trained on (same content); evaluating on its test split (%d images) "
                 "and its held-out classes (%d images)", ds.path, run.path, len(split.test), len(split.novel))
        return ds.subset(np.concatenate([split.test, split.novel]))
    sample = data.get("training_sample", [])
    found = sampled_training_images_in(ds, sample) if sample else 0
    if found:
        msg = (f"{ds.path}: {found} of the {len(sample)} training images sampled by run {run.path} are among these "
               f"{len(ds)} images, so the scores would include images the model learned")
        if not allow_training_images:
            raise DataError(f"{msg}; evaluate on images it never trained on (or on the whole training data, whose "
                            "test split is then used), or pass --allow-training-images to score them anyway.")
        log.warning("%s (--allow-training-images).", msg)
    return ds


def _is_training_data(data: dict, ds: ImageDataset) -> bool:
    """Whether `ds` has the content the run was trained on; runs saved before fingerprints compare the path."""
    if "fingerprint" in data:
        return len(ds) == data.get("images") and dataset_fingerprint(ds) == data["fingerprint"]
    log.info("this run has no data fingerprint (saved by an older knowwhen): comparing the data's path instead")
    return str(ds.path) == str(data.get("source")) and len(ds) == data.get("images")


UNLABELLED = -2


def label_codes(run: Run, ds: ImageDataset, novel_classes=()) -> np.ndarray:
    """(K + 1,) per class of `ds` the run's class index or NOVEL (its held-out classes and `novel_classes`), and
    UNLABELLED last (for label -1). Raises DataError for a class the run does not know and nobody declared novel."""
    novel = tuple(run.info.get("data", {}).get("holdout_classes", [])) + tuple(novel_classes)
    mapping = class_mapping(ds.class_names, run.class_names, novel, where=str(ds.path))
    return np.array([mapping[n] for n in ds.class_names] + [UNLABELLED], dtype=np.int64)


def _collect(run: Run, datasets: list, predictions_csv: Path, **predict_kw) -> dict:
    """Streams predictions to CSV and keeps the per-image arrays the tables need (no passes). `datasets` holds
    (dataset, label codes) pairs; codes None: every image is novel."""
    parts = {"y": [], "logits": [], "measures": [], "origin": []}
    classes = np.asarray(run.class_names)
    with atomic_open(predictions_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = prediction_header(run, datasets[0][0], bool(predict_kw.get("mc")))
        writer.writerow(header)
        for k, (ds, codes) in enumerate(datasets):
            for b in predict_dataset(run, ds, **predict_kw):
                parts["origin"].append(np.stack([np.full(len(b.indices), k), b.indices], 1))
                writer.writerows(csv_rows(batch_columns(b, header, classes)))
                parts["y"].append(np.full(len(b.indices), NOVEL) if codes is None else codes[ds.labels[b.indices]])
                parts["logits"].append(b.logits.astype(np.float32))
                parts["measures"].append({name: v.astype(np.float32) if v.ndim == 2 else v
                                          for name, v in b.measures.items()})
    y = np.concatenate(parts["y"]).astype(np.int64)
    measures = {k: np.concatenate([m[k] for m in parts["measures"]]) for k in parts["measures"][0]}
    return {"y": y, "logits": np.concatenate(parts["logits"]), "measures": measures,
            "origin": np.concatenate(parts["origin"])}


def evaluate_run(run: Run, ds: ImageDataset, out: str | Path, mc: int | None = 100, seed: int = 0,
                 novel: ImageDataset | None = None, use_temperature: bool = True, batch_size: int = 512,
                 progress: bool = True, report: bool = True, allow_training_images: bool = False,
                 novel_classes=()) -> dict:
    """Evaluates `run` on `ds` (its test split and held-out classes, when `ds` is its training data) and
    writes metrics.json, per_class.csv, predictions.csv, calibration.csv, selective.csv, and, when there are
    novel images (`novel`, held-out classes, or classes the run never saw), novelty.csv and roc.csv;
    confusion.csv, gallery.npz (the images the report shows) and, with `report`, report.html.

    The training data is recognised by content, however its path is spelled; other data that contains images
    the run trained on is refused unless `allow_training_images`. Class names match the run's after
    normalising case, spaces, `_`, `-` and `/`; a class the run does not know is novel when the run held it out
    or it is in `novel_classes`, and an error otherwise. Returns the content of metrics.json.

    Example:
        >>> summary = evaluate_run(load_run("runs/fmnist"), open_dataset("fashion-mnist"), "eval/")  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    test = run_test_images(run, ds, allow_training_images)
    datasets = [(test, label_codes(run, test, novel_classes))] + ([(novel, None)] if novel is not None else [])
    arrays = _collect(run, datasets, out / "predictions.csv", batch_size=batch_size, progress=progress, mc=mc,
                      seed=seed, use_temperature=use_temperature)
    y, m = arrays["y"], arrays["measures"]
    known, novel_mask = y >= 0, y == NOVEL
    if not known.any():
        raise DataError(f"{ds.path}: none of the images belongs to the run's classes; nothing to evaluate.")
    ym = {k: v[known] for k, v in m.items()}
    summary = _summary(run, y[known], arrays["logits"][known], ym, mc, seed, use_temperature)
    log_probs = deterministic_log_probs(arrays["logits"][known], run.temperature)
    if "log_probs_mc" in ym:
        log_probs["mc_mean"] = ym["log_probs_mc"].astype(np.float64)
    calib, calib_rows = calibration_summary(log_probs, y[known])
    summary["calibration"] = calib
    sel, sel_rows = selective_table(ym, y[known])
    summary["selective"] = sel
    preds = {k: ym[k] for k in ("pred", "pred_mc") if k in ym}
    write_rows_csv(out / "per_class.csv", per_class_table(y[known], preds, run.class_names))
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
    if report:
        from ..report.build import build_report  # the report sits above the tasks: imported on use

        build_report(out)
    return summary


def _summary(run: Run, y, logits, measures, mc, seed, use_temperature) -> dict:
    out = {"run": str(run.path), "images": int(len(y)), "mc_passes": mc, "seed": seed,
           "temperature": run.temperature, "temperature_applied": use_temperature,
           "accuracy": accuracy_summary(measures["pred"] == y)}
    if "pred_mc" in measures:
        out["accuracy_mc"] = accuracy_summary(measures["pred_mc"] == y)
    return out
