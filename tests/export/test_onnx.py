"""knowwhen export: one ONNX graph with the run's MC masks folded in, checked with onnxruntime."""
import hashlib

import numpy as np
import pytest
from typer.testing import CliRunner

import knowwhen as kw
from knowwhen.cli import app

ort = pytest.importorskip("onnxruntime")
runner = CliRunner()


def test_the_graph_computes_what_predict_computes_and_exports_the_same_bytes(digits_run, tmp_path):
    r = runner.invoke(app, ["export", str(digits_run), "--mc", "30", "--seed", "3", "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    ds = kw.open_dataset("digits")
    idx = np.arange(0, 1797, 3)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    names = [o.name for o in session.get_outputs()]
    run = kw.load_run(digits_run)
    for n in (len(idx), 1):   # dynamic batch size
        x = ds.images(idx[:n]).astype(np.float32)              # raw pixel values: normalisation is in the graph
        out = dict(zip(names, session.run(None, {"images": x})))
        ref = next(iter(kw.predict_dataset(run, ds.subset(idx[:n]), kw.run_engine(run, 30, seed=3), batch_size=1000,
                                           progress=False)))
        for name in ("p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc", "p_max"):
            np.testing.assert_allclose(out[name], ref.measures[name], atol=1e-4, err_msg=name)
        np.testing.assert_allclose(out["probs_mc"], ref.measures["probs_mc"], atol=1e-4)
        np.testing.assert_allclose(out["probs"], ref.probs, atol=1e-4)
        assert (out["pred_mc"] == ref.measures["pred_mc"]).mean() > 0.995   # argmax may flip where two tie to 1e-7
    assert np.mean(out["variation_ratio_mc"] > 0) >= 0 and names[0] == "probs"
    import json

    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["class_names"]) == list(kw.load_run(digits_run).class_names)
    assert meta["mc_passes"] == "30" and meta["seed"] == "3" and json.loads(meta["input_shape"]) == [1, 8, 8]
    first = hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest()
    runner.invoke(app, ["export", str(digits_run), "--mc", "30", "--seed", "3", "--out", str(tmp_path / "n.onnx")])
    assert hashlib.sha256((tmp_path / "n.onnx").read_bytes()).hexdigest() == first
    # another seed is another set of masks: other numbers
    runner.invoke(app, ["export", str(digits_run), "--mc", "30", "--seed", "4", "--out", str(tmp_path / "o.onnx")])
    other = ort.InferenceSession(str(tmp_path / "o.onnx")).run(["entropy_mc"], {"images": x})[0]
    assert not np.allclose(other, out["entropy_mc"])


def test_bad_exports_are_one_error_line(digits_run, tmp_path):
    for args, said in ((["--mc", "0"], "--mc 0"), (["--out-name", "m.txt"], "name an .onnx file")):
        out = tmp_path / (args[1] if args[0] == "--out-name" else "m.onnx")
        r = runner.invoke(app, ["export", str(digits_run), *([] if args[0] == "--out-name" else args), "--out", str(out)])
        assert r.exit_code == 2 and said in r.stderr and not out.exists(), r.output


def test_predict_with_the_exported_file_writes_predicts_columns(digits_run, tmp_path):
    import csv

    runner.invoke(app, ["export", str(digits_run), "--mc", "20", "--out", str(tmp_path / "m.onnx")])
    r = runner.invoke(app, ["predict", str(tmp_path / "m.onnx"), "digits", "--out", str(tmp_path / "o.csv"),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", str(digits_run), "digits", "--mc", "20", "--out", str(tmp_path / "p.csv"),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    got, want = list(csv.DictReader(open(tmp_path / "o.csv"))), list(csv.DictReader(open(tmp_path / "p.csv")))
    assert list(got[0]) == [c for c in want[0] if c not in ("energy", "mahalanobis", "rel_mahalanobis",
                                                             "gauss_density", "knn", "mahalanobis_tie",
                                                             "own_mahalanobis", "novelty")]
    assert [g["id"] for g in got] == [w["id"] for w in want] and [g["label"] for g in got] == [w["label"] for w in want]
    for col in ("p_max", "p_max_mc", "entropy_mc", "mutual_info_mc", "sigma_mc", "prob_3"):
        np.testing.assert_allclose([float(g[col]) for g in got], [float(w[col]) for w in want], atol=1e-4)
    assert np.mean([g["pred_mc"] == w["pred_mc"] for g, w in zip(got, want)]) > 0.998
    # settings the file fixes are refused, and nothing is written
    r = runner.invoke(app, ["predict", str(tmp_path / "m.onnx"), "digits", "--mc", "50", "--out",
                            str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "--mc" in r.stderr and not (tmp_path / "x.csv").exists()
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    r = runner.invoke(app, ["predict", str(tmp_path / "bad.onnx"), "digits", "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "not a readable ONNX file" in r.stderr and not (tmp_path / "x.csv").exists()
