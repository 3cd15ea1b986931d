import subprocess
import sys

import numpy as np

import knowwhen as kw
from knowwhen.data.loader import EpochBatchSampler
from knowwhen.classify.predict import predict_proba


def test_ranks_split_every_global_batch_into_equal_disjoint_slices():
    one = list(EpochBatchSampler(103, 16, shuffle=True, seed=1))
    ranks = [EpochBatchSampler(103, 16, shuffle=True, seed=1, rank=r, world=2) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(0)
    per_rank = [list(s) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0])
    assert all(len(a) == len(b) for a, b in zip(*per_rank))
    merged = np.concatenate([np.concatenate(pair) for pair in zip(*per_rank)])
    assert set(merged.tolist()) == set(range(103)) and len(merged) == 104  # one image repeated as padding
    assert set(np.concatenate(one).tolist()) == set(range(103))


def test_two_process_ddp_training_on_cpu_writes_one_run(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "knowwhen", "train", "digits", "--model", "mlp", "--epochs", "3", "--quiet",
           "--devices", "2", "--strategy", "ddp", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("saved run") == 1  # only rank 0 reports and writes
    assert sorted(p.name for p in out.iterdir()) == ["calibration.safetensors", "config.json", "features.safetensors",
                                                     "metrics.csv", "model.safetensors", "reference.safetensors"]
    run = kw.load_run(out)
    assert run.config.devices == 2 and len((out / "metrics.csv").read_text().splitlines()) == 4
    x = kw.open_dataset("digits").images(np.arange(200))
    np.testing.assert_array_equal(predict_proba(run, x), predict_proba(kw.load_run(out), x))
    single = kw.load_run(kw.train(kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("mlp"), epochs=3,
                                                 progress=False), tmp_path / "one"))
    assert abs(run.metrics["test_acc"] - single.metrics["test_acc"]) < 0.05


def test_killed_ddp_run_resumes(tmp_path):
    import csv
    import json
    import os
    import signal
    import time

    import pytest

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "knowwhen", "train", "digits", "--model", "mlp", "--epochs", "15", "--patience", "0",
           "--quiet", "--devices", "2", "--strategy", "ddp", "--out", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.csv").exists() and len((out / "metrics.csv").read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # rank 0 and the rank it launched
    proc.wait()
    if json.loads((out / "config.json").read_text())["status"] == "complete":
        pytest.skip("the run finished before it could be killed")
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" in r.stderr
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == list(range(15))
    assert kw.load_run(out).metrics["epochs_run"] == 15
