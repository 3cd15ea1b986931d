import csv

import pytest
from typer.testing import CliRunner

import knowwhen as kw

from knowwhen.cli import app

runner = CliRunner()


def test_train_predict_info_end_to_end(tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "digits", "--model", "mlp", "--epochs", "2", "--out", str(run), "--quiet",
                            "--holdout-class", "9", "--model-arg", "hidden=32"])
    assert r.exit_code == 0, r.output
    assert "saved run" in r.output and "test_acc" in r.output
    best = kw.load_run(run).metrics["best_epoch"]                 # stored as an index from 0
    assert f"(best epoch {best + 1} of 2," in r.output              # shown counted from 1, like the bar
    r = runner.invoke(app, ["predict", str(run), "digits", "--out", str(tmp_path / "p.csv"), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 1797 and "prob_9" not in rows[0] and {r["label"] for r in rows} >= {"9"}
    r = runner.invoke(app, ["info", str(run)])
    assert r.exit_code == 0 and "total parameters" in r.output and "held out: 9" in r.output
    assert "temperature" in r.output and "normalisation per channel: mean (" in r.output


def test_bad_input_is_one_line_on_stderr_with_exit_code_2(tmp_path):
    r = runner.invoke(app, ["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["train", "digits", "--out", str(tmp_path / "r"), "--lr", "-3"])
    assert r.exit_code == 2 and "`lr` is -3.0" in r.stderr


def test_a_model_of_the_other_task_is_refused_before_anything_is_written(tmp_path):
    r = runner.invoke(app, ["train", "digits", "--model", "lstm", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "forecaster" in r.stderr and "knowwhen forecast train" in r.stderr
    assert not (tmp_path / "r").exists()
    r = runner.invoke(app, ["forecast", "train", "nile", "--model", "cnn", "--out", str(tmp_path / "f")])
    assert r.exit_code == 2 and "image classifier" in r.stderr and "knowwhen train" in r.stderr
    assert not (tmp_path / "f").exists()
    r = runner.invoke(app, ["models"])
    classifiers, forecasters = r.output.split("forecasters")
    assert "cnn" in classifiers and "lstm" not in classifiers and "lstm" in forecasters and "cnn" not in forecasters


@pytest.mark.parametrize("spelling", ["widths=(4,8)", "widths=[4, 8]", "widths=4,8"])
def test_tuple_model_arguments_in_every_spelling(tmp_path, spelling):
    r = runner.invoke(app, ["train", "digits", "--model", "vgg", "--model-arg", spelling, "--model-arg",
                            "convs_per_block=1", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert kw.load_run(tmp_path / "r").config.model.args["widths"] == [4, 8] or \
        tuple(kw.load_run(tmp_path / "r").config.model.args["widths"]) == (4, 8)


def test_parse_value():
    from knowwhen.cli.app import parse_value

    assert parse_value("(16, 32)") == parse_value("[16,32]") == parse_value("16,32") == (16, 32)
    assert parse_value("[[1, 2], [3]]") == ((1, 2), (3,))
    assert parse_value("0.5") == 0.5 and parse_value("true") is True and parse_value("a,b") == ("a", "b")
    assert parse_value("(a, b)") == ("a", "b") and parse_value("cells") == "cells"


def test_a_wrongly_typed_model_argument_is_a_clean_error(tmp_path):
    r = runner.invoke(app, ["train", "digits", "--model", "cnn", "--model-arg", "dense=wide", "--out",
                            str(tmp_path / "r")])
    assert r.exit_code == 2 and "model 'cnn'" in r.stderr and "dense=128" in r.stderr


def test_debug_shows_the_traceback(tmp_path):
    r = runner.invoke(app, ["--debug", "info", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "Traceback" in r.stderr


def test_every_command_has_help_with_an_example():
    for cmd in ("train", "predict", "info", "demo", "models"):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Example: knowwhen" in r.output


def test_skip_bad_from_the_cli(tmp_path, digits_run):
    from _fakes import image_folder

    root = image_folder(tmp_path / "imgs", ("a", "b"), 3)
    (root / "a" / "bad.png").write_bytes(b"junk")
    r = runner.invoke(app, ["predict", str(digits_run), str(root), "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 2 and "bad.png" in r.stderr and "--skip-bad" in r.stderr
    r = runner.invoke(app, ["predict", str(digits_run), str(root), "--out", str(tmp_path / "p.csv"), "--skip-bad"])
    assert r.exit_code == 0 and "skipped" in r.stderr and "bad.png" in r.stderr
    assert len(list(csv.DictReader(open(tmp_path / "p.csv")))) == 6


def test_resume_from_the_cli_after_an_interrupted_run(tmp_path):
    import json

    run = tmp_path / "run"
    args = ["train", "digits", "--model", "linear", "--epochs", "2", "--out", str(run), "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    cfg = json.loads((run / "config.json").read_text())
    cfg["status"] = "training"  # as a killed run leaves it (before any epoch finished: no resume.ckpt)
    (run / "config.json").write_text(json.dumps(cfg))
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "--resume" in r.stderr
    r = runner.invoke(app, args + ["--resume"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["status"] == "complete"
    r = runner.invoke(app, ["train", "--out", str(run)])
    assert r.exit_code == 2 and "DATA is missing" in r.stderr and "--resume --out RUN" in r.stderr
    r = runner.invoke(app, ["forecast", "train", "--out", str(run)])
    assert r.exit_code == 2 and "SERIES is missing" in r.stderr


def test_demo_falls_back_to_digits_and_says_so(tmp_path, monkeypatch):
    import knowwhen.demo

    monkeypatch.setattr(knowwhen.demo, "fashion_mnist_available", lambda: False)
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--epochs", "2", "--mc", "10", "--quiet",
                            "--forecast-epochs", "3"])
    assert r.exit_code == 0, r.output
    assert "using scikit-learn's digits" in r.output and "accuracy (MC mean)" in r.output
    assert "test windows of sunspots" in r.output and (tmp_path / "demo" / "forecast-eval" / "report.html").exists()
    assert "AUROC" in r.output and "@80%" in r.output and "softmax_tempered" in r.output
    assert (tmp_path / "demo" / "eval" / "predictions.csv").exists()
    assert "conformal sets (aps on mc, alpha 0.1)" in r.output and "far-away images found in" in r.output
    assert "by the betabinom test" in r.output and "control cells of the plate" in r.output  # the demo has controls
    assert (tmp_path / "demo" / "screen" / "report.html").exists()
    assert (tmp_path / "demo" / "run" / "model.safetensors").exists()


def test_predict_with_mc_from_the_cli(digits_run, tmp_path):
    r = runner.invoke(app, ["predict", str(digits_run), "digits", "--mc", "10", "--seed", "2", "--quiet",
                            "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    row = next(csv.DictReader(open(tmp_path / "p.csv")))
    assert {"sigma_mc", "mutual_info_mc", "variation_ratio_mc"} <= set(row)


@pytest.mark.parametrize("bad, said", [(["--mc", "-1"], "--mc -1"), (["--part-size", "0"], "--part-size 0"),
                                       (["--batch-size", "0"], "--batch-size 0"), (["--alpha", "0.1"], "--conformal"),
                                       (["--out-folder"], "is a folder")])
def test_a_rejected_prediction_writes_nothing_and_the_corrected_one_runs(digits_run, tmp_path, bad, said):
    out = tmp_path / "p.csv"
    args = ["--out", str(tmp_path)] if bad == ["--out-folder"] else [*bad, "--out", str(out)]
    r = runner.invoke(app, ["predict", str(digits_run), "digits", "--mc", "3", *args])
    assert r.exit_code == 2 and r.stderr.startswith("error:") and said in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []
    r = runner.invoke(app, ["predict", str(digits_run), "digits", "--mc", "3", "--out", str(out), "--quiet"])
    assert r.exit_code == 0 and out.exists(), r.output


def test_settings_that_would_be_ignored_are_refused(digits_run, tmp_path):
    r = runner.invoke(app, ["train", "digits", "--epochs", "0", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "`epochs` is 0" in r.stderr and not (tmp_path / "r").exists()
    cal = (digits_run / "calibration.safetensors").read_bytes()
    r = runner.invoke(app, ["conformal", str(digits_run), "digits", "--method", "foo", "--mc", "0"])
    assert r.exit_code == 2 and "--method 'foo'" in r.stderr and "--conformal" not in r.stderr
    assert (digits_run / "calibration.safetensors").read_bytes() == cal  # nothing recalibrated


def test_info_counts_the_best_epoch_from_one(digits_run):
    best = kw.load_run(digits_run).metrics["best_epoch"]
    r = runner.invoke(app, ["info", str(digits_run)])
    assert r.exit_code == 0 and f"best_epoch     {best + 1} (counted from 1" in r.output, r.output


def test_a_rejected_evaluation_writes_nothing(digits_run, tmp_path):
    for bad, said in ((["--batch-size", "0"], "--batch-size 0"), (["--mc", "-2"], "--mc -2")):
        r = runner.invoke(app, ["evaluate", str(digits_run), "digits", *bad, "--out", str(tmp_path / "ev")])
        assert r.exit_code == 2 and said in r.stderr and list(tmp_path.iterdir()) == [], r.output


def test_start_up_imports_no_heavy_library_until_a_command_needs_it():
    """`import knowwhen` and `knowwhen --help` load neither torch nor Lightning nor scikit-learn (seconds)."""
    import subprocess
    import sys

    code = ("import sys, knowwhen, knowwhen.cli; from knowwhen.cli import app; "
            "from typer.testing import CliRunner; CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in ('torch', 'lightning', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
