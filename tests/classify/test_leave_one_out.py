import csv

from typer.testing import CliRunner

from knowwhen.cli import app

runner = CliRunner()


def test_leave_one_class_out_writes_a_table_and_resumes(tmp_path):
    args = ["novelty", "digits", "--model", "cnn", "--classes", "0,5", "--epochs", "2", "--mc", "10",
            "--out", str(tmp_path / "nov"), "--quiet"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "nov" / "novelty.csv")))
    assert {r["heldout_class"] for r in rows} == {"0", "5"} and len(rows) == 28  # 2 classes x 14 measures
    assert all(0 <= float(r["auroc"]) <= 1 for r in rows)
    assert "mean" in r.output and "novel = positive" in r.output
    before = (tmp_path / "nov" / "runs" / "0" / "model.safetensors").stat().st_mtime_ns
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "already done, skipped" in r.stderr
    assert (tmp_path / "nov" / "runs" / "0" / "model.safetensors").stat().st_mtime_ns == before


def test_unknown_class_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["novelty", "digits", "--classes", "cat", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "no class 'cat'" in r.stderr
