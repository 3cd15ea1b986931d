"""Which fusion for `novelty`, judged on every seed: weighted Fisher fusions of knowwhen's own scores on the
leave-one-class-out runs of several `novelty_fashion_mnist.py --out DIR --seed S` replicates (run those first).

Per run (trained without class c), the scores are the run's own: the test images' measures from its evaluation
(`evals/<c>/predictions.csv`, known test images vs class c), far-away digits (scikit-learn's digits upscaled,
MC T = 100, seed 0) predicted here, and the validation reference the run's `novelty` uses (`run.reference`), so each
score's p-value is knowwhen's own (bounded tail included). A fusion is sum_i w_i (-ln p_i) over --pool with integer
weights from --weights (equal weights are Fisher's method; the score orders images as Fisher's combined p-value).

The targets are read on every seed of --choose-on: worst class within 0.03 of p_max, far-away digits >= 0.97, and
the mean >= that seed's first members (Fisher over mutual_info_mc, energy, rel_mahalanobis, knn; the mean the issue
calls "today's"). Written: the frontier (per bound on the worst margin, on every seed, the fusion with the best
smallest mean gain over the first members), the fusions that meet all three targets on every seed, and, on the
seeds of --test-on (not used to choose), the frontier's choice at -0.03 beside the default and the first members.
On every seed, the nested choice: for each class, the fusion chosen on the other nine classes of that seed (what a
fusion learned from a user's own leave-one-class-out runs would give), scored on the held-out class.
Novel = positive class; higher score = more novel.
Run: .venv/bin/python benchmarks/novelty_fusion_seeds.py --choose-on /tmp/nov5 /tmp/nov5s1 /tmp/nov5s2
     --test-on /tmp/nov5s3 [--weights 0,1,2] [--name novelty_fusion_seeds]
"""
from __future__ import annotations

import argparse
import csv
import itertools
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from _common import write_result
from novelty_fashion_mnist import _digits_28

import knowwhen as kw
from knowwhen.uncertainty.fusion import fusion_members, member_p_values, member_scores
from knowwhen.uncertainty.measures import FEATURE_SCORES, MEASURES, uncertainty_scores

POOL = ("mutual_info_mc", "p_max", "energy", "mahalanobis_tie", "own_mahalanobis", "knn", "rel_mahalanobis")
DEFAULT = fusion_members((*MEASURES, *FEATURE_SCORES))  # the default novelty's members
FIRST = {"mutual_info_mc": 1, "energy": 1, "rel_mahalanobis": 1, "knn": 1}
WITHIN, FAR_TARGET = 0.03, 0.97
BOUNDS = (-0.01, -0.02, -0.025, -0.03, -0.035, -0.04, -0.05)


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney AUROC, ties counted half (as scikit-learn's)."""
    ranks = rankdata(np.r_[positive, negative])
    n = len(positive)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * len(negative)))


def _run_scores(folder: Path, cls: str, digits, names: list[str]) -> dict:
    """-ln p of every member (test images, then far digits), the novel mask and p_max (oriented); cached in
    folder/fusion_seeds."""
    cache = folder / "fusion_seeds" / f"{cls}.npz"
    if cache.exists():
        z = np.load(cache)
        if all(f"neglog_{n}" in z for n in names):
            return {k: z[k] for k in z.files}
    run = kw.load_run(folder / "runs" / cls)
    with open(folder / "evals" / cls / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    novel = np.array([r["label"] not in run.class_names for r in rows])
    measures = sorted({k for n in names for k in member_scores(n)})
    test = {n: np.array([float(r[n]) for r in rows]) for n in measures}
    far = list(kw.predict_dataset(run, digits, kw.run_engine(run, 100, 0), batch_size=1000, progress=False))
    both = {n: np.r_[test[n], np.concatenate([b.measures[n] for b in far])] for n in measures}
    out = {"novel": novel, "p_max": uncertainty_scores(both, "p_max")}
    for n in names:
        p = member_p_values(run.reference, both, n)
        out[f"neglog_{n}"] = -np.log(np.maximum(p, 1e-300))
    cache.parent.mkdir(exist_ok=True)
    np.savez(cache, **out)
    return out


def _seed(folder: Path, digits, names: list[str]) -> dict:
    runs = {}
    for rd in sorted((folder / "runs").iterdir()):
        s = _run_scores(folder, rd.name, digits, names)
        novel, nt = s["novel"].astype(bool), len(s["novel"])
        X = np.stack([s[f"neglog_{n}"] for n in names], 1)
        runs[rd.name] = (X[:nt], X[nt:], novel, _near_far(s["p_max"][:nt], s["p_max"][nt:], novel)[0])
    print(f"{folder}: {len(runs)} runs", flush=True)
    return runs


def _near_far(test: np.ndarray, far: np.ndarray, novel: np.ndarray) -> tuple[float, float]:
    return _auroc(test[novel], test[~novel]), _auroc(far, test[~novel])


def _summary(runs: dict, w: np.ndarray) -> dict:
    per = {c: _near_far(Xt @ w, Xf @ w, novel) + (pm,) for c, (Xt, Xf, novel, pm) in runs.items()}
    worst = min(per, key=lambda c: per[c][0] - per[c][2])
    return {"mean": round(float(np.mean([v[0] for v in per.values()])), 4),
            "worst_margin_vs_p_max": round(per[worst][0] - per[worst][2], 4), "worst_class": worst,
            "far_digits_mean": round(float(np.mean([v[1] for v in per.values()])), 4),
            "per_class": {c: v[0] for c, v in per.items()},
            "margin_per_class": {c: v[0] - v[2] for c, v in per.items()},
            "far_per_class": {c: v[1] for c, v in per.items()}}


def _nested(fusions: list, seed: str) -> dict:
    """What a fusion learned from the user's own leave-one-class-out runs would give on `seed`: for each class c,
    the fusion chosen on the other classes only (the best mean over them among those within WITHIN of p_max on each
    and >= FAR_TARGET on their far digits, else the best worst margin), scored on c."""
    classes = list(fusions[0][2][seed]["per_class"])
    chosen = {}
    for c in classes:
        others = [o for o in classes if o != c]

        def merit(r):
            s = r[2][seed]
            worst = min(s["margin_per_class"][o] for o in others)
            ok = worst >= -WITHIN and np.mean([s["far_per_class"][o] for o in others]) >= FAR_TARGET
            return (1, np.mean([s["per_class"][o] for o in others])) if ok else (0, worst)

        best = max(fusions, key=merit)[2][seed]
        chosen[c] = (best["per_class"][c], best["margin_per_class"][c], best["far_per_class"][c])
    worst = min(chosen, key=lambda c: chosen[c][1])
    return {"mean": round(float(np.mean([v[0] for v in chosen.values()])), 4),
            "worst_margin_vs_p_max": round(chosen[worst][1], 4), "worst_class": worst,
            "far_digits_mean": round(float(np.mean([v[2] for v in chosen.values()])), 4)}


def _brief(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.endswith("per_class")}


def _label(names: list[str], w) -> str:
    return " + ".join(n if x == 1 else f"{x:g}*{n}" for n, x in zip(names, w) if x)


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__)
    a.add_argument("--choose-on", nargs="+", required=True, help="--out folders of novelty_fashion_mnist.py")
    a.add_argument("--test-on", nargs="*", default=[], help="--out folders not used to choose")
    a.add_argument("--weights", default="0,1,2", help="the weights each member may take")
    a.add_argument("--name", default="novelty_fusion_seeds")
    args = a.parse_args()
    start = time.perf_counter()
    default = [m for m in DEFAULT if m not in POOL]  # the default's union member
    names = [*POOL, *default]
    digits = kw.dataset_from_arrays(_digits_28(), name="digits-28x28")
    choose = {f: _seed(Path(f), digits, names) for f in args.choose_on}
    test = {f: _seed(Path(f), digits, names) for f in args.test_on}
    every_seed = {**choose, **test}
    first = np.array([FIRST.get(n, 0) for n in names], float)
    base = {f: _summary(runs, first)["mean"] for f, runs in choose.items()}
    grid = [float(x) for x in args.weights.split(",")]
    fusions = []
    for w in itertools.product(grid, repeat=len(POOL)):
        if sum(x > 0 for x in w) < 2:
            continue
        full = np.array([*w, *[0.0] * len(default)])
        fusions.append((_label(names, full), full, {f: _summary(runs, full) for f, runs in every_seed.items()}))
    print(f"{len(fusions)} fusions on {len(every_seed)} seeds", flush=True)

    def gain(r):  # the smallest mean gain over the first members, across the seeds
        return min(r[2][f]["mean"] - base[f] for f in choose)

    def holds(r, bound, far=FAR_TARGET):
        return all(r[2][f]["worst_margin_vs_p_max"] >= bound and r[2][f]["far_digits_mean"] >= far for f in choose)

    frontier = {}
    for bound in BOUNDS:
        ok = [r for r in fusions if holds(r, bound)]
        if ok:
            best = max(ok, key=gain)
            frontier[str(bound)] = {"fusion": best[0], "smallest_mean_gain_over_first": round(gain(best), 4),
                                    "per_seed": {f: _brief(best[2][f]) for f in choose}}
    every = [r for r in fusions if holds(r, -WITHIN) and gain(r) >= 0]
    reference = {"default (fisher " + ", ".join(DEFAULT) + ")": np.array([float(n in DEFAULT) for n in names]),
                 "first members": first}
    chosen = frontier.get(str(-WITHIN))
    if chosen:
        reference["frontier's choice at -0.03"] = next(r[1] for r in fusions if r[0] == chosen["fusion"])
    held_out = {label: {f: _brief(_summary(runs, w)) for f, runs in every_seed.items()}
                for label, w in reference.items()}
    nested = {f: _nested(fusions, f) for f in every_seed}
    print("nested (learned from the other classes of the same seed):", nested)
    for label, per in held_out.items():
        print(label, {f: (s["mean"], s["worst_margin_vs_p_max"], s["far_digits_mean"]) for f, s in per.items()})
    write_result(args.name, {
        "choose_on": args.choose_on, "test_on": args.test_on, "pool": list(POOL), "weights": grid,
        "convention": "novel = positive class; higher score = more novel",
        "targets": {"worst_margin_vs_p_max": -WITHIN, "far_digits_mean": FAR_TARGET,
                    "mean": "at least the first members' on the same seed"},
        "first_members_mean": base, "fusions_compared": len(fusions),
        "meeting_every_target_on_every_seed": [r[0] for r in every],
        "frontier_far_ge_0.97_every_seed": frontier, "reference_fusions_every_seed": held_out,
        "nested_choice_per_seed": nested,
        "minutes": round((time.perf_counter() - start) / 60, 1)})


if __name__ == "__main__":
    main()
