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
    summary = evaluate_run(holdout_run, kw.open_dataset("digits"), tmp_path, mc=20, progress=False)
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
    summary = evaluate_run(holdout_run, kw.open_dataset("digits"), tmp_path, mc=None, progress=False,
                           report=False)
    cal = summary["calibration"]
    assert set(cal) == {"deterministic", "temperature_scaled"}
    assert "accuracy_mc" not in summary and "novelty" in summary  # p_max alone still scores novelty


def test_novel_images_from_another_dataset(holdout_run, tmp_path):
    ds = kw.open_dataset("digits")
    known = ds.subset(np.flatnonzero(ds.labels != 9)[:200])
    novel = kw.dataset_from_arrays(np.random.default_rng(0).uniform(0, 16, (50, 8, 8)), None)
    summary = evaluate_run(holdout_run, known, tmp_path, mc=10, novel=novel, progress=False, report=False)
    assert summary["images"] == 200 and summary["novelty"]["novel_images"] == 50


def test_evaluate_from_the_cli(holdout_run, tmp_path):
    from typer.testing import CliRunner

    from knowwhen.cli import app

    r = CliRunner().invoke(app, ["evaluate", str(holdout_run.path), "digits", "--mc", "10", "--out",
                                 str(tmp_path / "ev"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "AUROC" in r.output and "Wilson" in r.output and "@80%" in r.output
