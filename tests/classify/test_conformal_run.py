"""Conformal sets of a trained run: the calibration split, what the run keeps, predict / evaluate / conformal."""
import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import knowwhen as kw
from knowwhen.cli import app
from knowwhen.classify.sets import CALIBRATION_FILE, ConformalOptions, load_calibration, run_sets
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.data.splits import split_for_config
from knowwhen.errors import ConfigError
from knowwhen.uncertainty.conformal import ConformalClassifier

runner = CliRunner()
MC = 20


def _small_data():
    """3,000 training and 2,000 test images of Fashion-MNIST (its own test split), or digits where it is missing."""
    if not fashion_mnist_available():
        return kw.open_dataset("digits")
    ds = kw.open_dataset("fashion-mnist")
    rng = np.random.default_rng(0)
    train = rng.choice(np.flatnonzero(ds.split != "test"), 3000, replace=False)
    test = rng.choice(np.flatnonzero(ds.split == "test"), 2000, replace=False)
    return ds.subset(np.concatenate([train, test]))


@pytest.fixture(scope="module")
def cal_run(tmp_path_factory):
    """A cnn with one class held out, its calibration split scored with MC passes."""
    ds = _small_data()
    held = ds.class_names[-1]
    cfg = kw.TrainConfig(kw.DataConfig("small", holdout_classes=(held,)), kw.ModelConfig("cnn"), epochs=2,
                         progress=False, calibration_mc=MC)
    out = tmp_path_factory.mktemp("conformal") / "run"
    kw.train(cfg, out, dataset=ds)
    return out, ds


def test_the_run_keeps_its_calibration_split_probabilities(cal_run):
    out, ds = cal_run
    run = kw.load_run(out)
    split = split_for_config(ds, run.config.data, run.config.seed)
    cal = load_calibration(run)
    assert len(split.calibration) > 0 and not set(split.calibration) & set(np.concatenate([split.train, split.val,
                                                                                            split.test]))
    np.testing.assert_array_equal(cal.keys, split.calibration)
    np.testing.assert_array_equal(cal.labels, split.label_map[ds.labels[split.calibration]])
    images = ds.images(split.calibration)
    np.testing.assert_allclose(cal.probs["softmax"], kw.predict_proba(run, images), atol=1e-6)  # temperature in
    mc = next(iter(kw.predict_dataset(run, ds.subset(split.calibration), kw.run_engine(run, MC, seed=0),
                                       batch_size=10_000, progress=False)))
    np.testing.assert_allclose(cal.probs["mc"], mc.measures["probs_mc"], atol=1e-6)
    assert run.info["calibration"]["images"] == len(split.calibration) and run.info["calibration"]["mc_passes"] == MC


def _save_npz(path, ds, idx):
    np.savez(path, x=ds.images(idx), y=np.asarray(ds.class_names)[ds.labels[idx]])


def test_evaluate_coverage_from_the_set_column_equals_metrics(cal_run, tmp_path):
    """On the test split (and the held-out class), saved as a file of images the run never saw."""
    out, ds = cal_run
    split = split_for_config(ds, kw.load_run(out).config.data, 0)
    _save_npz(tmp_path / "d.npz", ds, np.concatenate([split.test, split.novel]))
    r = runner.invoke(app, ["evaluate", str(out), str(tmp_path / "d.npz"), "--mc", str(MC), "--conformal", "aps",
                            "--alpha", "0.1", "--out", str(tmp_path / "ev"), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "ev" / "predictions.csv")))
    run = kw.load_run(out)
    known = [row for row in rows if row["label"] in run.class_names]
    hits = [row["label"] in row["set"].split("|") for row in known]
    c = json.loads((tmp_path / "ev" / "metrics.json").read_text())["conformal"]
    assert c["coverage"] == pytest.approx(np.mean(hits)) and len(known) == len(split.test)
    assert c["mean_size"] == pytest.approx(np.mean([float(row["set_size"]) for row in known]))
    assert all(len(row["set"].split("|")) == int(float(row["set_size"])) for row in rows if row["set"])
    assert c["method"] == "aps" and c["probs"] == "mc" and "note" not in c  # same T and seed as calibration
    # per_class.csv counts the same hits class by class
    per_class = {p["class"]: p for p in csv.DictReader(open(tmp_path / "ev" / "per_class.csv"))}
    for name in run.class_names:
        mine = [h for h, row in zip(hits, known) if row["label"] == name]
        assert float(per_class[name]["coverage"]) == pytest.approx(np.mean(mine))
    # the held-out class is novel, and set_size is scored as a novelty measure
    novelty = {n["measure"]: n for n in csv.DictReader(open(tmp_path / "ev" / "novelty.csv"))}
    assert "set_size" in novelty and 0 <= float(novelty["set_size"]["auroc"]) <= 1
    from sklearn.metrics import roc_auc_score  # set_size scored with empty sets as the most uncertain

    size = np.array([float(row["set_size"]) for row in rows])
    is_novel = np.array([row["label"] not in run.class_names for row in rows])
    doubt = np.where(size == 0, size.max() + 1, size)
    assert float(novelty["set_size"]["auroc"]) == pytest.approx(roc_auc_score(is_novel, doubt))
    assert "Conformal prediction sets" in (tmp_path / "ev" / "report.html").read_text()


def test_sets_match_an_independent_fit_on_the_saved_calibration(cal_run, tmp_path):
    """The sets `predict` writes are those of a ConformalClassifier fitted by hand on the run's calibration
    probabilities and applied to the written MC means (keys: row positions)."""
    out, ds = cal_run
    run = kw.load_run(out)
    sub = ds.subset(np.arange(300))
    kw.write_predictions(run, sub, tmp_path / "p.csv", kw.PredictOptions(mc=MC, progress=False, part_size=120,
                                                                         conformal=ConformalOptions(method="lac", alpha=0.2)))
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    cal = load_calibration(run)
    clf = ConformalClassifier("lac", 0.2).fit(cal.probs["mc"], cal.labels, cal.keys)
    probs = np.array([[float(row[f"prob_{c}"]) for c in run.class_names] for row in rows])
    expected = ["|".join(np.asarray(run.class_names)[s]) or "{}"
                for s in clf.predict_sets(probs / probs.sum(1, keepdims=True))]
    assert sum(e != row["set"] for e, row in zip(expected, rows)) <= 1  # 9 written digits may move one borderline
    assert any(row["set"] == "{}" for row in rows)  # LAC: some images get no class, written as {} ...
    import pandas as pd

    table = pd.read_csv(tmp_path / "p.csv")
    assert table["set"].notna().all() and (table["set"] == "{}").sum() == sum(row["set"] == "{}" for row in rows)


def test_an_image_gets_its_aps_set_wherever_it_sits(cal_run, tmp_path):
    """The APS uniform is keyed by the image's id, not its row: the same images in reverse order get the same sets."""
    out, ds = cal_run
    run, idx = kw.load_run(out), np.arange(200)
    opts = kw.PredictOptions(mc=MC, progress=False, conformal=ConformalOptions(method="aps", alpha=0.1))
    kw.write_predictions(run, ds.subset(idx), tmp_path / "a.csv", opts)
    kw.write_predictions(run, ds.subset(idx[::-1].copy()), tmp_path / "b.csv", opts)
    a = {r["id"]: r["set"] for r in csv.DictReader(open(tmp_path / "a.csv"))}
    b = {r["id"]: r["set"] for r in csv.DictReader(open(tmp_path / "b.csv"))}
    assert a == b and len(a) == 200
    assert all(s != "{}" for s in a.values())  # randomised APS sets are never empty


def test_conformal_refits_on_other_labelled_data_and_refuses_training_images(cal_run, tmp_path):
    out, ds = cal_run
    run = kw.load_run(out)
    split = split_for_config(ds, run.config.data, run.config.seed)
    other = np.concatenate([split.test, split.novel])
    _save_npz(tmp_path / "controls.npz", ds, other)
    r = runner.invoke(app, ["conformal", str(out), str(tmp_path / "controls.npz"), "--mc", "5", "--quiet"])
    assert r.exit_code == 0, r.output
    cal = load_calibration(kw.load_run(out))
    assert len(cal.labels) == len(split.test) and cal.info["mc_passes"] == 5  # the held-out class was skipped
    assert "threshold" in r.output
    _save_npz(tmp_path / "train.npz", ds, split.train)
    r = runner.invoke(app, ["conformal", str(out), str(tmp_path / "train.npz"), "--mc", "0", "--quiet"])
    assert r.exit_code == 2 and "training images" in r.output and "--allow-training-images" in r.output
    # after recalibrating with 5 passes, predicting with other passes says the guarantee does not hold
    with pytest.raises(ConfigError, match="MC mean"):
        run_sets(kw.load_run(out), ConformalOptions(probs="mc"), None)
    assert "not guaranteed" in run_sets(kw.load_run(out), ConformalOptions(), 20).note


def test_a_run_without_calibration_images_says_how_to_get_them(digits_run, tmp_path):
    run = kw.load_run(digits_run)
    (digits_run / CALIBRATION_FILE).rename(tmp_path / "moved")
    try:
        r = runner.invoke(app, ["predict", str(digits_run), "digits", "--conformal", "aps", "--out",
                                str(tmp_path / "p.csv"), "--quiet"])
        assert r.exit_code == 2 and "knowwhen conformal" in r.output and not (tmp_path / "p.csv").exists()
    finally:
        (tmp_path / "moved").rename(digits_run / CALIBRATION_FILE)
    assert run.config.data.calibration_fraction == 0.1


def test_conformal_flags_need_conformal_and_options_are_checked(digits_run, tmp_path):
    r = runner.invoke(app, ["predict", str(digits_run), "digits", "--by-class", "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 2 and "add --conformal aps" in r.output
    r = runner.invoke(app, ["predict", str(digits_run), "digits", "--conformal", "xyz", "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 2 and "lac, aps, raps" in r.output
    with pytest.raises(ConfigError, match="alpha"):
        ConformalOptions(alpha=1.5)


def test_saved_configs_from_before_had_no_calibration_split():
    from knowwhen.config import TrainConfig, config_from_dict, config_to_dict

    saved = config_to_dict(kw.TrainConfig(kw.DataConfig("digits")))
    del saved["data"]["calibration_fraction"]
    assert config_from_dict(TrainConfig, saved, saved=True).data.calibration_fraction == 0.0
    assert config_from_dict(TrainConfig, saved).data.calibration_fraction == 0.1  # a user's file: the default
