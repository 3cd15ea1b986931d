"""Evaluation summaries as short plain-text tables for the terminal."""
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
    lines.append("selective prediction (accuracy of the kept images):")
    lines.append(f"  {'measure':<20}{'@90%':>8}{'@80%':>8}{'AURC':>8}")
    lines += [f"  {r['measure']:<20}{r['accuracy_at_90']:>8.3f}{r['accuracy_at_80']:>8.3f}{r['aurc']:>8.4f}"
              for r in summary["selective"]]
    return "\n".join(lines)
