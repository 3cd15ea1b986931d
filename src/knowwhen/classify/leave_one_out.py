"""The leave-one-class-out experiment: train without class c, then score known vs c, for each class."""
from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data import open_dataset
from ..errors import ConfigError
from ..evaluation.summary import NOVELTY_CONVENTION
from ..tables import write_rows_csv

log = logging.getLogger("knowwhen")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def _chosen(all_classes: tuple[str, ...], classes) -> list[str]:
    if classes in (None, "all") or list(classes) == ["all"]:
        return list(all_classes)
    unknown = [c for c in classes if c not in all_classes]
    if unknown:
        raise ConfigError(f"--classes: no class {', '.join(map(repr, unknown))} (classes: {', '.join(all_classes)}).")
    return list(classes)


def _one_class(config: TrainConfig, ds, cls: str, out: Path, mc: int, seed: int, progress: bool) -> list[dict]:
    from ..training.rundir import read_config
    from .evaluate import EvaluateOptions, evaluate_run
    from .run import load_run
    from .train_run import train

    run_dir, eval_dir = out / "runs" / _slug(cls), out / "evals" / _slug(cls)
    if (eval_dir / "metrics.json").exists():
        log.info("%s: already done, skipped", cls)
        return json.loads((eval_dir / "metrics.json").read_text())["novelty"]["measures"]
    cfg = dataclasses.replace(config, data=dataclasses.replace(config.data, holdout_classes=(cls,)))
    status = read_config(run_dir).get("status") if (run_dir / "config.json").exists() else None
    if status != "complete":
        log.info("%s: training without it", cls)
        train(cfg, run_dir, dataset=ds, resume=status is not None)
    summary = evaluate_run(load_run(run_dir), ds, eval_dir, EvaluateOptions(mc=mc, seed=seed, progress=progress))
    return summary["novelty"]["measures"]


def novelty_experiment(config: TrainConfig, out: str | Path, classes=None, mc: int = 100, seed: int = 0,
                       progress: bool = True) -> list[dict]:
    """For each class: train `config` with that class held out, evaluate known test images vs the class.

    Writes out/runs/<class>/, out/evals/<class>/ and out/novelty.csv (one row per class and measure:
    AUROC, AUPR, FPR at 95% TPR; novel = positive, higher score = more uncertain). Classes whose
    evaluation exists are skipped, so a rerun continues where a killed one stopped.
    """
    out = Path(out)
    d = config.data
    ds = open_dataset(d.source, d.format, d.options, d.skip_bad)
    rows = []
    for cls in _chosen(ds.class_names, classes):
        rows += [{"heldout_class": cls, **r} for r in _one_class(config, ds, cls, out, mc, seed, progress)]
        write_rows_csv(out / "novelty.csv", rows)
    return rows


def auroc_table(rows: list[dict]) -> str:
    """Held-out class x measure AUROC as text, with the mean per measure."""
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    classes = list(dict.fromkeys(r["heldout_class"] for r in rows))
    value = {(r["heldout_class"], r["measure"]): float(r["auroc"]) for r in rows}
    width = max(12, *(len(c) + 2 for c in classes))
    lines = [f"AUROC known vs held-out class ({NOVELTY_CONVENTION})",
             f"{'held out':<{width}}" + "".join(f"{m:>20}" for m in measures)]
    lines += [f"{c:<{width}}" + "".join(f"{value[c, m]:>20.3f}" for m in measures) for c in classes]
    lines.append(f"{'mean':<{width}}" + "".join(f"{np.mean([value[c, m] for c in classes]):>20.3f}" for m in measures))
    return "\n".join(lines)
