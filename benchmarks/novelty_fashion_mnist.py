"""Leave-one-class-out novelty detection on Fashion-MNIST: for each of the 10 classes, train the course cnn
(or --model) without it (a few epochs), then score the known test images against the held-out class with every measure.

Prints and writes the class x measure AUROC table (novel = positive class; higher score = more uncertain,
p_max and p_max_mc negated) and, per class, whether the best MC measure beats p_max. Every measure includes
the feature-space scores (energy, mahalanobis, rel_mahalanobis, gauss_density, knn) and the fused `novelty` score;
other ways of fusing (every score; the minimum p-value; Fisher's method over other subsets, among them the defaults
before; other unions of feature-space views) are computed from the same predictions and the runs' validation
references. A second
novelty set is far away: scikit-learn's digits upscaled to 28x28 (every run scores them against the known test images).
Per score and fusion the trade-off is written: mean AUROC, worst margin over p_max (and its class), classes where it
beats or ties p_max (within 0.01), far-away mean. The nested protocol: for each held-out class c, a fusion is chosen
among the candidates from the other nine runs only (none of which saw c as novel) and scored on c; the default itself
was chosen on seed 0's runs, so a --seed 1 replicate is its out-of-sample check.
Runs whose reference was made with other fused scores (an earlier experiment in --out) get a new reference and a new
evaluation; their networks are kept.
Runs and evaluations go to a scratch folder (default: a temporary one), not into the repository; the
experiment is resumable with --out.
With --ensemble M every run is a deep ensemble of M members (results in novelty_fashion_mnist_ensemble<M>.json;
--mc 0 is the plain deep ensemble, its M members' outputs the samples of every measure).
Another --model than cnn or --epochs than 2 writes novelty_fashion_mnist[_<model>][_ensemble<M>]_epochs<E>.json.
Run: .venv/bin/python benchmarks/novelty_fashion_mnist.py [--model cnn] [--epochs 2] [--mc 100] [--ensemble 5]
     [--seed 0] [--out /tmp/nov]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.classify.leave_one_out import _slug, auroc_table, novelty_experiment
from knowwhen.evaluation.novelty import novelty_metrics
from knowwhen.uncertainty.fusion import UNION, combined_score, fusion_members, member_p_values, member_scores
from knowwhen.uncertainty.measures import CONFIDENCE_MEASURES, FEATURE_SCORES, MEASURES

# Fusions compared with the default (Fisher over one score per family, `knowwhen.uncertainty.fusion.FAMILIES`).
FUSIONS = {
    "fisher_every_measure": ("fisher", None),  # every score the reference holds
    "min_every_measure": ("min", None),
    # the default before the look-alike scores (knowwhen 0.x up to this change): MC doubt, energy, rel_mahalanobis, knn
    "fisher_mi_energy_rel_mahalanobis_knn": ("fisher", ("mutual_info_mc", "energy", "rel_mahalanobis", "knn")),
    "fisher_families_p_max": ("fisher", ("p_max", "energy", "rel_mahalanobis", "knn")),
    "fisher_mi_p_max_energy_rel_mahalanobis_knn": ("fisher", ("mutual_info_mc", "p_max", "energy", "rel_mahalanobis",
                                                              "knn")),
    "fisher_mi_rel_mahalanobis_knn": ("fisher", ("mutual_info_mc", "rel_mahalanobis", "knn")),
    "fisher_default_plus_knn": ("fisher", ("mutual_info_mc", "energy", "mahalanobis_tie", "own_mahalanobis", "knn")),
    "fisher_default_plus_p_max": ("fisher", ("mutual_info_mc", "p_max", "energy", "mahalanobis_tie",
                                             "own_mahalanobis")),
    "fisher_mi_energy_mahalanobis_tie": ("fisher", ("mutual_info_mc", "energy", "mahalanobis_tie")),
    # the default before the union family: the two feature-space views as two families, their evidence added
    "fisher_mi_energy_tie_own": ("fisher", ("mutual_info_mc", "energy", "mahalanobis_tie", "own_mahalanobis")),
    # unions (min-p, Bonferroni) of feature-space views other than the default's
    "fisher_mi_energy_tie|own|rel_mahalanobis": ("fisher", ("mutual_info_mc", "energy", UNION.join(
        ("mahalanobis_tie", "own_mahalanobis", "rel_mahalanobis")))),
    "fisher_mi_energy_tie_own|rel_mahalanobis": ("fisher", ("mutual_info_mc", "energy", "mahalanobis_tie",
                                                            "own_mahalanobis" + UNION + "rel_mahalanobis")),
    "min_families": ("min", fusion_members((*MEASURES, *FEATURE_SCORES))),
}
# The nested choice: the fusion with the best mean AUROC over the other classes among those within TIE of p_max on
# every other class and >= FAR_TARGET on far-away digits (else the one with the best worst-class margin).
TIE, WITHIN, FAR_TARGET = 0.01, 0.03, 0.97


def _oriented(values: dict, name: str) -> np.ndarray:
    return -values[name] if name in CONFIDENCE_MEASURES else values[name]


def _fusion_aurocs(run, values: dict, novel: np.ndarray) -> dict[str, float]:
    """AUROC of each fusion in FUSIONS, from per-image measure values and the run's validation reference."""
    out = {}
    for name, (how, chosen) in FUSIONS.items():
        names = [m for m in (chosen or run.reference) if m != "novelty"
                 and all(k in run.reference and k in values for k in member_scores(m))]
        score = combined_score([member_p_values(run.reference, values, m) for m in names], how)
        out[name] = novelty_metrics(score[~novel], score[novel]).auroc
    return out


def _columns(path) -> dict[str, np.ndarray]:
    import csv

    rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _digits_28() -> np.ndarray:
    """scikit-learn's digits (0..16) upscaled to 28x28 and to Fashion-MNIST's 0..255 range."""
    import torch
    from sklearn.datasets import load_digits

    x = torch.from_numpy(load_digits().images[:, None].astype(np.float32) * (255 / 16))
    return torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).numpy()


def _extra(out: str, classes: list[str], mc: int) -> tuple[dict, dict]:
    """Per held-out class: AUROC of the other fusions (held-out class), and of every measure for far digits."""
    from pathlib import Path

    fusions, far = {}, {}
    digits = kw.dataset_from_arrays(_digits_28(), name="digits-28x28")
    for cls in classes:
        run = kw.load_run(Path(out) / "runs" / _slug(cls))
        cols = _columns(Path(out) / "evals" / _slug(cls) / "predictions.csv")
        measures = [m for m in (*MEASURES, *FEATURE_SCORES, "novelty") if m in cols]
        values = {m: cols[m].astype(float) for m in measures}
        known, novel = np.isin(cols["label"], run.class_names), cols["label"] == cls
        fusions[cls] = _fusion_aurocs(run, {m: v[known | novel] for m, v in values.items()}, novel[known | novel])
        batches = list(kw.predict_dataset(run, digits, kw.run_engine(run, mc or None), batch_size=1000, progress=False))
        far_values = {m: np.concatenate([b.measures[m] for b in batches]) for m in measures}
        both = {m: np.concatenate([values[m][known], far_values[m]]) for m in measures}
        is_far = np.r_[np.zeros(known.sum(), bool), np.ones(len(digits), bool)]
        far[cls] = {m: novelty_metrics(_oriented(both, m)[~is_far], _oriented(both, m)[is_far]).auroc
                    for m in measures}
        far[cls].update({f"fusion_{k}": v for k, v in _fusion_aurocs(run, both, is_far).items()})
    return fusions, far


def _refit_stale(out: str) -> None:
    """Runs of an earlier experiment in `out` whose reference lacks today's fused scores get a new reference (the
    networks are kept) and lose their evaluation, so that it is redone with today's `novelty`."""
    import shutil
    from pathlib import Path

    from knowwhen.classify.posthoc import refit_run
    from knowwhen.training.rundir import read_config

    for run_dir in sorted((Path(out) / "runs").glob("*")) if (Path(out) / "runs").exists() else []:
        if read_config(run_dir).get("status") != "complete":  # training resumes it, with today's reference
            continue
        run = kw.load_run(run_dir)
        if run.reference is None:
            continue
        if tuple(run.reference.fused or ()) != fusion_members((*MEASURES, *FEATURE_SCORES)):
            print(f"{run_dir.name}: reference made with other fused scores ({run.reference.fused}); refitting it")
            refit_run(run_dir, parts=["reference"], progress=False)
            shutil.rmtree(Path(out) / "evals" / run_dir.name, ignore_errors=True)


def _summary_of(aurocs: dict, far: dict, name: str, p_max: dict) -> dict:
    """Mean, worst margin over p_max, classes within TIE of p_max or above, far-away mean, of one score."""
    margins = {c: aurocs[c] - p_max[c] for c in aurocs}
    return {"mean": round(float(np.mean(list(aurocs.values()))), 4),
            "worst_margin_vs_p_max": round(min(margins.values()), 4), "worst_class": min(margins, key=margins.get),
            f"classes_beating_or_within_{TIE}_of_p_max": int(sum(m >= -TIE for m in margins.values())),
            "far_digits_mean": round(float(np.mean([far[c][name] for c in far])), 4)}


def _nested_choice(by_class: dict, far: dict, candidates: list[str]) -> dict:
    """For each class c: the candidate chosen on the other classes only (module rule), and its AUROC on c."""
    chosen = {}
    for c in by_class:
        others = [o for o in by_class if o != c]

        def merit(name):
            worst = min(by_class[o][name] - by_class[o]["p_max"] for o in others)
            far_mean = np.mean([far[o][name] for o in others])
            mean = np.mean([by_class[o][name] for o in others])
            return (1, mean) if worst >= -WITHIN and far_mean >= FAR_TARGET else (0, worst)

        best = max(candidates, key=merit)
        chosen[c] = {"chosen": best, "auroc": by_class[c][best], "margin_vs_p_max": by_class[c][best] -
                     by_class[c]["p_max"], "far_digits": far[c][best]}
    aurocs = [v["auroc"] for v in chosen.values()]
    return {"rule": f"best mean over the other classes among fusions within {WITHIN} of p_max on each of them and "
                    f">= {FAR_TARGET} on far digits", "per_class": chosen, "mean": round(float(np.mean(aurocs)), 4),
            "worst_margin_vs_p_max": round(min(v["margin_vs_p_max"] for v in chosen.values()), 4),
            "far_digits_mean": round(float(np.mean([v["far_digits"] for v in chosen.values()])), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--mc", type=int, default=100)
    p.add_argument("--classes", default="all")
    p.add_argument("--out", default=None)
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--model", default="cnn", help="a registered image model (`knowwhen models`)")
    p.add_argument("--seed", type=int, default=0, help="the training seed (a replicate of the whole experiment)")
    args = p.parse_args()
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    config = kw.TrainConfig(kw.DataConfig(name), kw.ModelConfig(args.model), epochs=args.epochs, progress=False,
                            ensemble=args.ensemble, calibration_mc=args.mc, seed=args.seed)
    start = time.perf_counter()
    classes = None if args.classes == "all" else args.classes.split(",")
    out = args.out or tempfile.mkdtemp(prefix="kw-novelty-")
    _refit_stale(out)
    rows = novelty_experiment(config, out, classes, args.mc or None, progress=False)
    table = auroc_table(rows)
    print(table)
    by_class: dict[str, dict[str, float]] = {}
    for r in rows:
        by_class.setdefault(r["heldout_class"], {})[r["measure"]] = float(r["auroc"])
    mc_beats = {c: max((v for m, v in a.items() if m.endswith("_mc")), default=0) > a["p_max"]
                for c, a in by_class.items()}
    measures = list(next(iter(by_class.values())))
    fusions, far = _extra(out, list(by_class), args.mc)
    for c in by_class:
        by_class[c].update({f"fusion_{k}": v for k, v in fusions[c].items()})
    every = list(next(iter(by_class.values())))
    winner = {c: max(a, key=a.get) for c, a in by_class.items()}
    novelty_beats = {c: a["novelty"] > a["p_max"] for c, a in by_class.items()} if "novelty" in measures else {}
    p_max = {c: a["p_max"] for c, a in by_class.items()}
    scored = [m for m in every if m not in CONFIDENCE_MEASURES or m == "p_max"]
    trade_off = {m: _summary_of({c: a[m] for c, a in by_class.items()}, far, m, p_max) for m in scored}
    fusion_names = ["novelty"] + [m for m in every if m.startswith("fusion_")]
    nested = _nested_choice(by_class, far, fusion_names)
    print("default `novelty`:", trade_off["novelty"])
    print("nested choice among the fusions:", {k: v for k, v in nested.items() if k != "per_class"})
    print("per class, the best score:", winner)
    far_mean = {m: round(float(np.mean([f[m] for f in far.values()])), 4) for m in next(iter(far.values()))}
    print("far-away digits, mean AUROC over the 10 runs:", far_mean)
    suffix = "".join(part for part, asked in ((f"_{args.model}", args.model != "cnn"),
                                              (f"_ensemble{args.ensemble}", args.ensemble > 1),
                                              (f"_epochs{args.epochs}", args.epochs != 2),
                                              (f"_seed{args.seed}", args.seed != 0)) if asked)
    write_result(f"novelty_fashion_mnist{suffix}", {
        "dataset": name, "model": args.model, "epochs_per_class": args.epochs, "mc_passes": args.mc,
        "ensemble_members": args.ensemble,
        "convention": "novel = positive class; higher score = more uncertain (p_max, p_max_mc negated)",
        "auroc": by_class,
        "mean_auroc": {m: round(float(np.mean([a[m] for a in by_class.values()])), 4) for m in every},
        "best_score_per_class": winner,
        "novelty_beats_p_max": novelty_beats, "classes_where_novelty_beats_p_max": int(sum(novelty_beats.values())),
        "far_digits_auroc": far, "far_digits_mean_auroc": far_mean,
        "default_fused_members": list(fusion_members((*MEASURES, *FEATURE_SCORES))),
        "trade_off": trade_off, "nested_fusion_choice": nested,
        "best_mc_measure_beats_p_max": mc_beats,
        "classes_where_mc_beats_p_max": int(sum(mc_beats.values())),
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "table": table.splitlines(),
    })


if __name__ == "__main__":
    main()
