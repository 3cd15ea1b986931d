"""The search that chose the fused `novelty`'s members: every candidate score and every Fisher fusion of up to
--size of them, on the leave-one-class-out runs of `novelty_fashion_mnist.py --out DIR` (run that first).

Per run (trained without class c) the script scores, with the network, its validation images (the reference, as
the run's own `novelty` does), its test images (known vs c) and far-away digits (scikit-learn's digits upscaled),
MC with T = 100 and seed 0 as the evaluation. Candidate scores, all oriented higher = more novel:
p_max (negated), entropy, GEN (Liu et al. 2023, gamma 0.1), energy, max logit (negated), the MC measures,
mahalanobis, rel_mahalanobis, mahalanobis_tie, own_mahalanobis, knn, NNGuide (energy confidence x mean cosine
similarity of the k nearest training features, negated; Park et al. 2023), fDBD (mean distance to the predicted
class's decision boundaries over the distance to the training mean, negated; Liu & Qin 2024), ViM (virtual logit of
the residual outside the principal subspace minus the energy confidence; Wang et al. 2022), class-conditional
(Mondrian) p-values of the main ones. Every candidate is scored alone and every subset of --pool up to --size is
fused by Fisher's method over empirical p-values against the validation images (knowwhen's own p-values, bounded
tail included). Written: per score and fusion, per-class AUROC, mean, worst margin over p_max, far-away mean; the
frontier (best mean at each worst-margin bound); and the nested choice (for each class, the subset with the best
mean over the other nine among those within 0.03 of p_max there and >= 0.97 on far digits, scored on the held-out
class), which shows how much choosing on the same classes flatters a subset.
Run: .venv/bin/python benchmarks/novelty_fusion_search.py --out /tmp/nov5 [--size 4] [--name novelty_fusion_search]
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp, softmax

from _common import write_result
from novelty_fashion_mnist import _digits_28

import knowwhen as kw
from knowwhen.classify.own_data import own_split
from knowwhen.data import open_dataset
from knowwhen.evaluation.novelty import novelty_metrics
from knowwhen.uncertainty.features import feature_tap, last_linear
from knowwhen.uncertainty.fusion import combined_score, empirical_p_values

MC = ("p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc")
POOL = ("p_max", "gen", "energy", "mutual_info_mc", "entropy_mc", "rel_mahalanobis", "knn", "fdbd", "mahalanobis_tie",
        "own_mahalanobis", "nnguide")
MONDRIAN = ("p_max", "energy", "mutual_info_mc", "rel_mahalanobis", "knn", "mahalanobis_tie")
WITHIN, FAR_TARGET = 0.03, 0.97


def _network_outputs(run, ds) -> dict:
    """Dropout-off logits and features, and the MC measures (T = 100, seed 0), of every image of ds."""
    out = {"logits": [], "features": [], **{m: [] for m in MC}}
    for b in kw.predict_dataset(run, ds, kw.run_engine(run, 100, seed=0), batch_size=1000, progress=False):
        out["logits"].append(b.logits)
        for m in MC:
            out[m].append(b.measures[m])
    run.model.eval()
    with torch.no_grad():
        for _, images in ds.batches(np.arange(len(ds)), 1000):
            with feature_tap(run.model) as tap:
                run.model(run.preprocess(images))
            out["features"].append(tap["features"].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _scores(run, o: dict, alpha: float | None = None) -> dict:
    """Every candidate score (higher = more novel) of one part's network outputs."""
    logits, f = o["logits"].astype(np.float64), o["features"].astype(np.float64)
    p = softmax(logits / (run.temperature or 1.0), 1)
    pred = logits.argmax(1)
    s = {"p_max": -p.max(1), "entropy": -(p * np.log(np.clip(p, 1e-300, 1))).sum(1),
         "gen": (p ** 0.1 * (1 - p) ** 0.1).sum(1), "max_logit": -logits.max(1),
         "p_max_mc": -o["p_max_mc"], **{m: o[m] for m in MC if m != "p_max_mc"}}
    s.update(run.features.scores(f, logits))
    lin = last_linear(run.model)
    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    mean0 = run.features.priors @ run.features.means
    boundary = np.abs(((w[pred][:, None] - w[None]) * f[:, None]).sum(-1) + b[pred][:, None] - b[None])
    norm = np.linalg.norm(w[pred][:, None] - w[None], axis=-1)
    dbd = (boundary / np.where(norm > 0, norm, 1)).sum(1) / (w.shape[0] - 1)
    s["fdbd"] = -dbd / np.linalg.norm(f - mean0, axis=1)
    bank = torch.nn.functional.normalize(torch.from_numpy(np.asarray(run.features.bank, np.float32)), dim=1)
    unit = torch.nn.functional.normalize(torch.from_numpy(f).float(), dim=1)
    near = torch.cat([(unit[i:i + 512] @ bank.T).topk(run.features.k, 1).values.mean(1)
                      for i in range(0, len(unit), 512)]).double().numpy()
    s["nnguide"] = -logsumexp(logits, 1) * near
    origin = -np.linalg.pinv(w) @ b
    residual = np.linalg.norm((f - origin) @ _vim_basis(run, origin), axis=1)
    alpha = logits.max(1).sum() / residual.sum() if alpha is None else alpha   # from the validation images
    s["vim"] = alpha * residual - logsumexp(logits, 1)
    s["_alpha"], s["_pred"] = alpha, pred
    return s


def _vim_basis(run, origin) -> np.ndarray:
    """ViM's residual space: the directions outside the principal subspace of the training features (about the
    origin -W^+ b), of dimension D - max(K, D - 64) kept for D = 128 as in Wang et al.'s smaller models."""
    mean0, cov0 = run.features.background()
    second = cov0 + np.outer(mean0 - origin, mean0 - origin)
    _, vectors = np.linalg.eigh(second)
    dims = vectors.shape[0]
    principal = max(len(run.class_names), dims - 64) if dims > 2 * len(run.class_names) else len(run.class_names)
    return vectors[:, : dims - principal]


def _experiment(out: Path, ds, digits) -> dict:
    """{class: {"novel": mask, "nt": test count, "scores": {name: test+far}, "pv": {name: p-values}}}."""
    runs = {}
    for run_dir in sorted((out / "runs").iterdir()):
        start = time.perf_counter()
        run = kw.load_run(run_dir)
        split = own_split(run, ds)
        val, test = ds.subset(split.val), ds.subset(np.concatenate([split.test, split.novel]))
        sv = _scores(run, _network_outputs(run, val))
        st, sf = (_scores(run, _network_outputs(run, d), sv["_alpha"]) for d in (test, digits))
        known = split.label_map[test.labels] >= 0
        e = {"novel": ~known, "nt": len(test), "scores": {}, "pv": {}}
        for name in [k for k in sv if not k.startswith("_")]:
            e["scores"][name] = np.r_[st[name], sf[name]]
            e["pv"][name] = empirical_p_values(sv[name], e["scores"][name])
        pred = np.r_[st["_pred"], sf["_pred"]]
        for name in MONDRIAN:
            e["pv"][f"{name}|predicted"] = _mondrian(sv[name], sv["_pred"], e["scores"][name], pred)
        runs[run_dir.name] = e
        print(f"{run_dir.name}: scored in {time.perf_counter() - start:.0f} s", flush=True)
    return runs


def _mondrian(ref, ref_pred, scores, pred) -> np.ndarray:
    """p-values against the validation images predicted as the same class."""
    p = np.ones(len(scores))
    for k in np.unique(pred):
        p[pred == k] = empirical_p_values(ref[ref_pred == k], scores[pred == k])
    return p


def _aurocs(e: dict, score: np.ndarray) -> tuple[float, float]:
    """(held-out class AUROC, far-away digits AUROC) of one score; novel = positive."""
    t, f = score[:e["nt"]], score[e["nt"]:]
    known = t[~e["novel"]]
    return novelty_metrics(known, t[e["novel"]]).auroc, novelty_metrics(known, f).auroc


def _row(runs: dict, per_class: dict[str, tuple[float, float]], p_max: dict[str, float]) -> dict:
    margins = {c: per_class[c][0] - p_max[c] for c in runs}
    return {"per_class": {c: round(v[0], 4) for c, v in per_class.items()},
            "mean": round(float(np.mean([v[0] for v in per_class.values()])), 4),
            "worst_margin_vs_p_max": round(min(margins.values()), 4), "worst_class": min(margins, key=margins.get),
            "far_digits_mean": round(float(np.mean([v[1] for v in per_class.values()])), 4),
            "far_per_class": {c: round(v[1], 4) for c, v in per_class.items()}}


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__)
    a.add_argument("--out", required=True, help="the --out folder of novelty_fashion_mnist.py")
    a.add_argument("--size", type=int, default=4, help="the largest fused subset")
    a.add_argument("--name", default="novelty_fusion_search")
    args = a.parse_args()
    start = time.perf_counter()
    runs = _experiment(Path(args.out), open_dataset("fashion-mnist"),
                       kw.dataset_from_arrays(_digits_28(), name="digits-28x28"))
    first = next(iter(runs.values()))
    p_max = {c: _aurocs(e, e["scores"]["p_max"])[0] for c, e in runs.items()}   # once, not per score and subset
    single = {name: _row(runs, {c: _aurocs(e, -np.log(np.maximum(e["pv"][name], 1e-300)) if "|" in name
                                           else e["scores"][name]) for c, e in runs.items()}, p_max)
              for name in first["pv"]}
    subsets = [s for k in range(2, args.size + 1) for s in itertools.combinations(POOL, k)]
    fused = {"+".join(s): _row(runs, {c: _aurocs(e, combined_score([e["pv"][m] for m in s])) for c, e in runs.items()},
                               p_max)
             for s in subsets}
    frontier = {}
    for bound in (-0.01, -0.02, -0.03, -0.04, -0.06, -0.08):
        ok = {k: v for k, v in fused.items()
              if v["worst_margin_vs_p_max"] >= bound and v["far_digits_mean"] >= FAR_TARGET}
        if ok:
            best = max(ok, key=lambda k: ok[k]["mean"])
            frontier[str(bound)] = {"fusion": best, **{k: ok[best][k] for k in ("mean", "worst_margin_vs_p_max",
                                                                                "far_digits_mean")}}
    write_result(args.name, {"runs": args.out, "classes": list(runs), "pool": list(POOL), "largest_subset": args.size,
                             "convention": "novel = positive class; higher score = more novel",
                             "single_scores": single, "frontier_far_ge_0.97": frontier,
                             "nested_choice": _nested(runs, fused, p_max), "fusions": fused,
                             "minutes": round((time.perf_counter() - start) / 60, 1)})


def _nested(runs: dict, fused: dict, p_max: dict[str, float]) -> dict:
    """For each class c, the subset chosen on the other classes only (the best mean among those within WITHIN of
    p_max on each and >= FAR_TARGET on far digits, else the best worst margin), scored on c."""
    chosen = {}
    for c in runs:
        others = [o for o in runs if o != c]

        def merit(k):
            worst = min(fused[k]["per_class"][o] - p_max[o] for o in others)
            far = np.mean([fused[k]["far_per_class"][o] for o in others])
            mean = np.mean([fused[k]["per_class"][o] for o in others])
            return (1, mean) if worst >= -WITHIN and far >= FAR_TARGET else (0, worst)

        best = max(fused, key=merit)
        chosen[c] = {"chosen": best, "auroc": fused[best]["per_class"][c],
                     "margin_vs_p_max": round(fused[best]["per_class"][c] - p_max[c], 4),
                     "far_digits": fused[best]["far_per_class"][c]}
    return {"per_class": chosen, "mean": round(float(np.mean([v["auroc"] for v in chosen.values()])), 4),
            "worst_margin_vs_p_max": min(v["margin_vs_p_max"] for v in chosen.values()),
            "far_digits_mean": round(float(np.mean([v["far_digits"] for v in chosen.values()])), 4)}


if __name__ == "__main__":
    main()
