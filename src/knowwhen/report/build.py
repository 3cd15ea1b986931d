"""build_report(eval_dir): the saved evaluation tables -> report.html (nothing is recomputed from images)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..errors import DataError
from ..uncertainty.measures import SCORED_MEASURES
from . import figures as F
from .sets_section import conformal_section
from .forecast import forecast_sections
from .html import Section, figure_html, note_html, page_html, table_html

MAX_POINTS = 20_000


def _csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _sampled_predictions(path: Path, limit: int = MAX_POINTS) -> list[dict]:
    """Every k-th row of predictions.csv so that at most `limit` rows are kept (a page stays light)."""
    with open(path, newline="", encoding="utf-8") as f:
        total = sum(1 for _ in f) - 1
    step = max(1, -(-total // limit))
    with open(path, newline="", encoding="utf-8") as f:
        return [r for i, r in enumerate(csv.DictReader(f)) if i % step == 0]


def _pct(a: dict) -> str:
    return f"{a['accuracy'] * 100:.1f}% [{a['ci_low'] * 100:.1f}%, {a['ci_high'] * 100:.1f}%]"


def _run_info(summary: dict) -> tuple[dict, list[dict]]:
    from ..training.rundir import read_config
    from ..errors import KnowwhenError

    run_dir = Path(summary["run"])
    try:
        config = read_config(run_dir)
        first = config.get("ensemble", {}).get("dirs", ["."])[0]  # an ensemble shows its member 0's curves
        return config, _csv(run_dir / first / "metrics.csv")
    except KnowwhenError:  # the run may have moved; the report still shows the evaluation and says so
        return {}, []


_OLD_BLOCK_NAMES = {"softmax_untempered": "deterministic", "softmax_tempered": "temperature_scaled"}


def _block(calibration: dict, name: str) -> dict:
    """A calibration block by its name, or by the name evaluations saved before the blocks were renamed."""
    return calibration.get(name) or calibration[_OLD_BLOCK_NAMES[name]]


SMALL_EVALUATION = 100  # fewer known images than this: the summary says they are too few to judge


def _summary_section(summary: dict, run: dict) -> Section:
    rows = [{"": "model", "value": f"{run.get('model', {}).get('name', '?')} {run.get('model', {}).get('args') or ''}"},
            {"": "training data", "value": f"{run.get('data', {}).get('source', '?')} "
                                           f"(held out: {', '.join(run.get('data', {}).get('holdout_classes', [])) or 'none'})"},
            {"": "training time", "value": f"{run.get('train_seconds', float('nan')):.0f} s"},
            {"": "images evaluated", "value": f"{summary['images']} known"
                                              + (f" + {summary['novelty']['novel_images']} novel" if 'novelty' in summary else "")},
            {"": "classes and channels", "value": _classes_and_channels(run)},
            {"": "accuracy, dropout off (95% CI)", "value": _pct(summary["accuracy"])}]
    if "accuracy_mc" in summary:
        rows.append({"": f"accuracy, MC mean of {summary['mc_passes']} passes", "value": _pct(summary["accuracy_mc"])})
    cal = summary["calibration"]
    rows.append({"": "ECE before / after temperature scaling",
                 "value": f"{_block(cal, 'softmax_untempered')['ece']:.4f} / "
                          f"{_block(cal, 'softmax_tempered')['ece']:.4f} "
                          f"(T = {summary['temperature']:.3f}"
                          + (f"; {run['temperature_note']})" if run.get("temperature_note") else ")")})
    if "novelty" in summary:
        best = max(summary["novelty"]["measures"], key=lambda r: r["auroc"])
        rows.append({"": "best novelty measure", "value": f"{best['measure']} (AUROC {best['auroc']:.3f})"})
    blocks = [table_html(rows)]
    if summary["images"] < SMALL_EVALUATION:
        lo, hi = summary["accuracy"]["ci_low"], summary["accuracy"]["ci_high"]
        blocks.insert(0, note_html(f"Only {summary['images']} known images were evaluated: too few to judge the "
                                   f"model (its accuracy could be anywhere from {lo:.0%} to {hi:.0%}); evaluate on "
                                   "more images before trusting these numbers."))
    return Section("summary", "Summary", "The headline numbers; brackets are 95% Wilson intervals.", blocks)


def _classes_and_channels(run: dict) -> str:
    classes, shape = run.get("class_names", []), run.get("input_shape", [])
    names = run.get("data", {}).get("channel_names") or []
    channels = f"{shape[0]} channel(s)" + (f" ({', '.join(names)})" if names else "") if shape else "?"
    return f"{len(classes)} classes; {channels}" + (f", {shape[1]}x{shape[2]} pixels" if len(shape) == 3 else "")


def _uncertainty_section(preds: list[dict], class_names: set) -> Section:
    names = [m for m in SCORED_MEASURES if preds and m in preds[0]]
    values = {m: np.array([float(r[m]) for r in preds]) for m in names}
    label = np.array([r.get("label", "") for r in preds])
    known = np.isin(label, list(class_names))
    pred_col = "pred_mc" if "pred_mc" in preds[0] else "pred"
    correct = known & (np.array([r[pred_col] for r in preds]) == label)
    blocks = [figure_html(F.measure_distributions(values, {"correct": correct, "wrong": known & ~correct},
                                                  "Known images: correct vs wrong predictions"), "correct vs wrong")]
    novel = (label != "") & ~known
    if novel.any():
        blocks.append(figure_html(F.measure_distributions(values, {"known": known, "novel": novel},
                                                          "Known vs novel images"), "known vs novel"))
    return Section("uncertainty", "Uncertainty measures",
                   "Well-separated histograms mean the measure tells the groups apart; p_max is high when sure, "
                   "all other measures are high when unsure.", blocks)


def _novelty_section(eval_dir: Path, summary: dict, loo: list[dict]) -> Section:
    sec = Section("novelty", "Novelty: images of classes never seen in training",
                  "A curve hugging the top-left corner flags novel images without flagging known ones; "
                  "AUROC 0.5 is chance, 1.0 perfect (novel = positive class, higher score = more uncertain).")
    if "novelty" in summary:
        sec.blocks += [figure_html(F.roc_curves(_csv(eval_dir / "roc.csv"), summary["novelty"]["measures"]), "ROC"),
                       table_html(summary["novelty"]["measures"])]
    else:
        sec.blocks.append(note_html("No novel images in this evaluation, so there is nothing to detect: train with "
                                    "--holdout-class or evaluate with --novel NOVEL_DATA to see this section."))
    if loo:
        sec.blocks.append(figure_html(F.novelty_heatmap(loo), "leave-one-class-out AUROC"))
    return sec


# What gallery.npz files written before they recorded their groups hold.
_SAVED_BEFORE_GROUPS = {"uncertain": "Most uncertain images", "confident_wrong": "Most confidently wrong images",
                        "novel_confident": "Novel images the model was sure about"}


def _gallery_section(eval_dir: Path) -> Section:
    sec = Section("galleries", "Image galleries",
                  "Each image shows its true label, the top-3 classes with probabilities, and its uncertainty: "
                  "entropy_mc is the predictive entropy H(p*) in nats (high: the passes together are unsure), "
                  "mutual_info_mc the part of it from disagreement between passes (high: the model has not seen "
                  "images like this); without MC, p_max is the top probability.")
    path = eval_dir / "gallery.npz"
    if not path.exists():
        sec.blocks.append(note_html("No gallery.npz in this evaluation folder."))
        return sec
    with np.load(path, allow_pickle=False) as g:
        groups = (dict(zip(g["groups"].tolist(), g["group_titles"].tolist())) if "groups" in g
                  else _SAVED_BEFORE_GROUPS)
        first = next((g[f"{k}_images"] for k in groups if len(g[f"{k}_images"])), None)
        if first is not None and first.shape[1] > 1:
            names = list(g["channel_names"]) if "channel_names" in g else []
            sec.blocks.append(note_html(f"Colours: {F.composite_legend(names, first.shape[1])} (each channel "
                                        "scaled to its 1st-99th percentile)."))
        for group, title in groups.items():
            if len(g[f"{group}_images"]):
                sec.blocks.append(figure_html(F.gallery(g[f"{group}_images"], list(g[f"{group}_captions"]), title),
                                              title))
            else:
                sec.blocks.append(note_html(f"{title}: none in this evaluation."))
    return sec


def _inside_section(run, eval_dir: Path) -> Section:
    sec = Section("inside", "Looking inside the network",
                  "Filters show what the first layer responds to, activation maps where in one image each layer "
                  "responds, and the last figure what input each class would most like to see.")
    from .explain import inside_figures

    if isinstance(run, str):  # why there is no run: the caller could not load it
        sec.blocks.append(note_html(f"The run could not be loaded ({run}); these figures need its weights."))
        return sec
    image = None
    if (eval_dir / "gallery.npz").exists():
        with np.load(eval_dir / "gallery.npz", allow_pickle=False) as g:
            image = g["uncertain_images"][0] if len(g["uncertain_images"]) else None
    figs = inside_figures(run, image)
    figs.pop("_class_input_arrays")
    if "filters" not in figs:
        sec.blocks.append(note_html("This model has no convolution layers: no filters or activation maps to show."))
    sec.blocks += [figure_html(fig, name) for name, fig in figs.items()]
    return sec


def build_report(eval_dir: str | Path, novelty_table: str | Path | None = None, network=None) -> Path:
    """Writes eval_dir/report.html from the files `evaluate` (or `forecast evaluate`) wrote there; returns its path.

    `network`: the evaluated run as `knowwhen.load_run` returns it, for the figures drawn from its weights
    (filters, activation maps, class inputs), or the reason it could not be loaded (a string); None: those figures
    are left out and the page says how to add them. The report sits above the tasks: it takes the run from its
    caller rather than loading it.

    Example:
        >>> build_report("eval/", network=knowwhen.load_run("runs/fmnist"))  # doctest: +SKIP
    """
    eval_dir = Path(eval_dir)
    if not (eval_dir / "metrics.json").exists():
        raise DataError(f"{eval_dir}: no metrics.json; run `knowwhen evaluate RUN DATA --out {eval_dir}` first.")
    summary = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    run, epochs = _run_info(summary)
    if summary.get("task") == "forecast":
        return _write(eval_dir, page_html("knowwhen forecast report", f"run {summary['run']}, {summary['windows']} test "
                                          f"windows, MC passes: {summary['mc_passes'] or 'none'}",
                                          forecast_sections(eval_dir, summary, run, epochs, _csv)))
    loo_path = Path(novelty_table) if novelty_table else eval_dir.parent.parent / "novelty.csv"
    loo = [r for r in _csv(loo_path) if "heldout_class" in r]
    per_class, preds = _csv(eval_dir / "per_class.csv"), _sampled_predictions(eval_dir / "predictions.csv")
    cm_rows = _csv(eval_dir / "confusion.csv")
    class_names = [r["class"] for r in per_class]
    sections = [
        _summary_section(summary, run),
        Section("training", "Training curves", "Validation loss that rises while training loss falls means "
                "over-fitting; the saved model is the epoch with the lowest validation loss."
                + (f" A deep ensemble of {run['ensemble']['members']} members: the curves are member 0's."
                   if run.get("ensemble") else ""),
                [figure_html(F.training_curves(epochs), "training curves")] if epochs
                else [note_html("The run's metrics.csv was not found (was the run moved?).")]),
        Section("per-class", "Per-class accuracy", "Bars are accuracies, whiskers 95% Wilson intervals; the matrix "
                "shows which classes are confused with which.",
                [figure_html(F.per_class_accuracy(per_class), "per-class accuracy"), table_html(per_class)]
                + ([figure_html(F.confusion(np.array([[int(r[c]) for c in class_names] for r in cm_rows]),
                                            class_names), "confusion matrix")] if cm_rows else [])),
        Section("calibration", "Calibration", "Points on the diagonal mean a confidence of 0.8 is right 80% of the "
                "time; below it the model is over-confident. The histogram shows how many images fall in each bin.",
                [figure_html(F.reliability(_csv(eval_dir / "calibration.csv"), summary["calibration"]),
                             "reliability diagram"), table_html([{"probabilities": k, **v}
                                                                  for k, v in summary["calibration"].items()])]),
        _uncertainty_section(preds, set(class_names)),
        *([conformal_section(summary["conformal"], per_class, preds, set(class_names))]
          if "conformal" in summary else []),
        _novelty_section(eval_dir, summary, loo),
        Section("selective", "Selective prediction", "Rejecting the most uncertain images first should raise the "
                "accuracy of the rest above the random line, towards the oracle that rejects exactly the errors.",
                [figure_html(F.selective(_csv(eval_dir / "selective.csv")), "selective prediction"),
                 table_html(summary["selective"])]),
        _gallery_section(eval_dir),
        _inside_section(network if network is not None else "no run was given: build_report(eval_dir, "
                        "network=knowwhen.load_run(RUN))", eval_dir),
    ]
    return _write(eval_dir, page_html("knowwhen evaluation report", f"run {summary['run']}, {summary['images']} "
                                      f"known images, MC passes: {summary['mc_passes'] or 'none'}", sections))


def _write(eval_dir: Path, page: str) -> Path:
    out = eval_dir / "report.html"
    write_text_atomic(out, page)
    return out
