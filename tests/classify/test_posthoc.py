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
    # novelty = Fisher's combination of each measure's p-value against the validation reference, counted by hand
    ref = run.reference
    for row in mc[:5]:
        p = []
        for name, values in ref.items():
            s = -float(row[name]) if name in ("p_max", "p_max_mc") else float(row[name])
            p.append((1 + np.sum(values >= s - 1e-6 * abs(s))) / (len(values) + 1))
        from scipy.stats import combine_pvalues

        assert float(row["novelty"]) == pytest.approx(-np.log10(combine_pvalues(p).pvalue), rel=1e-4)
    assert set(ref) == {"p_max", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc",
                        *FEATURE_SCORES}


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
    assert {"energy", "mahalanobis", "gauss_density", "knn", "novelty"} <= set(after[0])
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
