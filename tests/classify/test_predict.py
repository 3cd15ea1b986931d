import csv
import os

import numpy as np
import pytest

import knowwhen as kw
from knowwhen.distributed import Ranks
from _fakes import image_folder


def test_prediction_csv_has_one_row_per_image_with_probabilities(digits_run, tmp_path):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    out = kw.write_predictions(run, ds, tmp_path / "p.csv", kw.PredictOptions(batch_size=100, progress=False))
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == len(ds)
    assert list(rows[0])[:4] == ["id", "label", "pred", "p_max"]
    assert list(rows[0])[4:] == ["energy", "mahalanobis", "rel_mahalanobis", "gauss_density", "knn",
                                "mahalanobis_tie", "own_mahalanobis", "novelty"] + [
        f"prob_{c}" for c in "0123456789"]
    probs = np.array([[float(r[f"prob_{c}"]) for c in "0123456789"] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    np.testing.assert_allclose([float(r["p_max"]) for r in rows], probs.max(1), rtol=1e-5)
    assert [r["pred"] for r in rows] == [str(k) for k in probs.argmax(1)]
    assert rows[5]["id"] == "digits:5" and rows[5]["label"] == str(ds.labels[5])
    acc = np.mean([r["pred"] == r["label"] for r in rows])
    assert acc > 0.6
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_batch_size_does_not_change_predictions(digits_run):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    a = np.concatenate([b.probs for b in kw.predict_dataset(run, ds, batch_size=7, progress=False)])
    b = np.concatenate([b.probs for b in kw.predict_dataset(run, ds, batch_size=1000, progress=False)])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # an image alone gives the numbers it gets among 1796 others, bit for bit (fixed blocks of rows)
    alone = kw.predict_proba(run, ds.images(np.array([900])))
    assert (alone[0] == kw.predict_proba(run, ds.images(np.arange(len(ds))))[900]).all()


def test_predict_dataset_takes_an_engine_that_carries_the_seed_and_the_runs_temperature(digits_run):
    """A pass count in the engine's place used to be accepted with the seed beside it, and an engine given there
    silently overrode that seed: now only an engine is taken, built by run_engine with its seed."""
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits").subset(np.arange(50))
    with pytest.raises(TypeError, match="run_engine"):
        next(kw.predict_dataset(run, ds, 20))
    with pytest.raises(ValueError, match="use_temperature=False"):
        next(kw.predict_dataset(run, ds, kw.run_engine(run, 20), use_temperature=False))
    a, b, c = (next(kw.predict_dataset(run, ds, kw.run_engine(run, 20, seed=s), progress=False)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.measures["probs_mc"], b.measures["probs_mc"])
    assert not np.array_equal(a.measures["probs_mc"], c.measures["probs_mc"])


def test_images_of_the_wrong_shape_are_refused(digits_run, tmp_path):
    ds = kw.open_dataset(image_folder(tmp_path / "r", ("a", "b"), 2, shape=(10, 10)))
    with pytest.raises(kw.DataError, match=r"\(1, 10, 10\).*trained on \(1, 8, 8\)"):
        next(kw.predict_dataset(kw.load_run(digits_run), ds))


def test_unlabelled_images_have_no_label_column(digits_run, tmp_path):
    x = kw.open_dataset("digits").images(np.arange(4))[:, 0].astype(np.uint8)
    np.savez(tmp_path / "u.npz", x=x)
    out = kw.write_predictions(kw.load_run(digits_run), kw.open_dataset(tmp_path / "u.npz"), tmp_path / "p.csv",
                               kw.PredictOptions(progress=False))
    assert open(out).readline().startswith("id,pred,p_max,")


CONTINUOUS = ("p_max", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "prob_3", "energy", "mahalanobis",
              "rel_mahalanobis", "gauss_density", "knn", "mahalanobis_tie", "own_mahalanobis", "novelty")


def test_mc_columns_and_batch_size_invariance(digits_run, tmp_path):
    """Every column, the feature scores and the fused novelty among them, is the same whatever the batch size, to
    float32 rounding: the features differ in their last bits between batch sizes (the CPU's kernels block them
    differently), and the novelty p-values are continuous in the scores, so they differ as little."""
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    tables = {}
    for bs in (1000, 33, 7, 256):
        out = kw.write_predictions(run, ds, tmp_path / f"{bs}.csv", kw.PredictOptions(mc=20, seed=1, batch_size=bs,
                                                                                   progress=False))
        rows = list(csv.DictReader(open(out)))
        tables[bs] = {col: np.array([float(r[col]) for r in rows]) for col in (*CONTINUOUS, "variation_ratio_mc")}
        tables[bs]["pred_mc"] = [r["pred_mc"] for r in rows]
    assert list(rows[0])[:19] == ["id", "label", "pred", "p_max", "pred_mc", "p_max_mc", "sigma_mc", "entropy_mc",
                                  "mutual_info_mc", "variation_ratio_mc", "energy", "mahalanobis", "rel_mahalanobis",
                                  "gauss_density", "knn", "mahalanobis_tie", "own_mahalanobis", "novelty", "prob_0"]
    a = tables[1000]
    for bs in (33, 7, 256):
        for col in CONTINUOUS:
            # tolerance: float32 rounding relative to the value, or to the column's spread where a score is a
            # difference of larger numbers (rel_mahalanobis, energy near 0)
            np.testing.assert_allclose(tables[bs][col], a[col], rtol=1e-4, atol=1e-5 * np.ptp(a[col]), err_msg=col)
        # votes and argmaxes may flip only where two classes tie to rounding: not on this data
        assert tables[bs]["pred_mc"] == a["pred_mc"]
        np.testing.assert_allclose(tables[bs]["variation_ratio_mc"], a["variation_ratio_mc"], atol=1e-9)
    probs = np.array([[float(r[f"prob_{c}"]) for c in "0123456789"] for r in rows])
    np.testing.assert_allclose(probs.max(1), [float(r["p_max_mc"]) for r in rows], rtol=1e-5)
    assert np.mean(a["variation_ratio_mc"] > 0) > 0.01  # dropout really varies
    # the network sees fixed blocks of rows whatever the batch size, so on one machine the files are identical
    assert len({(tmp_path / f"{bs}.csv").read_bytes() for bs in (1000, 33, 7, 256)}) == 1


def test_saved_passes_reproduce_the_measures(digits_run, tmp_path):
    from knowwhen.uncertainty import measures_from_passes

    run = kw.load_run(digits_run)
    x = kw.open_dataset("digits").images(np.arange(50))
    ds = kw.dataset_from_arrays(x, None, channels="first")
    out = kw.write_predictions(run, ds, tmp_path / "p.csv",
                               kw.PredictOptions(progress=False, mc=15, passes_out=tmp_path / "p.npy"))
    passes = np.load(tmp_path / "p.npy")
    assert passes.shape == (15, 50, 10)
    ref = measures_from_passes(passes)
    rows = list(csv.DictReader(open(out)))
    np.testing.assert_allclose([float(r["entropy_mc"]) for r in rows], ref["entropy_mc"], rtol=1e-4)
    with pytest.raises(kw.ConfigError, match="--mc"):
        kw.write_predictions(run, ds, tmp_path / "q.csv", kw.PredictOptions(progress=False,
                                                                           passes_out=tmp_path / "q.npy"))


def test_parquet_output_matches_csv(digits_run, tmp_path):
    import pyarrow.parquet as pq

    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    a = kw.write_predictions(run, ds, tmp_path / "p.csv", kw.PredictOptions(progress=False, mc=5, part_size=500))
    b = kw.write_predictions(run, ds, tmp_path / "p.parquet", kw.PredictOptions(progress=False, mc=5, part_size=700))
    rows, table = list(csv.DictReader(open(a))), pq.read_table(b).to_pydict()
    assert list(table) == list(rows[0]) and len(table["id"]) == len(rows) == 1797
    assert table["id"] == [r["id"] for r in rows] and table["pred_mc"] == [r["pred_mc"] for r in rows]
    np.testing.assert_allclose(table["entropy_mc"], [float(r["entropy_mc"]) for r in rows], rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.parquet"]  # part folders removed


def test_sharded_parts_merge_to_the_single_process_output(digits_run, tmp_path):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    one = kw.write_predictions(run, ds, tmp_path / "one.csv", kw.PredictOptions(progress=False, mc=5, part_size=300))
    kw.write_predictions(run, ds, tmp_path / "two.csv", kw.PredictOptions(progress=False, mc=5, part_size=300), Ranks(0, 2))
    assert not (tmp_path / "two.csv").exists()  # rank 0 alone cannot merge: rank 1's parts are missing
    kw.write_predictions(run, ds, tmp_path / "two.csv", kw.PredictOptions(progress=False, mc=5, part_size=300), Ranks(1, 2))
    kw.write_predictions(run, ds, tmp_path / "two.csv", kw.PredictOptions(progress=False, mc=5, part_size=300), Ranks(0, 2))
    assert (tmp_path / "two.csv").read_bytes() == one.read_bytes()


def test_leftover_parts_of_another_command_are_refused(digits_run, tmp_path):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    kw.write_predictions(run, ds, tmp_path / "p.csv", kw.PredictOptions(progress=False, mc=5, part_size=300), Ranks(1, 2))
    with pytest.raises(kw.ConfigError, match=r"different prediction \(mc differ\).*delete"):
        kw.write_predictions(run, ds, tmp_path / "p.csv", kw.PredictOptions(progress=False, mc=7, part_size=300))


def test_prediction_killed_midway_resumes_to_the_same_file(digits_run, tmp_path, caplog):
    import logging
    import signal
    import subprocess
    import sys
    import time

    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    full = kw.write_predictions(run, ds, tmp_path / "full.csv", kw.PredictOptions(progress=False, mc=50, part_size=60))
    out = tmp_path / "killed.csv"
    code = ("import knowwhen as kw; kw.write_predictions(kw.load_run(%r), kw.open_dataset('digits'), %r, kw.PredictOptions("
            "progress=False, mc=50, part_size=60))" % (str(digits_run), str(out)))
    proc = subprocess.Popen([sys.executable, "-c", code])
    parts = tmp_path / ".killed.csv.parts"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if parts.exists() and len(list(parts.glob("part-*.csv"))) >= 5:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if out.exists():
        pytest.skip("the prediction finished before it could be killed")
    done = sorted(parts.glob("part-*.csv"))
    assert 5 <= len(done) < 30
    for part in done:  # every finished part is whole: 60 rows (the atomic rename never exposes half a file)
        assert len(part.read_text().splitlines()) == 60
    with caplog.at_level(logging.INFO, logger="knowwhen"):
        kw.write_predictions(run, ds, out, kw.PredictOptions(progress=False, mc=50, part_size=60))
    assert "skipping" in caplog.text
    assert out.read_bytes() == full.read_bytes() and not parts.exists()


def test_two_processes_under_torchrun_write_the_single_process_file(digits_run, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    single = tmp_path / "single.csv"
    args = ["predict", str(digits_run), "digits", "--mc", "10", "--part-size", "250", "--quiet"]
    # One thread in every process (torchrun's default): float32 sums then add up in the same order, so the files
    # can be compared byte for byte (with 2 threads against 1, a last digit differs now and then).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "knowwhen", *args, "--out", str(single)], check=True, env=env)
    two = tmp_path / "two.csv"
    r = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "knowwhen", *args, "--out", str(two)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert two.read_bytes() == single.read_bytes()


def test_devices_2_launches_two_processes_with_fabric(digits_run, tmp_path):
    import subprocess
    import sys

    args = ["predict", str(digits_run), "digits", "--mc", "10", "--part-size", "300", "--quiet"]
    subprocess.run([sys.executable, "-m", "knowwhen", *args, "--out", str(tmp_path / "one.csv")], check=True)
    r = subprocess.run([sys.executable, "-m", "knowwhen", *args, "--devices", "2", "--out", str(tmp_path / "two.csv")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("wrote 1797 predictions") == 1
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def test_the_bar_of_each_part_says_which_part_it_is(digits_run, tmp_path, capsys):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    kw.write_predictions(run, ds, tmp_path / "p.csv", kw.PredictOptions(part_size=600, progress=True))
    err = capsys.readouterr().err
    assert "part 1 of 3" in err and "part 3 of 3" in err


def test_csv_numbers_keep_nine_significant_digits(digits_run, tmp_path):
    import pyarrow.parquet as pq

    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    options = kw.PredictOptions(mc=5, progress=False)
    a = kw.write_predictions(run, ds, tmp_path / "p.csv", options)
    b = kw.write_predictions(run, ds, tmp_path / "p.parquet", options)
    rows, table = list(csv.DictReader(open(a))), pq.read_table(b).to_pydict()
    for col in ("p_max", "entropy_mc", "prob_3"):
        np.testing.assert_allclose([float(r[col]) for r in rows], table[col], rtol=6e-9, atol=0)
