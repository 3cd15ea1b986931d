import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from safetensors.torch import load_file

import knowwhen as kw
from knowwhen.classify.predict import predict_proba
from knowwhen.cli import app


def _cfg(**kw_):
    base = dict(data=kw.DataConfig("digits"), model=kw.ModelConfig("mlp", {"hidden": 64}), epochs=3,
                progress=False, seed=0)
    base.update(kw_)
    return kw.TrainConfig(**base)


def test_cnn_learns_digits_well_above_chance(digits_run):
    run = kw.load_run(digits_run)
    assert run.metrics["test_acc"] > 0.6  # chance is 0.1
    rows = list(csv.DictReader(open(digits_run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert not (digits_run / "resume.ckpt").exists()


def test_saved_run_reloads_with_identical_predictions(digits_run):
    ds = kw.open_dataset("digits")
    x = ds.images(np.arange(100))
    a = predict_proba(kw.load_run(digits_run), x)
    b = predict_proba(kw.load_run(digits_run), x)
    assert np.array_equal(a, b)
    # The reloaded model equals the best epoch's weights on disk.
    state = load_file(str(digits_run / "model.safetensors"))
    run = kw.load_run(digits_run)
    assert all(torch.equal(v, state[k]) for k, v in run.model.state_dict().items())


def test_training_is_reproducible_from_the_seed(tmp_path):
    a = kw.train(_cfg(epochs=2), tmp_path / "a")
    b = kw.train(_cfg(epochs=2), tmp_path / "b")
    sa, sb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_hinge_loss_sgd_and_augmentation_train(tmp_path):
    cfg = _cfg(loss="hinge", optimizer="sgd", lr=0.05, epochs=4,
               augment=kw.AugmentConfig(rotation=10, shift=0.1))
    run = kw.load_run(kw.train(cfg, tmp_path / "h"))
    assert run.metrics["test_acc"] > 0.5


def test_holdout_class_is_not_an_output(tmp_path):
    cfg = _cfg(data=kw.DataConfig("digits", holdout_classes=("9",)))
    run = kw.load_run(kw.train(cfg, tmp_path / "h"))
    assert run.class_names == tuple("012345678")
    info = json.loads((tmp_path / "h" / "config.json").read_text())["data"]
    assert info["sizes"]["novel"] == 180 and info["class_counts"]["train"][9] == 0


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path):
    cfg = _cfg(epochs=30, patience=1, lr=0.5)  # a huge learning rate makes validation loss rise quickly
    run = kw.load_run(kw.train(cfg, tmp_path / "e"))
    assert run.metrics["stopped_early"] and run.metrics["epochs_run"] < 30
    rows = list(csv.DictReader(open(tmp_path / "e" / "metrics.csv")))
    best = min(range(len(rows)), key=lambda i: float(rows[i]["val_loss"]))
    assert run.metrics["best_epoch"] == best


def test_existing_run_is_not_overwritten_by_accident(tmp_path):
    kw.train(_cfg(epochs=1), tmp_path / "r")
    with pytest.raises(kw.ConfigError, match="already holds a run"):
        kw.train(_cfg(epochs=1), tmp_path / "r")
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    (tmp_path / "r" / "config.json").write_text(json.dumps({**cfg, "status": "training"}))  # as if killed
    with pytest.raises(kw.ConfigError, match="different settings.*lr"):
        kw.train(_cfg(epochs=1, lr=0.1), tmp_path / "r", resume=True)


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, caplog):
    epochs = 12  # long enough that the kill lands mid-run
    full = kw.train(_cfg(epochs=epochs, patience=None), tmp_path / "full")
    out = tmp_path / "killed"
    code = ("import knowwhen as kw; kw.train(kw.TrainConfig(kw.DataConfig('digits'), "
            "kw.ModelConfig('mlp', {'hidden': 64}), epochs=%d, patience=None, progress=False, seed=0), %r)"
            % (epochs, str(out)))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.csv").exists() and len((out / "metrics.csv").read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = json.loads((out / "config.json").read_text())["status"]
    if status == "complete":
        pytest.skip("the training process finished before it could be killed")
    with pytest.raises(kw.CheckpointError, match="did not finish"):
        kw.load_run(out)
    finished = len((out / "metrics.csv").read_text().splitlines()) - 1
    with caplog.at_level(logging.INFO, logger="knowwhen"):    # the short form: the run's saved settings
        r = CliRunner().invoke(app, ["train", "--resume", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert f"resuming {out} after epoch {finished} of at most {epochs}" in caplog.text
    a, b = load_file(str(full / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_resume_of_a_complete_run_is_refused(tmp_path):
    kw.train(_cfg(epochs=1), tmp_path / "r")
    with pytest.raises(kw.ConfigError, match="complete; nothing to resume"):
        kw.train(_cfg(epochs=2), tmp_path / "r", resume=True)


def test_nan_in_an_hdf5_training_set_stops_with_the_item(tmp_path):
    import h5py

    x = np.random.default_rng(0).random((40, 6, 6)).astype(np.float32)
    x[17, 2, 2] = np.inf
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x, np.arange(40) % 2
    cfg = _cfg(data=kw.DataConfig(str(tmp_path / "d.h5"), test_fraction=0.0, val_fraction=0.0))
    with pytest.raises(kw.DataError, match=r"NaN or infinite.*d\.h5:17"):
        kw.train(cfg, tmp_path / "r")


@pytest.mark.skipif(not __import__("_fakes").DEEPLOC.exists(), reason="../shared/data/deeploc is absent")
def test_vgg_trains_on_the_real_deeploc_file_with_percentile_clipping(tmp_path):
    from _fakes import DEEPLOC

    cfg = kw.TrainConfig(kw.DataConfig(str(DEEPLOC), clip_percentiles=(0.1, 99.9), test_fraction=0.0,
                                       val_fraction=0.0),
                         kw.ModelConfig("vgg", {"widths": [8, 16], "dense": 32}), epochs=2, batch_size=8,
                         progress=False, augment=kw.AugmentConfig(rotation=180, hflip=True, vflip=True))
    run = kw.load_run(kw.train(cfg, tmp_path / "deeploc"))
    assert run.input_shape == (2, 64, 64) and len(run.class_names) == 11
    assert run.normalizer.clip_low is not None and 30_000 < run.normalizer.clip_low[0] < run.normalizer.clip_high[0]
    probs = kw.predict_proba(run, kw.open_dataset(DEEPLOC).images(np.arange(36)))
    assert probs.shape == (36, 11) and np.isfinite(probs).all()


def test_off_a_terminal_training_logs_one_line_per_epoch_counted_from_one(tmp_path, caplog):
    import logging

    cfg = kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("mlp", {"hidden": 16}), epochs=2, patience=None)
    with caplog.at_level(logging.INFO, logger="knowwhen"):
        kw.train(cfg, tmp_path / "r")                     # progress on; pytest's stderr is no terminal
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "train_loss" in lines[0] and "val_acc" in lines[0] and lines[0].endswith(" s)")


def test_the_progress_bar_counts_epochs_from_one():
    from types import SimpleNamespace

    from tqdm import tqdm

    from knowwhen.training.progress import EpochBar

    bar = EpochBar()
    bar.train_progress_bar = tqdm(disable=True)
    trainer = SimpleNamespace(current_epoch=0, max_epochs=10, num_training_batches=5, fast_dev_run=False,
                              val_check_interval=1.0, check_val_every_n_epoch=1, num_val_batches=[])
    bar._trainer = trainer
    try:
        bar.on_train_epoch_start(trainer)
    except AttributeError:
        pytest.skip("this Lightning's bar needs more of a trainer than the fake gives")
    assert bar.train_progress_bar.desc.startswith("Epoch 1/10")   # tqdm adds ": "


def _tiny_npz(path, per_class=10):
    ds = kw.open_dataset("digits")
    idx = np.concatenate([np.flatnonzero(ds.labels == c)[:per_class] for c in range(4)])
    np.savez(path, x=ds.images(idx), y=ds.labels[idx])
    return path


def test_tiny_splits_are_warned_about_and_get_no_temperature(tmp_path, caplog):
    data = _tiny_npz(tmp_path / "tiny.npz")
    cfg = _cfg(data=kw.DataConfig(str(data)), epochs=1)
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        run = kw.load_run(kw.train(cfg, tmp_path / "r"))
    assert "the val split has only 4 images" in caplog.text and "the test split has only 8 images" in caplog.text
    assert run.temperature == 1.0 and "temperature" not in run.metrics
    assert "not fitted: 4 validation image(s)" in run.info["temperature_note"]
    r = CliRunner().invoke(app, ["info", str(tmp_path / "r")])
    assert "temperature 1.0000 (not fitted: 4 validation image(s), fewer than 50" in r.output
    kw.evaluate_run(run, kw.open_dataset(data), tmp_path / "e", kw.EvaluateOptions(mc=None, progress=False))
    from knowwhen.report.build import build_report

    assert "not fitted: 4 validation image(s)" in build_report(tmp_path / "e", network=run).read_text()


def test_a_split_asked_for_but_empty_is_refused_before_anything_is_written(tmp_path):
    data = _tiny_npz(tmp_path / "tiny.npz")
    with pytest.raises(kw.ConfigError, match=r"--val-fraction 0.01 of 40 images gives no val images"):
        kw.train(_cfg(data=kw.DataConfig(str(data), val_fraction=0.01), epochs=1), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_time_limit_that_cuts_training_short_is_said_and_recorded(tmp_path, caplog):
    # 0.2 s for 200 epochs of digits: the limit stops it, and the user must hear which epoch it cut short
    cfg = _cfg(epochs=200, max_minutes=0.2 / 60, patience=None, batch_size=16)
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        kw.train(cfg, tmp_path / "r")
    said = [r.getMessage() for r in caplog.records if "time limit" in r.getMessage()]
    assert len(said) == 1 and "of 200" in said[0] and "--max-minutes" in said[0], caplog.text
    stopped = json.loads((tmp_path / "r" / "config.json").read_text())["metrics"]["stopped_at_time_limit"]
    assert stopped["of_epochs"] == 200 and 1 <= stopped["epoch"] < 200 and stopped["max_minutes"] == 0.2 / 60
    assert 1 <= stopped["batches"] <= stopped["of_batches"]


def test_a_time_limit_that_is_not_reached_says_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        kw.train(_cfg(epochs=2, max_minutes=30), tmp_path / "r")
    assert "time limit" not in caplog.text
    assert "stopped_at_time_limit" not in json.loads((tmp_path / "r" / "config.json").read_text())["metrics"]


def test_the_train_command_says_when_the_time_limit_cut_it_short(tmp_path):
    r = CliRunner().invoke(app, ["train", "digits", "--model", "mlp", "--epochs", "200", "--max-minutes", "0.003",
                                 "--batch-size", "16", "--out", str(tmp_path / "r"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "stopped by the time limit (0.003 min) in epoch" in r.output and "of 200" in r.output, r.output
