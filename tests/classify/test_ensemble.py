"""Deep ensembles: training (member seeds, resume, parallel processes), loading, and the samples every measure
is computed from, checked against the members predicted one by one."""
import dataclasses
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file
from scipy.special import softmax
from scipy.stats import entropy
from typer.testing import CliRunner

import knowwhen as kw
from knowwhen.cli import app
from knowwhen.errors import CheckpointError, ConfigError
from knowwhen.models import Ensemble
from knowwhen.uncertainty import MCDropout
from knowwhen.uncertainty.ensemble_mc import member_seed


def _config(**changes):
    # The digits_run fixture's settings: member 0 of an ensemble of them is that very network.
    settings = {"epochs": 3, "progress": False, "seed": 0, **changes}
    return kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("cnn"), **settings)


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    return kw.train(_config(ensemble=2, calibration_mc=10), tmp_path_factory.mktemp("ens") / "ens")


def _images(n=300):
    ds = kw.open_dataset("digits").subset(np.arange(n))
    _, images = next(ds.batches(np.arange(n), n))
    return ds, images


def _all(batches, key):
    return np.concatenate([b.measures[key] if key in b.measures else getattr(b, key) for b in batches], axis=-2
                          if key == "passes" else 0)


def test_an_ensemble_of_one_member_predicts_exactly_as_the_network_alone(digits_run):
    run = kw.load_run(digits_run)
    one = dataclasses.replace(run, model=Ensemble([run.model]))
    ds, _ = _images(200)
    alone = list(kw.predict_dataset(run, ds, kw.run_engine(run, 20), progress=False, keep_passes=True))
    ensemble = list(kw.predict_dataset(one, ds, kw.run_engine(one, 20), progress=False, keep_passes=True))
    for a, b in zip(alone, ensemble):
        np.testing.assert_array_equal(a.logits, b.logits)
        np.testing.assert_array_equal(a.passes, b.passes)
        assert set(a.measures) == set(b.measures) and "novelty" in a.measures and "knn" in a.measures
        for k in a.measures:
            np.testing.assert_array_equal(a.measures[k], b.measures[k])


def test_member_zero_is_the_single_network_and_the_other_members_differ(digits_run, ensemble_run):
    single = load_file(str(digits_run / "model.safetensors"))
    first, second = (load_file(str(ensemble_run / "members" / m / "model.safetensors")) for m in ("0", "1"))
    for k in single:
        np.testing.assert_array_equal(single[k], first[k])
    assert any(not np.array_equal(single[k], second[k]) for k in single)
    saved = json.loads((ensemble_run / "config.json").read_text())
    assert saved["ensemble"]["members"] == 2 and saved["ensemble"]["training_seeds"][0] == 0
    assert saved["metrics"]["members"] == 2 and "test_acc" in saved["metrics"] and "features" in saved


def test_without_mc_the_samples_are_the_members_softmax_outputs(ensemble_run):
    run = kw.load_run(ensemble_run)
    members = [kw.load_run(ensemble_run / "members" / m) for m in ("0", "1")]
    ds, images = _images()
    batches = list(kw.predict_dataset(run, ds, kw.run_engine(run, None, use_temperature=False), progress=False,
                                      use_temperature=False))
    p = np.stack([kw.predict_proba(m, images, use_temperature=False) for m in members]).astype(np.float64)
    mean = p.mean(0)
    np.testing.assert_allclose(_all(batches, "probs_mc"), mean, atol=1e-6)
    np.testing.assert_allclose(_all(batches, "entropy_mc"), entropy(mean, axis=1), atol=1e-5)
    np.testing.assert_allclose(_all(batches, "mutual_info_mc"),
                               entropy(mean, axis=1) - entropy(p, axis=2).mean(0), atol=1e-5)
    np.testing.assert_allclose(_all(batches, "p_max_mc"), mean.max(1), atol=1e-6)
    # The ensemble's own (softmax) columns: the softmax of the members' mean logits.
    logits = np.stack([m.model(m.preprocess(images)).detach().numpy() for m in members])
    np.testing.assert_allclose(np.concatenate([b.probs for b in batches]), softmax(logits.mean(0), axis=1),
                               atol=1e-6)


def test_with_mc_the_samples_are_every_pass_of_every_member_with_its_own_masks(ensemble_run):
    run = kw.load_run(ensemble_run)
    ds, images = _images(100)
    batches = list(kw.predict_dataset(run, ds, kw.run_engine(run, 7, seed=3, use_temperature=False), progress=False,
                                      use_temperature=False, keep_passes=True))
    passes = np.concatenate([b.passes for b in batches], axis=1)
    assert passes.shape == (14, 100, 10)
    x = run.preprocess(images)
    for m, member in enumerate(run.model.members):
        expected = MCDropout(member, 7, member_seed(3, m)).predict(x)[1].numpy()
        np.testing.assert_allclose(passes[7 * m:7 * (m + 1)], expected, atol=1e-6)
    assert member_seed(3, 0) == 3 and member_seed(3, 1) != 3


def test_predict_cli_gives_an_ensemble_mc_columns_without_mc(ensemble_run, tmp_path):
    r = CliRunner().invoke(app, ["predict", str(ensemble_run), "digits", "--out", str(tmp_path / "p.csv"),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert {"mutual_info_mc", "knn", "novelty"} <= set(header)
    r = CliRunner().invoke(app, ["info", str(ensemble_run)])
    assert r.exit_code == 0 and "deep ensemble of 2 members" in r.output, r.output


def test_resume_keeps_finished_members_and_trains_the_missing_one(tmp_path):
    out, cfg = tmp_path / "e", _config(ensemble=2, epochs=1, calibration_mc=0)
    kw.train(cfg, out)
    first = out / "members" / "0" / "model.safetensors"
    stamp = first.stat().st_mtime_ns
    shutil.rmtree(out / "members" / "1")                       # as if stopped while training member 1
    payload = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**payload, "status": "training"}))
    with pytest.raises(CheckpointError, match="members/1"):
        kw.load_run(out, allow_incomplete=True)
    r = CliRunner().invoke(app, ["train", "--resume", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert first.stat().st_mtime_ns == stamp and kw.load_run(out).members == 2


def test_members_train_in_parallel_processes_to_the_same_weights(tmp_path):
    r = CliRunner().invoke(app, ["train", "digits", "--epochs", "1", "--ensemble", "2", "--ensemble-jobs", "2",
                                 "--calibration-mc", "0", "--out", str(tmp_path / "par"), "--quiet"])
    assert r.exit_code == 0, r.output
    saved = kw.load_run(tmp_path / "par").config
    kw.train(saved, tmp_path / "seq")                          # the same settings, one member after the other
    for m in ("0", "1"):
        a = load_file(str(tmp_path / "par" / "members" / m / "model.safetensors"))
        b = load_file(str(tmp_path / "seq" / "members" / m / "model.safetensors"))
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=1e-5)


def test_bad_ensemble_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="ensemble"):
        _config(ensemble=0)
    with pytest.raises(ConfigError, match="--ensemble-jobs"):
        kw.train(_config(ensemble=2, devices=2), tmp_path / "x")
