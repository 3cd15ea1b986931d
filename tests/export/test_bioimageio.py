"""knowwhen export --format bioimageio: a bioimage.io model package that bioimageio.core's model test passes (both
weights formats reproduce the test tensors), whose outputs are `predict --mc T --seed S`'s, with a model card
written from the run and its evaluation; ensembles and forecasters are refused."""
import csv
import json
import shutil
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

import knowwhen as kw
from knowwhen.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def package(digits_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bioimageio")
    np.savez(tmp / "noise.npz", x=np.random.default_rng(0).uniform(0, 16, (100, 8, 8)))  # a phenotype never seen
    r = runner.invoke(app, ["evaluate", str(digits_run), "digits", "--mc", "10", "--novel", str(tmp / "noise.npz"),
                            "--out", str(tmp / "eval"), "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", str(digits_run), "--mc", "10", "--out", str(tmp / "digits.zip"), "--author",
                            "Ada Lovelace", "--evaluation", str(tmp / "eval")])
    assert r.exit_code == 0, r.output
    return tmp / "digits.zip", tmp


def test_the_package_passes_bioimageio_cores_model_test(package):
    from bioimageio.core import test_model

    path, _ = package
    summary = test_model(str(path))
    assert summary.status == "passed", summary.format()
    tested = {d.name for d in summary.details if d.status == "passed"}
    assert any("(onnx)" in n for n in tested) and any("(pytorch_state_dict)" in n for n in tested)
    names = set(zipfile.ZipFile(path).namelist())
    assert {"rdf.yaml", "model.onnx", "weights.pt", "documentation.md", "test_input.npy", "test_probs_mc.npy"} <= names


def test_predict_with_the_package_equals_predict_with_the_run(package, digits_run):
    path, tmp = package
    x = kw.open_dataset("digits").images(np.arange(0, 1797, 9))
    np.savez(tmp / "some.npz", x=x)
    rows = {}
    for name, source, extra in (("run", digits_run, ["--mc", "10"]), ("package", path, [])):
        out = tmp / f"{name}.csv"
        r = runner.invoke(app, ["predict", str(source), str(tmp / "some.npz"), "--out", str(out), "--quiet", *extra])
        assert r.exit_code == 0, r.output
        rows[name] = list(csv.DictReader(open(out)))
    columns = [c for c in rows["package"][0] if c not in ("id",)]
    assert set(columns) <= set(rows["run"][0])
    for a, b in zip(rows["run"], rows["package"]):
        for c in columns:
            if c.startswith("pred"):
                assert a[c] == b[c]
            else:
                assert float(a[c]) == pytest.approx(float(b[c]), abs=1e-4), c


def test_the_model_card_reports_what_the_run_and_its_evaluation_measured(package):
    path, tmp = package
    card = zipfile.ZipFile(path).read("documentation.md").decode()
    metrics = json.loads((tmp / "eval" / "metrics.json").read_text())
    a = metrics["accuracy"]
    assert f"{a['accuracy']:.4f} (95% Wilson interval {a['ci_low']:.4f}-{a['ci_high']:.4f})" in card
    assert f"{metrics['calibration']['softmax_untempered']['ece']:.4f} before temperature scaling" in card
    first = metrics["novelty"]["measures"][0]
    assert f"{first['measure']} {first['auroc']:.3f}" in card
    assert "recalibrate on new plates" in card


def test_forecasters_and_ensembles_are_refused_with_a_clear_message(digits_run, tmp_path):
    fake = tmp_path / "forecaster"
    shutil.copytree(digits_run, fake)
    config = json.loads((fake / "config.json").read_text())
    (fake / "config.json").write_text(json.dumps({**config, "task": "forecast"}))
    r = runner.invoke(app, ["export", str(fake), "--out", str(tmp_path / "f.zip")])
    assert r.exit_code == 2 and "supports image classifiers (single networks) only" in r.output
    assert not (tmp_path / "f.zip").exists()
    from knowwhen.errors import ConfigError
    from knowwhen.export.bioimageio import packaged_graph

    class TwoMembers:
        members = 2

    with pytest.raises(ConfigError, match="export of a deep ensemble is not supported"):
        packaged_graph(TwoMembers(), 10, 0)
