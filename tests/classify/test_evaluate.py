import csv
import json

import numpy as np
import pytest

import knowwhen as kw
from knowwhen.classify import evaluate_run
from knowwhen.evaluation import novelty_metrics


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory):
    cfg = kw.TrainConfig(kw.DataConfig("digits", holdout_classes=("9",)), kw.ModelConfig("cnn"), epochs=4,
                         progress=False)
    return kw.load_run(kw.train(cfg, tmp_path_factory.mktemp("runs") / "hold"))


def test_evaluate_writes_every_table_and_numbers_match_the_predictions(holdout_run, tmp_path):
    summary = evaluate_run(holdout_run, kw.open_dataset("digits"), tmp_path, kw.EvaluateOptions(mc=20, progress=False))
    names = {p.name for p in tmp_path.iterdir()}
    assert {"metrics.json", "per_class.csv", "predictions.csv", "calibration.csv", "selective.csv",
            "novelty.csv", "roc.csv"} <= names
    assert json.loads((tmp_path / "metrics.json").read_text())["images"] == summary["images"]
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    novel = np.array([r["label"] == "9" for r in rows])
    assert novel.sum() == 180 and summary["images"] == len(rows) - 180  # test split + held-out class
    known_rows = [r for r, n in zip(rows, novel) if not n]
    acc = np.mean([r["pred"] == r["label"] for r in known_rows])
    assert summary["accuracy"]["accuracy"] == pytest.approx(acc)
    # Independent recomputation of one AUROC from the CSV (novel positive, higher = more uncertain).
    ent = np.array([float(r["entropy_mc"]) for r in rows])
    table = {r["measure"]: r for r in summary["novelty"]["measures"]}
    assert table["entropy_mc"]["auroc"] == pytest.approx(novelty_metrics(ent[~novel], ent[novel]).auroc)
    p_max = np.array([float(r["p_max"]) for r in rows])
    assert table["p_max"]["auroc"] == pytest.approx(novelty_metrics(-p_max[~novel], -p_max[novel]).auroc)
    assert "novel = positive" in summary["novelty"]["convention"]


def test_temperature_lowers_validation_ece_and_is_reported(holdout_run, tmp_path):
    m = holdout_run.metrics
    assert m["val_ece_temperature"] <= m["val_ece"] + 1e-9 and holdout_run.temperature > 0
    summary = evaluate_run(holdout_run, kw.open_dataset("digits"), tmp_path, kw.EvaluateOptions(mc=None, progress=False))
    cal = summary["calibration"]
    assert set(cal) == {"softmax_untempered", "softmax_tempered"}
    assert "accuracy_mc" not in summary and "novelty" in summary  # p_max alone still scores novelty


def test_novel_images_from_another_dataset(holdout_run, tmp_path):
    ds = kw.open_dataset("digits")
    known = ds.subset(np.flatnonzero(ds.labels != 9)[:200])
    novel = kw.dataset_from_arrays(np.random.default_rng(0).uniform(0, 16, (50, 8, 8)), None)
    # these 200 known images include training images: said explicitly, as a user would have to
    summary = evaluate_run(holdout_run, known, tmp_path, kw.EvaluateOptions(mc=10, progress=False, allow_training_images=True),
                           novel=novel)
    assert summary["images"] == 200 and summary["novelty"]["novel_images"] == 50


def test_evaluate_from_the_cli(holdout_run, tmp_path):
    from typer.testing import CliRunner

    from knowwhen.cli import app

    r = CliRunner().invoke(app, ["evaluate", str(holdout_run.path), "digits", "--mc", "10", "--out",
                                 str(tmp_path / "ev"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "AUROC" in r.output and "Wilson" in r.output and "@80%" in r.output


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    """A run trained on digits saved as an NPZ file, d/digits.npz."""
    root = tmp_path_factory.mktemp("npz")
    ds = kw.open_dataset("digits")
    (root / "d").mkdir()
    np.savez(root / "d" / "digits.npz", x=ds.images(np.arange(len(ds))), y=ds.labels)
    cfg = kw.TrainConfig(kw.DataConfig(str(root / "d" / "digits.npz")), kw.ModelConfig("mlp", {"hidden": 16}),
                         epochs=1, progress=False)
    return root, kw.load_run(kw.train(cfg, root / "run"))


def _evaluated(run, data, out, **kw_):
    return evaluate_run(run, kw.open_dataset(data), out, kw.EvaluateOptions(mc=None, progress=False, **kw_))


def test_the_training_data_is_recognised_by_content_however_its_path_is_spelled(npz_run, tmp_path, monkeypatch):
    import shutil

    root, run = npz_run
    test_images = run.info["data"]["sizes"]["test"]
    shutil.copy(root / "d" / "digits.npz", tmp_path / "copy.npz")
    monkeypatch.chdir(root)
    for spelling in (root / "d" / ".." / "d" / "digits.npz", "d/digits.npz", tmp_path / "copy.npz"):
        assert _evaluated(run, spelling, tmp_path / "e")["images"] == test_images, spelling


def test_other_data_holding_training_images_is_refused_unless_allowed(npz_run, tmp_path):
    root, run = npz_run
    ds = kw.open_dataset(root / "d" / "digits.npz")
    np.savez(tmp_path / "first.npz", x=ds.images(np.arange(900)), y=ds.labels[:900])  # half the set: train images
    with pytest.raises(kw.DataError, match=r"training images sampled by run .* --allow-training-images"):
        _evaluated(run, tmp_path / "first.npz", tmp_path / "e")
    assert _evaluated(run, tmp_path / "first.npz", tmp_path / "e", allow_training_images=True)["images"] == 900
    fresh = kw.open_dataset("digits").images(np.arange(30)) + 0.25          # images the run never saw
    np.savez(tmp_path / "fresh.npz", x=fresh, y=ds.labels[:30])
    assert _evaluated(run, tmp_path / "fresh.npz", tmp_path / "f")["images"] == 30


def test_metrics_nll_is_computed_from_the_logits(holdout_run, tmp_path):
    import torch
    from scipy.special import logsumexp

    from knowwhen.classify.evaluate import run_test_images

    summary = evaluate_run(holdout_run, kw.open_dataset("digits"), tmp_path, kw.EvaluateOptions(mc=None, progress=False))
    ds = run_test_images(holdout_run, kw.open_dataset("digits"))
    known = np.flatnonzero(ds.labels != 9)
    with torch.no_grad():
        z = holdout_run.model(holdout_run.preprocess(ds.images(known))).double().numpy()
    y = np.array([holdout_run.class_names.index(ds.class_names[c]) for c in ds.labels[known]])
    for name, t in (("softmax_untempered", 1.0), ("softmax_tempered", holdout_run.temperature)):
        independent = np.mean(logsumexp(z / t, axis=1) - z[np.arange(len(y)), y] / t)
        assert summary["calibration"][name]["nll"] == pytest.approx(independent, rel=1e-5), name
