"""Figures from computed results (rows and arrays in, matplotlib Figures out). Nothing is recomputed here.

Colours: the Okabe-Ito palette (colour-blind-safe), one fixed colour per measure in every figure.
"""
from __future__ import annotations

import numpy as np

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
MEASURE_COLORS = {"p_max": "#000000", "p_max_mc": "#E69F00", "sigma_mc": "#56B4E9", "entropy_mc": "#009E73",
                  "mutual_info_mc": "#0072B2", "variation_ratio_mc": "#D55E00", "random": "#999999",
                  "oracle": "#CC79A7", "energy": "#E69F00", "mahalanobis": "#56B4E9", "rel_mahalanobis": "#F0E442",
                  "gauss_density": "#009E73", "knn": "#0072B2", "novelty": "#CC79A7", "set_size": "#D55E00"}
# Feature-space scores reuse the palette dashed, set size dotted, the fused score thick: colour + line tell apart.
MEASURE_LINES = {"energy": "--", "mahalanobis": "--", "rel_mahalanobis": "--", "gauss_density": "--", "knn": "--",
                 "set_size": ":", "random": "--", "oracle": "--"}


def _line(name: str) -> dict:
    """Colour, line style and width of a measure's curve."""
    return {"color": MEASURE_COLORS.get(name), "linestyle": MEASURE_LINES.get(name, "-"),
            "linewidth": 2.4 if name == "novelty" else 1.5}
SMALL_GROUP = 50   # fewer images than this in a histogram group: counts, not density
BEFORE_AFTER = {"softmax_untempered": "#D55E00", "softmax_tempered": "#0072B2", "mc_mean": "#CC79A7",
                "mc_mean_softmax_temperature": "#009E73", "mc_temperature_scaled": "#CC79A7",
                "deterministic": "#D55E00", "temperature_scaled": "#0072B2", "mc": "#009E73"}  # and before 0.2


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def blank_figure(w: float = 6.4, h: float = 3.6, ncols: int = 1):
    """A new figure (w x h inches, `ncols` axes side by side, constrained layout) and its axes."""
    plt = _plt()
    fig, axes = plt.subplots(1, ncols, figsize=(w, h), constrained_layout=True)
    return fig, axes


def training_curves(rows: list[dict]):
    """Loss and accuracy (classifiers) or MAE (forecasters) per epoch, train and validation, from metrics.csv."""
    fig, (ax_loss, ax_acc) = blank_figure(9, 3.4, 2)
    epoch = [int(r["epoch"]) + 1 for r in rows]
    second = "acc" if "train_acc" in rows[0] else "mae"
    for split, style in (("train", "-"), ("val", "--")):
        for ax, key in ((ax_loss, "loss"), (ax_acc, second)):
            values = [float(r[f"{split}_{key}"]) for r in rows]
            if not np.all(np.isnan(values)):
                ax.plot(epoch, values, style, marker="o", color="#0072B2" if split == "train" else "#D55E00",
                        label="training" if split == "train" else "validation")
    if second == "acc":
        ax_loss.set(xlabel="epoch", ylabel="loss (nats)", title="Loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy (fraction)", title="Accuracy")
    else:
        ax_loss.set(xlabel="epoch", ylabel="loss (scaled units)", title="Loss")
        ax_acc.set(xlabel="epoch", ylabel="MAE (scaled units)", title="Mean absolute error")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.legend(frameon=False)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def per_class_accuracy(rows: list[dict]):
    """Accuracy per class with its 95% Wilson interval (deterministic and, if present, MC)."""
    fig, ax = blank_figure(max(6.4, 0.45 * len(rows) + 2), 3.8)
    x = np.arange(len(rows))
    kinds = [("", "dropout off", "#0072B2")] + ([("_mc", "MC mean", "#E69F00")] if "accuracy_mc" in rows[0] else [])
    width = 0.8 / len(kinds)
    for i, (suffix, label, color) in enumerate(kinds):
        acc = np.array([float(r[f"accuracy{suffix}"]) for r in rows])
        lo = np.array([float(r[f"ci_low{suffix}"]) for r in rows])
        hi = np.array([float(r[f"ci_high{suffix}"]) for r in rows])
        ax.bar(x + (i - (len(kinds) - 1) / 2) * width, acc, width, color=color, label=label,
               yerr=np.clip(np.nan_to_num([acc - lo, hi - acc]), 0, None),  # rounding can dip below 0
               capsize=2, error_kw={"elinewidth": 1})
    ax.set_xticks(x, [r["class"] for r in rows], rotation=45, ha="right")
    ax.set(ylabel="accuracy (fraction)", ylim=(0, 1.22), title="Per-class accuracy with 95% Wilson intervals")
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(frameon=False, loc="upper center", ncols=2)
    return fig


def confusion(cm: np.ndarray, class_names):
    """Confusion matrix, rows normalised to the fraction of each true class."""
    fig, ax = blank_figure(max(4.5, 0.5 * len(class_names) + 2), max(4, 0.5 * len(class_names) + 1.5))
    frac = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (fraction of true class)")
    if len(class_names) <= 20:
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    return fig


def reliability(rows: list[dict], summary: dict):
    """Reliability diagram (accuracy vs confidence per bin) above a confidence histogram, per probability set."""
    plt = _plt()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True, height_ratios=[3, 1],
                                   constrained_layout=True)
    ax.plot([0, 1], [0, 1], ":", color="#999999", label="perfect calibration")
    for name in dict.fromkeys(r["probs"] for r in rows):
        sel = [r for r in rows if r["probs"] == name and int(r["count"]) > 0]
        centre = [(float(r["bin_low"]) + float(r["bin_high"])) / 2 for r in sel]
        label = f"{name.replace('_', ' ')} (ECE {summary[name]['ece']:.3f})"
        ax.plot([float(r["confidence"]) for r in sel], [float(r["accuracy"]) for r in sel], "o-",
                color=BEFORE_AFTER.get(name), label=label)
        hist.bar(centre, [int(r["count"]) for r in sel], width=1 / 15, alpha=0.5, color=BEFORE_AFTER.get(name))
    ax.set(ylabel="accuracy in bin (fraction)", title="Reliability diagram (15 equal-width bins)", ylim=(0, 1))
    ax.legend(frameon=False, loc="upper left")
    hist.set(xlabel="confidence = max probability", ylabel="images", xlim=(0, 1))
    return fig


def measure_distributions(values: dict[str, np.ndarray], groups: dict[str, np.ndarray], title: str):
    """One histogram panel per measure, the image groups (e.g. correct / wrong) overlaid."""
    names = list(values)
    cols = min(3, len(names))
    rows_n = int(np.ceil(len(names) / cols))
    plt = _plt()
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.3 * cols, 2.6 * rows_n), constrained_layout=True,
                             squeeze=False)
    group_colors = ["#0072B2", "#D55E00"]
    # A density of a handful of images reads as nonsense (1250 for 3 images in a narrow bin): counts instead.
    density = min(int(m.sum()) for m in groups.values() if m.any()) >= SMALL_GROUP
    for ax, name in zip(axes.flat, names):
        v = values[name]
        bins = np.linspace(np.nanmin(v), np.nanmax(v) + 1e-9, 30)
        for (label, mask), color in zip(groups.items(), group_colors):
            if mask.any():
                ax.hist(v[mask], bins=bins, density=density, alpha=0.55, color=color, label=f"{label} ({mask.sum()})")
        ax.set_title(name, color=MEASURE_COLORS.get(name, "black"), fontsize=10)
        ax.set(xlabel="value", ylabel="density" if density else "images")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    return fig


def roc_curves(roc_rows: list[dict], table: list[dict]):
    """ROC curve per measure, known vs novel (novel positive), AUROC in the legend."""
    fig, ax = blank_figure(5.6, 4.6)
    ax.plot([0, 1], [0, 1], ":", color="#999999", label="chance (0.5)")
    auroc = {r["measure"]: float(r["auroc"]) for r in table}
    for name in auroc:
        sel = [r for r in roc_rows if r["measure"] == name]
        ax.plot([float(r["fpr"]) for r in sel], [float(r["tpr"]) for r in sel], **_line(name),
                label=f"{name} (AUROC {auroc[name]:.3f})")
    ax.set(xlabel="false positive rate (known flagged as novel)", ylabel="true positive rate (novel flagged)",
           title="Known vs novel ROC")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def novelty_heatmap(rows: list[dict]):
    """Held-out class x measure AUROC from a leave-one-class-out novelty.csv."""
    classes = list(dict.fromkeys(r["heldout_class"] for r in rows))
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    value = {(r["heldout_class"], r["measure"]): float(r["auroc"]) for r in rows}
    grid = np.array([[value[c, m] for m in measures] for c in classes])
    fig, ax = blank_figure(1.3 * len(measures) + 2.5, 0.45 * len(classes) + 1.8)
    im = ax.imshow(grid, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(measures)), measures, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(measures)):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if grid[i, j] < 0.75 else "black")
    ax.set(title="AUROC per held-out class (leave-one-class-out)")
    fig.colorbar(im, ax=ax, label="AUROC")
    return fig


def selective(rows: list[dict]):
    """Accuracy of the kept images vs fraction rejected (lift chart), and risk vs coverage."""
    fig, (lift, risk) = blank_figure(10, 3.8, 2)
    for name in dict.fromkeys(r["measure"] for r in rows):
        sel = [r for r in rows if r["measure"] == name]
        lift.plot([float(r["rejected"]) for r in sel], [float(r["accuracy"]) for r in sel], **_line(name), label=name)
        risk.plot([float(r["coverage"]) for r in sel], [1 - float(r["accuracy"]) for r in sel], **_line(name))
    lift.set(xlabel="fraction rejected (most uncertain first)", ylabel="accuracy of kept images",
             title="Filtering uncertain predictions")
    risk.set(xlabel="coverage (fraction kept)", ylabel="risk = error rate of kept images", title="Risk-coverage")
    lift.legend(frameon=False, fontsize=8)
    return fig


def time_axis(stamps: list[str]) -> np.ndarray | None:
    """Stamps read back from CSV as numbers or dates (what the x axis can place), None for text labels."""
    from ..data.series import parse_times

    t = parse_times(stamps)
    return t if t.dtype.kind in "fM" else None


def forecast_band(rows: list[dict], step: int, history: tuple[np.ndarray, np.ndarray] | None = None):
    """The actual series, the forecast `step` steps ahead (MC mean, dropout off) and its 90% MC interval."""
    sel = [r for r in rows if int(r["step"]) == step]
    t = time_axis([r["time"] for r in sel])
    if t is None:  # text labels: plot in order, without the history
        t, history = np.arange(len(sel)), None
    fig, ax = blank_figure(10, 3.6)
    if history is not None:  # the test part and as much history again before it
        start = t.min() - (t.max() - t.min())
        keep = history[0] >= start
        ax.plot(history[0][keep], history[1][keep], color="#999999", lw=1, label="series")
    actual = np.array([float(r["actual"]) if r["actual"] != "" else np.nan for r in sel])
    ax.plot(t, actual, color="#000000", lw=1.2, marker=".", label="actual")
    if "q05" in sel[0]:
        ax.fill_between(t, [float(r["low_90"]) for r in sel], [float(r["high_90"]) for r in sel], color="#56B4E9",
                        alpha=0.25, label="90% interval, MC + noise")
        ax.fill_between(t, [float(r["q05"]) for r in sel], [float(r["q95"]) for r in sel], color="#0072B2",
                        alpha=0.35, label="90% interval, MC passes")
        ax.plot(t, [float(r["mean"]) for r in sel], color="#0072B2", lw=1.5, label="MC mean")
    ax.plot(t, [float(r["point"]) for r in sel], "--", color="#D55E00", lw=1, label="dropout off")
    ax.set(xlabel="time", ylabel="value", title=f"Forecasts {step} step(s) ahead on the test part")
    ax.legend(frameon=False, fontsize=8, ncol=5)
    ax.grid(alpha=0.3)
    return fig


def coverage_per_horizon(rows: list[dict]):
    """Coverage of the 90% intervals (MC passes alone, and MC + noise) and their mean width per forecast step."""
    fig, (cov, width) = blank_figure(9, 3.2, 2)
    steps = np.array([int(r["step"]) for r in rows])
    for offset, suffix, label, color in ((-0.2, "_mc", "MC passes", "#0072B2"), (0.2, "", "MC + noise", "#56B4E9")):
        cov.bar(steps + offset, [float(r[f"coverage_90{suffix}"]) for r in rows], 0.4, color=color, label=label)
        width.bar(steps + offset, [float(r[f"width_90{suffix}"]) for r in rows], 0.4, color=color, label=label)
    cov.axhline(0.9, color="#D55E00", ls="--", label="nominal 0.90")
    cov.set(xlabel="step ahead", ylabel="fraction of actuals inside", ylim=(0, 1), title="Coverage of the 90% interval")
    cov.legend(frameon=False, fontsize=8)
    width.set(xlabel="step ahead", ylabel="mean width (series units)", title="Interval width")
    from matplotlib.ticker import MaxNLocator

    for ax in (cov, width):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def composite(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) grey or (H, W, 3) colour, each channel scaled by its 1st-99th percentiles.

    Two channels (e.g. DeepLoc's RFP and DIC) become magenta and green.
    """
    def scaled(ch):
        lo, hi = np.percentile(ch, [1, 99])
        return np.clip((ch - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    chans = [scaled(c) for c in image[:3]]
    if len(chans) == 1:
        return chans[0]
    if len(chans) == 2:
        return np.stack([chans[0], chans[1], chans[0]], -1)
    return np.stack(chans, -1)


def composite_legend(channel_names, channels: int) -> str:
    """Which colour shows which channel in `composite`, e.g. "magenta = RFP, green = DIC"."""
    names = list(channel_names) or [f"channel {i + 1}" for i in range(channels)]
    colours = {1: ["grey"], 2: ["magenta", "green"]}.get(min(channels, 3), ["red", "green", "blue"])
    legend = ", ".join(f"{c} = {n}" for c, n in zip(colours, names))
    return legend + (f" (channels {', '.join(names[3:])} not shown)" if channels > 3 else "")


def gallery(images: np.ndarray, captions: list[str], title: str, cols: int = 5):
    """A grid of images, each with its caption (true label, top-3 classes, measures) in a legible size."""
    plt = _plt()
    rows_n = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows_n, cols, figsize=(2.7 * cols, 3.6 * rows_n), constrained_layout=True,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap in zip(axes.flat, images, captions):
        ax.imshow(composite(img), cmap="gray")
        ax.set_title(cap, fontsize=9, loc="left")
    fig.suptitle(title)
    return fig


def filters(weights: np.ndarray, max_filters: int = 32):
    """First-layer filters (F, C, kh, kw) as small images (colour composite for several channels)."""
    w = weights[:max_filters]
    cols = min(8, len(w))
    plt = _plt()
    rows_n = int(np.ceil(len(w) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(1.1 * cols, 1.2 * rows_n + 0.4), constrained_layout=True,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, f) in enumerate(zip(axes.flat, w)):
        ax.imshow(composite(f), cmap="gray", interpolation="nearest")
        ax.set_title(str(i), fontsize=7)
    fig.suptitle(f"First-layer filters ({weights.shape[0]} of {weights.shape[2]}x{weights.shape[3]})")
    return fig


def activations(maps: list[tuple[str, np.ndarray]], image: np.ndarray, per_layer: int = 8):
    """The input image, then the first `per_layer` channels of each conv layer's activation map."""
    plt = _plt()
    rows_n = len(maps) + 1
    fig, axes = plt.subplots(rows_n, per_layer, figsize=(1.3 * per_layer, 1.4 * rows_n), constrained_layout=True,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(composite(image), cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for r, (name, act) in enumerate(maps, start=1):
        for c in range(min(per_layer, len(act))):
            axes[r, c].imshow(act[c], cmap="magma")
        axes[r, 0].set_title(f"layer {name}", fontsize=8, loc="left")
    fig.suptitle("Activation maps after ReLU (brighter = stronger response)")
    return fig


def class_inputs(images: np.ndarray, names):
    """One class-maximising input per class."""
    return gallery(images, [str(n) for n in names], "Inputs that maximise each class (gradient ascent)",
                   cols=min(6, len(images)))
