"""evaluate_run: predict a dataset with MC dropout and write every evaluation table of knowwhen."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_open, write_text_atomic
from ..data import ImageDataset
from ..data.splits import split_dataset
from ..evaluation.perclass import confusion_matrix
from ..evaluation.summary import (NOVELTY_CONVENTION, accuracy_summary, calibration_summary, deterministic_probs,
                                  novelty_table, per_class_table, selective_table)
from ..tables import csv_rows, write_rows_csv
from .gallery import save_gallery
from .predict import predict_dataset
from .run import Run
from .write import batch_columns, prediction_header

log = logging.getLogger("knowwhen")


def run_test_images(run: Run, ds: ImageDataset) -> ImageDataset:
    """The run's test and novel images when `ds` is the data it was trained on, else all of `ds`."""
    data = run.info.get("data", {})
    if str(ds.path) != str(data.get("source")) or len(ds) != data.get("images"):
        return ds
    d = run.config.data
    split = split_dataset(ds, d.val_fraction, d.test_fraction, d.holdout_classes, run.config.seed)
    log.info("evaluating on the run's own test split (%d images) and its held-out classes (%d images)",
             len(split.test), len(split.novel))
    return ds.subset(np.concatenate([split.test, split.novel]))


NOVEL, UNLABELLED = -1, -2


def _label_code(name: str, index: dict) -> int:
    """The run's class index; NOVEL for a class the run never saw; UNLABELLED for no label."""
    return UNLABELLED if name == "" else index.get(name, NOVEL)


def _collect(run: Run, datasets: list[ImageDataset], predictions_csv: Path, **predict_kw) -> dict:
    """Streams predictions to CSV and keeps the per-image arrays the tables need (no passes)."""
    index = {c: k for k, c in enumerate(run.class_names)}
    parts = {"y": [], "logits": [], "measures": [], "origin": []}
    classes = np.asarray(run.class_names)
    with atomic_open(predictions_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = prediction_header(run, datasets[0][0], bool(predict_kw.get("mc")))
        writer.writerow(header)
        for k, (ds, all_novel) in enumerate(datasets):
            for b in predict_dataset(run, ds, **predict_kw):
                parts["origin"].append(np.stack([np.full(len(b.indices), k), b.indices], 1))
                writer.writerows(csv_rows(batch_columns(b, header, classes)))
                parts["y"].append([NOVEL if all_novel else _label_code(name, index) for name in b.labels])
                parts["logits"].append(b.logits.astype(np.float32))
                parts["measures"].append({name: v.astype(np.float32) if name == "probs_mc" else v
                                          for name, v in b.measures.items()})
    y = np.concatenate(parts["y"]).astype(np.int64)
    measures = {k: np.concatenate([m[k] for m in parts["measures"]]) for k in parts["measures"][0]}
    return {"y": y, "logits": np.concatenate(parts["logits"]), "measures": measures,
            "origin": np.concatenate(parts["origin"])}


def evaluate_run(run: Run, ds: ImageDataset, out: str | Path, mc: int | None = 100, seed: int = 0,
                 novel: ImageDataset | None = None, use_temperature: bool = True, batch_size: int = 512,
                 progress: bool = True, report: bool = True) -> dict:
    """Evaluates `run` on `ds` (its test split and held-out classes, when `ds` is its training data) and
    writes metrics.json, per_class.csv, predictions.csv, calibration.csv, selective.csv, and, when there are
    novel images (`novel`, held-out classes, or classes the run never saw), novelty.csv and roc.csv;
    confusion.csv, gallery.npz (the images the report shows) and, with `report`, report.html.

    Returns the content of metrics.json.

    Example:
        >>> summary = evaluate_run(load_run("runs/fmnist"), open_dataset("fashion-mnist"), "eval/")  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    datasets = [(run_test_images(run, ds), False)] + ([(novel, True)] if novel is not None else [])
    arrays = _collect(run, datasets, out / "predictions.csv", batch_size=batch_size, progress=progress, mc=mc,
                      seed=seed, use_temperature=use_temperature)
    y, m = arrays["y"], arrays["measures"]
    known, novel_mask = y >= 0, y == NOVEL
    if not known.any():
        from ..errors import DataError
        raise DataError(f"{ds.path}: none of the images belongs to the run's classes; nothing to evaluate.")
    ym = {k: v[known] for k, v in m.items()}
    summary = _summary(run, y[known], arrays["logits"][known], ym, mc, seed, use_temperature)
    probs = deterministic_probs(arrays["logits"][known], run.temperature)
    if "probs_mc" in ym:
        probs["mc"] = ym["probs_mc"].astype(np.float64)
    calib, calib_rows = calibration_summary(probs, y[known])
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
