"""The report's section on conformal prediction sets: coverage against the target per class, the set-size
histogram, and what the guarantee means."""
from __future__ import annotations

import numpy as np

from .figures import blank_figure
from .html import Section, figure_html, note_html, table_html


def conformal_section(c: dict, per_class: list[dict], preds: list[dict], class_names: set) -> Section:
    """Coverage against the target per class, the set-size histogram, and what the guarantee means."""
    by = "for every class separately (one threshold per class)" if c["by_class"] else "on average over images"
    cal = c.get("calibration", {})
    text = (f"Each image gets the set of classes whose {c['method'].upper()} score on the {c['probs']} "
            f"probabilities is within the threshold fitted on {cal.get('images', '?')} calibration images "
            f"({cal.get('source', '?')}). If new images are like the calibration images (exchangeable), a set holds "
            f"the true class with probability at least {c['target']:.0%}, {by}. This promise breaks when the "
            "images differ from the calibration images: a new plate, stain, microscope or cell line; recalibrate "
            "on labelled images from there with `knowwhen conformal RUN DATA`. An empty set or one larger than "
            f"{c['max_size']} classes is flagged: the model cannot name the image.")
    label = np.array([r.get("label", "") for r in preds])
    size = np.array([float(r["set_size"]) for r in preds]) if preds and "set_size" in preds[0] else np.empty(0)
    known = np.isin(label, list(class_names))
    groups = {"known": size[known]} | ({"novel": size[(label != "") & ~known]} if ((label != "") & ~known).any()
                                        else {})
    rows = [{"": "coverage (95% CI)", "value": f"{c['coverage']:.1%} [{c['ci_low']:.1%}, {c['ci_high']:.1%}], "
                                             f"target {c['target']:.0%}"},
            {"": "mean / median set size", "value": f"{c['mean_size']:.2f} / {c['median_size']:g}"},
            {"": "empty sets; flagged sets (empty or > max size)",
             "value": f"{c['empty_rate']:.1%}; {c['flag_rate']:.1%} of known images"
                      + (f", {c['novel_flag_rate']:.1%} of novel images" if "novel_flag_rate" in c else "")}]
    blocks = [table_html(rows), figure_html(coverage_figure(per_class, c["target"]), "coverage per class"),
              figure_html(set_size_figure(groups, len(class_names)), "set sizes")]
    if c.get("note"):
        blocks.insert(0, note_html(c["note"]))
    return Section("conformal", "Conformal prediction sets", text, blocks)


def coverage_figure(rows: list[dict], target: float):
    """Per class: the coverage of the conformal sets with its 95% Wilson interval, against the target 1 - alpha."""
    fig, ax = blank_figure(max(6.4, 0.45 * len(rows) + 2), 3.8)
    x = np.arange(len(rows))
    cov = np.array([float(r["coverage"]) for r in rows])
    lo = np.array([float(r["coverage_ci_low"]) for r in rows])
    hi = np.array([float(r["coverage_ci_high"]) for r in rows])
    ax.bar(x, cov, 0.6, color="#009E73", label="coverage", yerr=np.clip(np.nan_to_num([cov - lo, hi - cov]), 0, None),
           capsize=2, error_kw={"elinewidth": 1})
    ax.axhline(target, color="#D55E00", linestyle="--", label=f"target {target:.0%}")
    ax.set_xticks(x, [r["class"] for r in rows], rotation=45, ha="right")
    ax.set(ylabel="coverage (fraction)", ylim=(0, 1.22), title="Conformal coverage per class, 95% Wilson intervals")
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(frameon=False, loc="upper center", ncols=2)
    return fig


def set_size_figure(groups: dict[str, np.ndarray], classes: int):
    """Histogram of conformal set sizes (0 to `classes`) per group of images (e.g. known, novel), as fractions."""
    fig, ax = blank_figure(6.4, 3.4)
    sizes = np.arange(classes + 1)
    width = 0.8 / max(1, len(groups))
    colors = ("#0072B2", "#D55E00", "#009E73")
    for i, (name, values) in enumerate(groups.items()):
        counts = np.bincount(np.asarray(values, dtype=int), minlength=classes + 1)[:classes + 1]
        ax.bar(sizes + (i - (len(groups) - 1) / 2) * width, counts / max(1, len(values)), width,
               color=colors[i % len(colors)], label=f"{name} ({len(values)} images)")
    ax.set_xticks(sizes)
    ax.set(xlabel="set size (classes in the set)", ylabel="fraction of images", title="Conformal set sizes")
    ax.legend(frameon=False)
    return fig
