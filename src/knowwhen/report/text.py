"""Runs and evaluation summaries as short plain text for the terminal (what `knowwhen info` and the commands
print)."""
from __future__ import annotations


def _pct(a: dict) -> str:
    return f"{a['accuracy'] * 100:.1f}% [{a['ci_low'] * 100:.1f}%, {a['ci_high'] * 100:.1f}%]"


def format_summary(summary: dict) -> str:
    """The key numbers of metrics.json: accuracy, calibration, novelty AUROC, selective accuracy."""
    lines = [f"{summary['images']} images, MC passes: {summary['mc_passes'] or 'none'}, "
             f"temperature {summary['temperature']:.3f}{'' if summary['temperature_applied'] else ' (not applied)'}",
             f"accuracy (dropout off): {_pct(summary['accuracy'])}  (95% Wilson interval)"]
    if "accuracy_mc" in summary:
        lines.append(f"accuracy (MC mean):     {_pct(summary['accuracy_mc'])}")
    cal = summary["calibration"]
    lines.append("ECE (15 bins): " + ", ".join(f"{k} {v['ece']:.4f}" for k, v in cal.items()))
    if "novelty" in summary:
        nov = summary["novelty"]
        lines.append(f"novelty, {nov['novel_images']} novel images ({nov['convention']}):")
        lines.append(f"  {'measure':<20}{'AUROC':>8}{'AUPR':>8}{'FPR95':>8}")
        lines += [f"  {r['measure']:<20}{r['auroc']:>8.3f}{r['aupr']:>8.3f}{r['fpr_at_95_tpr']:>8.3f}"
                  for r in nov["measures"]]
        lines += _default_vs_p_max(nov["measures"])
    lines.append("selective prediction (accuracy of the kept images):")
    lines.append(f"  {'measure':<20}{'@90%':>8}{'@80%':>8}{'AURC':>8}")
    lines += [f"  {r['measure']:<20}{r['accuracy_at_90']:>8.3f}{r['accuracy_at_80']:>8.3f}{r['aurc']:>8.4f}"
              for r in summary["selective"]]
    if "conformal" in summary:
        c = summary["conformal"]
        lines.append(f"conformal sets ({c['method']} on {c['probs']}, alpha {c['alpha']:g}"
                     f"{', per class' if c['by_class'] else ''}): coverage {c['coverage']:.1%} "
                     f"[{c['ci_low']:.1%}, {c['ci_high']:.1%}] (target {c['target']:.0%}), mean size "
                     f"{c['mean_size']:.2f}, flagged {c['flag_rate']:.1%} of known"
                     + (f" and {c['novel_flag_rate']:.1%} of novel images" if "novel_flag_rate" in c else " images"))
        if c.get("note"):
            lines.append(f"  note: {c['note']}")
    return "\n".join(lines)


NEAR_P_MAX = 0.03  # how close to the free baseline p_max the default score is expected to stay (docs/results.md)


def _default_vs_p_max(rows: list[dict]) -> list[str]:
    """One line: the default score `novelty` against `p_max`, the baseline that costs nothing, and plainly why when
    it is behind by more than NEAR_P_MAX."""
    auroc = {r["measure"]: r["auroc"] for r in rows}
    if "novelty" not in auroc or "p_max" not in auroc:
        return []
    gap = auroc["novelty"] - auroc["p_max"]
    verdict = (f"ahead by {gap:.3f}" if gap > 0 else f"within {NEAR_P_MAX} (behind by {-gap:.3f})"
               if gap >= -NEAR_P_MAX else
               f"behind by {-gap:.3f}: the novel images sit among a known class's features here, where only the "
               "classifier's own doubt sees them (docs/results.md)")
    return [f"  the default `novelty` vs the free baseline `p_max`: {auroc['novelty']:.3f} vs {auroc['p_max']:.3f}, "
            + verdict]


def epoch_number(metrics: dict) -> int | str:
    """The best epoch counted from 1, as the progress bar and the report's axes count (metrics store the index
    from 0, `best_epoch`)."""
    index = metrics.get("best_epoch")
    return index + 1 if isinstance(index, int) else "?"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def describe_run(run) -> str:
    """A classifier run (`knowwhen.classify.Run`) as text: model with parameter counts, classes, data, metrics,
    normalisation, temperature, training time."""
    data, norm = run.info.get("data", {}), run.normalizer
    clip = "" if norm.clip_low is None else f", clipped to {_fmt(norm.clip_low)}..{_fmt(norm.clip_high)}"
    lines = [f"run {run.path}  (knowwhen {run.info.get('knowwhen_version')}, "
             f"format {run.info.get('format_version')})",
             f"model {run.config.model.name} {run.config.model.args or ''}\n{run.summary()}",
             f"classes ({len(run.class_names)}): {', '.join(run.class_names)}",
             f"data {data.get('source')} [{data.get('format')}], {data.get('images')} images, split "
             f"{data.get('sizes')}, held out: {', '.join(data.get('holdout_classes', [])) or 'none'}"]
    shown = {k: (f"{epoch_number(run.metrics)} (counted from 1, as training prints it)" if k == "best_epoch" else v)
             for k, v in run.metrics.items()}
    lines += [f"  {k:<14} {v:.4f}" if isinstance(v, float) else f"  {k:<14} {v}" for k, v in shown.items()]
    lines += [f"normalisation per channel: mean {_fmt(norm.mean)}, std {_fmt(norm.std)}{clip}",
              f"temperature {run.temperature:.4f} ("
              f"{run.info.get('temperature_note') or 'fitted on the validation logits; applied by predict'})",
              _mc_temperature_line(run.info),
              *_ensemble_lines(run.info.get("ensemble")),
              _posthoc_line(run.info),
              _calibration_line(run.info.get("calibration")),
              f"training time {run.info.get('train_seconds', 0):.1f} s"]
    return "\n".join(lines)


def _mc_temperature_line(info: dict) -> str:
    """The MC passes' temperature and what it did to the validation NLL of the MC mean."""
    fit = info.get("mc_temperature_fit")
    if info.get("mc_temperature") is None or not fit:
        return "MC temperature: none (MC passes use the softmax's temperature; knowwhen refit fits one)"
    how = (f"{fit['samples']} samples" if fit.get("samples", fit["mc_passes"]) != fit["mc_passes"]
           else f"MC x{fit['mc_passes']}")
    return (f"MC temperature {info['mc_temperature']:.4f} (fitted on {fit['images']} validation images, "
            f"{how}: NLL of the MC mean {fit['nll_at_softmax_temperature']:.4f} -> {fit['nll']:.4f})")


def _ensemble_lines(ensemble: dict | None) -> list[str]:
    """A deep ensemble's members: where they are, their seeds and their own test (or validation) accuracy."""
    if not ensemble:
        return []
    lines = [f"deep ensemble of {ensemble['members']} members (in {', '.join(ensemble['dirs'])}; prediction samples "
             "every MC pass of every member, or without --mc the members' own outputs)"]
    for m, (seed, metrics) in enumerate(zip(ensemble["training_seeds"], ensemble.get("member_metrics", []))):
        acc = {k: metrics[k] for k in ("test_acc", "val_acc") if metrics.get(k) is not None}
        lines.append(f"  member {m}: seed {seed}" + "".join(f", {k} {v:.4f}" for k, v in acc.items()))
    return lines


def _posthoc_line(info: dict) -> str:
    """The feature statistics and reference scores a run holds for the feature scores and the fused score."""
    f, r = info.get("features"), info.get("reference")
    parts = ([f"feature statistics of {f['images']} training images ({f['dims']} features, kNN bank {f['bank']})"]
             if f else []) + ([f"reference scores of {r['images']} validation images; novelty fuses "
                              + (", ".join(r["fused"]) if "fused" in r else "every measure (saved before the families)")
                              + (" (chosen with refit --fuse)" if r.get("fused_chosen") else "")]
                             if r else [])
    return ("novelty scores: " + "; ".join(parts)) if parts else \
        "novelty scores: no feature statistics or reference scores (knowwhen refit fits them)"


def _calibration_line(cal: dict | None) -> str:
    """Where the run's conformal calibration images come from, or how to get some."""
    if not cal:
        return "conformal sets: no calibration images (knowwhen conformal RUN DATA adds them)"
    mc = f"softmax and MC mean of {cal['mc_passes']} passes (seed {cal.get('seed')})" if cal.get("mc_passes") \
        else "softmax only"
    return f"conformal sets: calibrated on {cal.get('images')} images of {cal.get('source')} ({mc})"


def describe_forecaster(run, full: bool = False) -> str:
    """A forecaster run (`knowwhen.forecast.ForecastRun`) as text: one line with its validation and test errors,
    and with `full` also the model, series, scaling and noise estimate."""
    from ..models import model_summary

    c, s, m, lines = run.config, run.info.get("series", {}), run.metrics, []
    if full:
        lines += [f"run {run.path}  (knowwhen {run.info.get('knowwhen_version')}, format "
                  f"{run.info.get('format_version')})",
                  f"model {c.model.name} {c.model.args or ''}",
                  model_summary(run.model, (len(run.columns), c.window))]
        if getattr(run.model, "receptive_field", None):
            lines.append(f"receptive field: {run.model.receptive_field} time steps (window {c.window})")
        noise = run.info.get("noise", {})
        lines += [f"series {s.get('source')}: {s.get('length')} steps, columns {', '.join(run.columns)}, target "
                  f"{s.get('target')}; windows {s.get('sizes')}",
                  f"transform: {c.series.transform or 'none'}; scaling (training part): mean "
                  f"{[round(float(v), 4) for v in run.mean]}, std {[round(float(v), 4) for v in run.std]}",
                  f"observation noise per step (from the {noise.get('from')} residuals): "
                  f"{[round(v, 4) for v in noise.get('std', [])]}"]
    lines.append(f"saved forecaster {run.path}: {c.model.name}{' (stateful)' if c.stateful else ''}, window "
                 f"{c.window}, horizon {c.horizon} ({c.multistep}); best epoch {epoch_number(m)} of "
                 f"{m.get('epochs_run')}, {run.info.get('train_seconds', 0):.1f} s")
    lines += [f"  {part:<5} MAE {m[f'{part}_mae']:.4g}  RMSE {m[f'{part}_rmse']:.4g}  (dropout off, series units)"
              for part in ("val", "test") if f"{part}_mae" in m]
    return "\n".join(lines)
