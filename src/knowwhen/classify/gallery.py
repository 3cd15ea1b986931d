"""The images a report shows: most uncertain, most confidently wrong, and novel images the model was sure of."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..evaluation.calibration import softmax
from .run import Run

GROUPS = {
    "uncertain": "Most uncertain images",
    "confident_wrong": "Most confidently wrong images",
    "novel_confident": "Novel images the model was sure about",
}


def gallery_indices(y: np.ndarray, measures: dict, size: int = 12) -> dict[str, np.ndarray]:
    """Row indices per gallery group. y: run class index, -1 novel, -2 unlabelled."""
    mc = "pred_mc" in measures
    pred = measures["pred_mc" if mc else "pred"]
    conf = measures["p_max_mc" if mc else "p_max"]
    uncertainty = measures["entropy_mc"] if mc else -measures["p_max"]
    known, novel = np.flatnonzero(y >= 0), np.flatnonzero(y == -1)
    wrong = known[pred[known] != y[known]]
    return {"uncertain": known[np.argsort(-uncertainty[known], kind="stable")[:size]],
            "confident_wrong": wrong[np.argsort(-conf[wrong], kind="stable")[:size]],
            "novel_confident": novel[np.argsort(-conf[novel], kind="stable")[:size]]}


def _caption(run: Run, label: str, probs: np.ndarray, measures: dict, i: int) -> str:
    top = np.argsort(-probs)[:3]
    lines = [f"true: {label or '?'}"] + [f"{r + 1}. {run.class_names[k]} {probs[k]:.2f}" for r, k in enumerate(top)]
    if "entropy_mc" in measures:  # the measures by their column names, as in the tables
        lines += [f"entropy_mc {measures['entropy_mc'][i]:.2f}", f"mutual_info_mc {measures['mutual_info_mc'][i]:.2f}"]
    else:
        lines.append(f"p_max {measures['p_max'][i]:.2f}")
    return "\n".join(lines)


def save_gallery(path: Path, run: Run, datasets: list, arrays: dict, size: int = 12) -> None:
    """Writes gallery.npz: per group, the raw images (n, C, H, W) and one caption per image."""
    y, m, origin = arrays["y"], arrays["measures"], arrays["origin"]
    probs_all = m.get("probs_mc")
    out = {}
    for group, rows in gallery_indices(y, m, size).items():
        images, captions = [], []
        for i in rows:
            ds = datasets[origin[i, 0]]
            images.append(ds.images([origin[i, 1]])[0])
            label = ds.class_names[ds.labels[origin[i, 1]]] if ds.labels[origin[i, 1]] >= 0 else ""
            probs = probs_all[i] if probs_all is not None else softmax(arrays["logits"][i:i + 1] / run.temperature)[0]
            captions.append(_caption(run, label, probs, m, i))
        out[f"{group}_images"] = np.array(images, dtype=np.float32).reshape(len(images), *run.input_shape)
        out[f"{group}_captions"] = np.array(captions, dtype=str)
    out["channel_names"] = np.array(run.channel_names, dtype=str)  # the report's colour legend
    out["groups"] = np.array(list(GROUPS), dtype=str)  # the report shows the groups in this order, titled so
    out["group_titles"] = np.array(list(GROUPS.values()), dtype=str)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **out)
