"""The post-hoc parts of a run: feature scores and the fused novelty score in predictions, and `knowwhen refit`."""
import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import knowwhen as kw
from knowwhen.cli import app
from knowwhen.uncertainty.measures import FEATURE_SCORES

runner = CliRunner()
FUSED_MEMBERS = ("mutual_info_mc", "energy", "mahalanobis_tie|own_mahalanobis")


def _rows(path):
    return list(csv.DictReader(open(path)))


def test_feature_scores_do_not_depend_on_mc_and_fused_novelty_counts_by_hand(digits_run, tmp_path):
    run = kw.load_run(digits_run)
    assert run.features is not None and run.reference is not None
    sub = kw.open_dataset("digits").subset(np.arange(60))
    kw.write_predictions(run, sub, tmp_path / "det.csv", kw.PredictOptions(progress=False))
    kw.write_predictions(run, sub, tmp_path / "mc.csv", kw.PredictOptions(mc=20, progress=False))
    det, mc = _rows(tmp_path / "det.csv"), _rows(tmp_path / "mc.csv")
    for name in FEATURE_SCORES:
        np.testing.assert_allclose([float(r[name]) for r in det], [float(r[name]) for r in mc], rtol=1e-6)
    # novelty = Fisher's combination of the p-values of one member per family against the validation reference
    # (the feature-space family: the smaller of its two p-values, doubled), counted by hand
    ref = run.reference
    assert ref.fused == FUSED_MEMBERS
    r = runner.invoke(app, ["info", str(digits_run)])
    assert "novelty fuses mutual_info_mc, energy, mahalanobis_tie|own_mahalanobis" in r.output, r.output
    for row in mc[:5]:
        assert float(row["novelty"]) == pytest.approx(_fisher_by_hand(ref, row, ref.fused), rel=1e-4)
    assert set(ref) == {"p_max", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc",
                        *FEATURE_SCORES, "novelty"}


def _fisher_by_hand(ref, row, names) -> float:
    from scipy.stats import combine_pvalues

    def p_of(name):
        s = -float(row[name]) if name in ("p_max", "p_max_mc") else float(row[name])
        return _p_by_hand(list(ref[name]), s)

    def p_member(m):  # a union "a|b": the smaller p-value of its views, times their number
        views = m.split("|")
        return min(1.0, len(views) * min(p_of(v) for v in views))

    return -np.log10(combine_pvalues([p_member(m) for m in names]).pvalue)


def _p_by_hand(ref: list, s: float) -> float:
    """The README's p-value: the conformal count at each reference score, linear between two, exponential beyond."""
    n, step = len(ref), lambda u: (1 + sum(r >= u for r in ref)) / (len(ref) + 1)
    if s <= min(ref):
        return 1.0
    top = sorted(ref)[-max(2, int(np.ceil(0.1 * n))):]
    if s > max(ref):
        return step(max(ref)) * np.exp(-(s - max(ref)) / np.mean([t - top[0] for t in top]))
    lo, hi = max(r for r in ref if r <= s), min(r for r in ref if r > s) if s < max(ref) else max(ref)
    return step(lo) if hi == lo else step(lo) + (s - lo) / (hi - lo) * (step(hi) - step(lo))


def test_a_reference_saved_before_the_families_keeps_fusing_every_measure(digits_run, tmp_path):
    from safetensors.numpy import load_file, save_file

    old = tmp_path / "old"
    shutil.copytree(digits_run, old)
    arrays = load_file(str(old / "reference.safetensors"))
    save_file(arrays, str(old / "reference.safetensors"), metadata={"info": "{}"})  # no "fused": the old format
    run = kw.load_run(old)
    assert run.reference.fused is None
    sub = kw.open_dataset("digits").subset(np.arange(20))
    kw.write_predictions(run, sub, tmp_path / "mc.csv", kw.PredictOptions(mc=20, progress=False))
    every = [k for k in run.reference if k != "novelty"]
    for row in _rows(tmp_path / "mc.csv")[:5]:   # its thresholds were set with every measure: they stay true
        assert float(row["novelty"]) == pytest.approx(_fisher_by_hand(run.reference, row, every), rel=1e-4)
    r = runner.invoke(app, ["refit", str(old), "--parts", "reference", "--quiet"])
    assert r.exit_code == 0, r.output
    assert kw.load_run(old).reference.fused == FUSED_MEMBERS
    assert json.loads((old / "config.json").read_text())["reference"]["fused"] == list(kw.load_run(old).reference.fused)


@pytest.mark.parametrize("fused", ['["mutual_info_mc", "no_such_measure"]', "not json", "[]", '[["knn"]]',
                                   '["energy", "mahalanobis_tie|no_such_measure"]'])
def test_a_reference_whose_fused_record_is_broken_is_refused_naming_the_file(digits_run, tmp_path, fused):
    from safetensors.numpy import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(digits_run, bad)
    arrays = load_file(str(bad / "reference.safetensors"))
    save_file(arrays, str(bad / "reference.safetensors"), metadata={"info": "{}", "fused": fused})
    with pytest.raises(kw.CheckpointError, match="reference.safetensors.*fused.*knowwhen refit"):
        kw.load_run(bad)


def test_the_reference_file_records_its_fused_measures_once(digits_run):
    from safetensors import safe_open

    with safe_open(str(digits_run / "reference.safetensors"), "np") as f:
        metadata = f.metadata()
    fused = list(FUSED_MEMBERS)
    assert json.loads(metadata["fused"]) == fused
    assert "fused" not in json.loads(metadata["info"])
    assert json.loads((digits_run / "config.json").read_text())["reference"]["fused"] == fused


def test_an_old_reference_is_not_saved_as_if_it_recorded_its_fused_measures(digits_run, tmp_path):
    from knowwhen.classify.features import save_reference
    from knowwhen.uncertainty.fusion import Reference

    old = Reference(dict(kw.load_run(digits_run).reference), None)
    with pytest.raises(ValueError, match="refit"):
        save_reference(tmp_path, old, {})
    assert not (tmp_path / "reference.safetensors").exists()


def test_refit_gives_an_old_run_the_new_columns_and_changes_nothing_else(digits_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(digits_run, old)
    for f in ("features.safetensors", "reference.safetensors"):
        (old / f).unlink()
    cfg = json.loads((old / "config.json").read_text())
    for key in ("features", "reference"):
        cfg.pop(key)
    (old / "config.json").write_text(json.dumps(cfg))
    weights = (old / "model.safetensors").read_bytes()
    args = ["predict", str(old), "digits", "--mc", "10", "--quiet"]
    assert runner.invoke(app, args + ["--out", str(tmp_path / "before.csv")]).exit_code == 0
    before = _rows(tmp_path / "before.csv")
    assert "knn" not in before[0] and "novelty" not in before[0]
    r = runner.invoke(app, ["refit", str(old), "--quiet"])
    assert r.exit_code == 0 and "refitted features, reference" in r.output, r.output
    assert runner.invoke(app, args + ["--out", str(tmp_path / "after.csv")]).exit_code == 0
    after = _rows(tmp_path / "after.csv")
    assert {"energy", "mahalanobis", "rel_mahalanobis", "gauss_density", "knn", "novelty"} <= set(after[0])
    assert all({k: a[k] for k in b} == b for a, b in zip(after, before))  # every old column unchanged
    now = json.loads((old / "config.json").read_text())
    assert {k: v for k, v in now.items() if k not in ("features", "reference")} == cfg
    assert (old / "model.safetensors").read_bytes() == weights
    # the refitted parts equal those training fitted
    original = kw.load_run(digits_run)
    np.testing.assert_allclose(kw.load_run(old).features.means, original.features.means, rtol=1e-6)
    r = runner.invoke(app, ["refit", str(old), "--quiet"])
    assert r.exit_code == 0 and "nothing refitted" in r.output


def test_refit_refuses_other_data(digits_run, tmp_path):
    x = np.random.default_rng(0).random((30, 8, 8))
    np.savez(tmp_path / "other.npz", x=x, y=np.arange(30) % 10)
    r = runner.invoke(app, ["refit", str(digits_run), str(tmp_path / "other.npz"), "--parts", "features"])
    assert r.exit_code == 2 and "not the data run" in r.output


def test_mc_columns_use_the_mc_temperature_and_an_older_run_keeps_its_numbers_until_refit(digits_run, tmp_path):
    import torch

    from knowwhen.uncertainty import MCDropout

    run = kw.load_run(digits_run)
    assert run.mc_temperature is not None and run.info["mc_temperature_fit"]["nll"] <= \
        run.info["mc_temperature_fit"]["nll_at_softmax_temperature"]
    x = kw.open_dataset("digits").images(np.arange(40))
    sub = kw.dataset_from_arrays(x, None, channels="first")
    kw.write_predictions(run, sub, tmp_path / "p.csv", kw.PredictOptions(mc=10, progress=False))
    rows = _rows(tmp_path / "p.csv")
    _, z = MCDropout(run.model, 10, 0).pass_logits(run.preprocess(x))
    mean = torch.softmax(z / run.mc_temperature, -1).mean(0).numpy()
    np.testing.assert_allclose([[float(r[f"prob_{c}"]) for c in run.class_names] for r in rows], mean, atol=1e-6)
    # a run saved before MC temperatures: its passes use the softmax's temperature, as they did
    old = tmp_path / "old"
    shutil.copytree(digits_run, old)
    cfg = json.loads((old / "config.json").read_text())
    cfg.pop("mc_temperature"), cfg.pop("mc_temperature_fit")
    (old / "config.json").write_text(json.dumps(cfg))
    kw.write_predictions(kw.load_run(old), sub, tmp_path / "o.csv", kw.PredictOptions(mc=10, progress=False))
    plain = torch.softmax(z / run.temperature, -1).mean(0).numpy()
    np.testing.assert_allclose([[float(r[f"prob_{c}"]) for c in run.class_names] for r in _rows(tmp_path / "o.csv")],
                               plain, atol=1e-6)
    r = runner.invoke(app, ["refit", str(old), "--quiet"])
    assert r.exit_code == 0 and "refitted mc_temperature, reference, calibration" in r.output, r.output
    assert kw.load_run(old).mc_temperature == pytest.approx(run.mc_temperature, rel=1e-6)


def test_evaluate_reports_the_mc_mean_before_and_after_its_temperature(digits_run, tmp_path):
    summary = kw.evaluate_run(kw.load_run(digits_run), kw.open_dataset("digits"), tmp_path,
                              kw.EvaluateOptions(mc=10, progress=False))
    cal = summary["calibration"]
    assert {"softmax_untempered", "softmax_tempered", "mc_mean", "mc_mean_softmax_temperature"} <= set(cal)
    assert summary["mc_temperature_fitted"] and cal["mc_mean"]["nll"] != cal["mc_mean_softmax_temperature"]["nll"]
    # mc_mean is the p* written in predictions.csv: its NLL recomputed from the prob_ columns
    rows = _rows(tmp_path / "predictions.csv")
    run = kw.load_run(digits_run)
    known = [r for r in rows if r["label"] in run.class_names]
    p_true = [float(r[f"prob_{r['label']}"]) for r in known]
    assert cal["mc_mean"]["nll"] == pytest.approx(-np.mean(np.log(p_true)), rel=1e-4)


CHOSEN = ("mutual_info_mc", "p_max", "energy", "mahalanobis_tie", "own_mahalanobis", "knn")


def test_refit_fuse_changes_novelty_and_nothing_else_and_a_later_refit_keeps_the_choice(digits_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    sub = kw.open_dataset("digits").subset(np.arange(60))
    options = kw.PredictOptions(mc=20, progress=False)
    kw.write_predictions(kw.load_run(run_dir), sub, tmp_path / "before.csv", options)
    old_reference = kw.load_run(run_dir).reference
    r = runner.invoke(app, ["refit", str(run_dir), "--fuse", ",".join(CHOSEN), "--quiet"])
    assert r.exit_code == 0 and "refitted reference" in r.output, r.output
    assert f"novelty fuses {', '.join(CHOSEN)}" in r.output
    run = kw.load_run(run_dir)
    assert run.reference.fused == CHOSEN
    for name in old_reference:   # the same validation scores; only what they are fused into changed
        if name != "novelty":
            np.testing.assert_allclose(run.reference[name], old_reference[name], rtol=1e-6)
    kw.write_predictions(run, sub, tmp_path / "after.csv", options)
    before, after = _rows(tmp_path / "before.csv"), _rows(tmp_path / "after.csv")
    assert [{k: v for k, v in row.items() if k != "novelty"} for row in after] == \
        [{k: v for k, v in row.items() if k != "novelty"} for row in before]
    assert any(a["novelty"] != b["novelty"] for a, b in zip(after, before))
    for row in after[:5]:
        assert float(row["novelty"]) == pytest.approx(_fisher_by_hand(run.reference, row, CHOSEN), rel=1e-4)
    assert "novelty fuses " + ", ".join(CHOSEN) + " (chosen with refit --fuse)" in \
        runner.invoke(app, ["info", str(run_dir)]).output
    r = runner.invoke(app, ["refit", str(run_dir), "--parts", "reference", "--quiet"])   # keeps the choice
    assert r.exit_code == 0 and kw.load_run(run_dir).reference.fused == CHOSEN, r.output
    r = runner.invoke(app, ["refit", str(run_dir), "--fuse", "default", "--quiet"])     # one per family again
    assert r.exit_code == 0 and kw.load_run(run_dir).reference.fused == FUSED_MEMBERS, r.output
    assert "fused_chosen" not in json.loads((run_dir / "config.json").read_text())["reference"]


@pytest.mark.parametrize("fuse, says", [("knn,no_such_measure", "no_such_measure"), ("knn,energy,knn", "twice"),
                                        ("energy,novelty", "novelty"), ("", "an empty name"),
                                        ("energy,knn|set_size", "set_size"),
                                        ("mutual_info_mc,energy --mc 0", "mutual_info_mc")])
def test_refit_fuse_refuses_what_is_not_a_measure_in_one_line_and_changes_nothing(digits_run, tmp_path, fuse, says):
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    fuse, *more = fuse.split(" ")
    r = runner.invoke(app, ["refit", str(run_dir), "--fuse", fuse, *more, "--quiet"])
    assert r.exit_code == 2 and "--fuse" in r.output and says in r.output and "Traceback" not in r.output, r.output
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == files
