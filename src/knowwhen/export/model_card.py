"""The model card of an exported run (documentation.md of a bioimage.io package), written from what the run and,
when given, an evaluation of it (`knowwhen evaluate ... --out EVAL`, its metrics.json) measured."""
from __future__ import annotations

from ..evaluation.perclass import wilson_interval


def model_card(run, passes: int, seed: int, evaluation: dict | None = None) -> str:
    """Markdown: what the model does, the data and splits it learned from, accuracy with its 95% interval,
    calibration before and after temperature scaling, novelty AUROCs and conformal coverage when evaluated, the
    outputs, and the intended use and limits."""
    info, m = run.info, run.metrics
    data = info.get("data", {})
    lines = [f"# {run.config.model.name} with MC dropout, exported by knowwhen", "",
             f"Classifies {run.input_shape[0]}-channel {run.input_shape[1]}x{run.input_shape[2]} images into "
             f"{len(run.class_names)} classes ({', '.join(run.class_names)}) and returns, with every prediction, how "
             f"sure it is: the mean of {passes} MC-dropout passes (fixed masks of seed {seed}, so the outputs are "
             "reproducible) and uncertainty measures.", "", "## Data", ""]
    sizes = data.get("sizes", {})
    lines += [f"- Source: `{data.get('source', '?')}` ({data.get('images', '?')} images; channels "
              f"{', '.join(run.channel_names) or 'unnamed'}).",
              "- Splits (stratified, seeded): " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + ".",
              f"- Classes held out of training as novel: {', '.join(data.get('holdout_classes', [])) or 'none'}.",
              "", "## Validation", ""]
    lines += _accuracy(m, evaluation) + _calibration(m, evaluation) + _novelty(evaluation) + _conformal(info, evaluation)
    lines += ["", "## Outputs", "",
              "- `probs`: softmax probabilities with dropout off, at the run's fitted temperature.",
              "- `probs_mc`: the MC-dropout mean probabilities p* (the MC temperature applied to each pass).",
              "- `measures`: p_max and p_max_mc (higher = surer), sigma_mc, entropy_mc, mutual_info_mc and "
              "variation_ratio_mc (higher = more uncertain); formulas in knowwhen's docs (docs/uncertainty.md).",
              "- Input: raw pixel values; the run's normalisation (clipping, per-channel mean and std) is inside.",
              "", "## Intended use and limits", "",
              "- Use: classify cells like the training images, and set aside the ones the model doubts (high "
              "mutual_info_mc or entropy_mc, low p_max_mc) for review.",
              "- Doubt is honest on data exchangeable with the training plates. Other plates, stains or microscopes "
              "shift intensities and focus: recalibrate on new plates (`knowwhen conformal RUN controls`, thresholds "
              "from each plate's control cells) before trusting probabilities or thresholds there.",
              "- The feature-space novelty scores and the fused `novelty` score are not in this package (they need "
              "the run's feature statistics): use knowwhen with the run for those.",
              "- A class absent from training is not predicted; images of it should show high doubt, but on "
              "phenotypes that look like a known class the measures separate them only partly (see the AUROCs).", ""]
    return "\n".join(lines)


def _accuracy(m: dict, evaluation: dict | None) -> list[str]:
    if evaluation and "accuracy" in evaluation:
        a = evaluation["accuracy"]
        return [f"- Accuracy on {a['images']} evaluated images: {a['accuracy']:.4f} (95% Wilson interval "
                f"{a['ci_low']:.4f}-{a['ci_high']:.4f})."]
    if "test_acc" not in m:
        return ["- Accuracy: no test images were held out."]
    n = int(m.get("test_images", 0))
    lo, hi = wilson_interval(round(m["test_acc"] * n), n)
    return [f"- Accuracy on the {n} test images: {m['test_acc']:.4f} (95% Wilson interval {lo:.4f}-{hi:.4f})."]


def _calibration(m: dict, evaluation: dict | None) -> list[str]:
    cal = (evaluation or {}).get("calibration", {})
    if "softmax_untempered" in cal:
        before, after = cal["softmax_untempered"]["ece"], cal.get("softmax_tempered", {}).get("ece")
        where = "the evaluated images"
    elif "val_ece" in m:
        before, after, where = m["val_ece"], m.get("val_ece_temperature"), "the validation images"
    else:
        return ["- Calibration: not measured."]
    return [f"- Calibration on {where}: expected calibration error {before:.4f} before temperature scaling"
            + (f", {after:.4f} after (temperature {m.get('temperature', float('nan')):.4g})." if after is not None
               else ".")]


def _novelty(evaluation: dict | None) -> list[str]:
    novelty = (evaluation or {}).get("novelty")
    if not novelty:
        return ["- Novelty detection: not evaluated (export with --evaluation EVAL_DIR after `knowwhen evaluate` "
                "with novel images to report it)."]
    from .bioimageio import MEASURES

    rows = novelty.get("measures", [])
    text = lambda chosen: ", ".join(f"{r['measure']} {r['auroc']:.3f}" for r in chosen) or "none"  # noqa: E731
    return [f"- Novelty detection on {novelty.get('novel_images', '?')} novel images (AUROC; novel = positive, "
            f"higher score = more uncertain): in this package {text([r for r in rows if r['measure'] in MEASURES])};"
            f" with knowwhen and the run only {text([r for r in rows if r['measure'] not in MEASURES])}."]


def _conformal(info: dict, evaluation: dict | None) -> list[str]:
    sets = (evaluation or {}).get("conformal")
    if sets:
        return [f"- Conformal prediction sets ({sets.get('method', '?')}, alpha {sets['alpha']:g}): coverage "
                f"{sets['coverage']:.4f} (95% Wilson interval {sets['ci_low']:.4f}-{sets['ci_high']:.4f}; target "
                f"{sets['target']:.2f}), mean set size {sets['mean_size']:.2f} (sets apply when knowwhen predicts "
                "with the run; not part of this package)."]
    if info.get("calibration"):
        return [f"- Conformal sets: calibrated on {info['calibration'].get('images')} images "
                f"({info['calibration'].get('source', '')}); coverage not evaluated (not part of this package)."]
    return []
