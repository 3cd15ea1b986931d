import json

import numpy as np
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from knowwhen import CheckpointError, ConfigError, DataError, ModelConfig
from knowwhen.classify import load_run
from knowwhen.cli import app
from knowwhen.config import config_from_dict, config_to_dict
from knowwhen.config import ForecastConfig, SeriesConfig
from knowwhen.forecast.evaluate import evaluate_forecaster
from knowwhen.training.regressor import Regressor
from knowwhen.forecast.predict import predict_forecasts
from knowwhen.forecast.sampling import ForecastOptions
from knowwhen.forecast.run import load_forecaster
from knowwhen.forecast.train import train_forecaster

NONE = ForecastOptions(passes=0, progress=False)  # the forecast with dropout off only

runner = CliRunner()


def _sine_csv(path, n=240, columns=1):
    t = np.arange(n)
    rng = np.random.default_rng(0)
    cols = [np.sin(2 * np.pi * t / 20) + 0.1 * rng.normal(size=n) for _ in range(columns)]
    header = "day," + ",".join(f"v{j}" for j in range(columns))
    path.write_text(header + "\n" + "\n".join(",".join([str(int(d))] + [f"{c[i]:.5f}" for c in cols])
                                              for i, d in enumerate(t)) + "\n")
    return path


def test_sunspots_end_to_end_beats_persistence_with_honest_intervals(tmp_path):
    """A real built-in series, trained and evaluated in seconds."""
    cfg = ForecastConfig(SeriesConfig("sunspots"), ModelConfig("gru", {"hidden": 32}), window=22, horizon=3,
                         loss="huber", epochs=40, patience=None, progress=False)
    run = load_forecaster(train_forecaster(cfg, tmp_path / "run"))
    assert run.info["series"]["sizes"]["test"] > 50 and run.noise_std.shape == (3,)
    s = evaluate_forecaster(run, tmp_path / "eval", options=ForecastOptions(passes=50, progress=False))
    assert s["model"]["mae"] < s["baselines"]["persistence"]["mae"]
    assert s["season"] == 11 and "seasonal_naive" in s["baselines"]
    # the MC passes alone cover too little; adding the validation noise estimate brings it near 90%
    assert s["model"]["coverage_90_mc"] < s["model"]["coverage_90"]
    assert 0.6 < s["model"]["coverage_90"] <= 1.0
    from knowwhen.report.build import build_report

    html = build_report(tmp_path / "eval").read_text()
    assert "Forecasts with MC-dropout intervals" in html and html.count("<img") == 4
    rows = (tmp_path / "eval" / "forecast.csv").read_text().splitlines()
    assert rows[0] == "origin_time,step,time,actual,point,mean,std,q05,q95,low_90,high_90"
    assert len(rows) == 1 + 3 * s["windows"]


def test_cli_train_predict_evaluate_recursive_tcn(tmp_path):
    csv = _sine_csv(tmp_path / "sine.csv")
    run, out = tmp_path / "run", tmp_path / "f.csv"
    r = runner.invoke(app, ["forecast", "train", str(csv), "--model", "tcn", "--window", "24", "--horizon", "5",
                            "--multistep", "recursive", "--epochs", "15", "--out", str(run), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "saved forecaster" in r.output and "test  MAE" in r.output
    r = runner.invoke(app, ["forecast", "predict", str(run), "--mc", "20", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert len(lines) == 6 and [ln.split(",")[2] for ln in lines[1:]] == ["240", "241", "242", "243", "244"]
    r = runner.invoke(app, ["forecast", "evaluate", str(run), str(csv), "--mc", "20", "--season", "20",
                            "--out", str(tmp_path / "eval"), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["multistep"] == "recursive" and summary["horizon"] == 5
    # a clean 20-step cycle: the seasonal-naive baseline is good; the network must beat persistence
    assert summary["model"]["mae"] < summary["baselines"]["persistence"]["mae"]
    r = runner.invoke(app, ["info", str(run)])
    assert r.exit_code == 0 and "receptive field: 16 time steps" in r.output
    r = runner.invoke(app, ["predict", str(run), "digits", "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 2 and "a forecaster, not an image classifier" in r.output


def test_cli_forecasts_do_not_depend_on_the_batch_size(tmp_path):
    run, csv = tmp_path / "run", _sine_csv(tmp_path / "sine.csv", 160)
    r = runner.invoke(app, ["forecast", "train", str(csv), "--model", "gru", "--window", "12", "--horizon", "2",
                            "--epochs", "2", "--out", str(run), "--quiet"])
    assert r.exit_code == 0, r.output
    tables = []
    for size in ("7", "500"):
        out = tmp_path / f"f{size}.csv"
        r = runner.invoke(app, ["forecast", "predict", str(run), "--origins", "test", "--mc", "30",
                                "--batch-size", size, "--out", str(out), "--quiet"])
        assert r.exit_code == 0, r.output
        tables.append(np.genfromtxt(out, delimiter=",", names=True))
    assert len(tables[0]) > 7 * 2                                    # several batches of 7 windows
    for col in ("point", "mean", "std", "q05", "q95", "low_90", "high_90"):
        np.testing.assert_allclose(tables[0][col], tables[1][col], rtol=1e-5, atol=1e-6, err_msg=col)


def test_dated_csv_forecasts_carry_dates(tmp_path):
    """ISO dates in the time column: forecasts past the end get the next dates, the report plots them."""
    days = np.arange("2024-01-01", "2024-06-01", dtype="datetime64[D]")
    values = np.sin(np.arange(len(days)) / 5)
    csv = tmp_path / "daily.csv"
    csv.write_text("date,v\n" + "".join(f"{d},{v:.4f}\n" for d, v in zip(days, values)))
    cfg = ForecastConfig(SeriesConfig(str(csv)), ModelConfig("tcn"), window=16, horizon=2, epochs=2,
                         progress=False)
    run = load_forecaster(train_forecaster(cfg, tmp_path / "run"))
    assert run.info["series"]["time"] == {"first": "2024-01-01", "last": "2024-05-31", "step": "1 D"}
    sf = predict_forecasts(run, origins="last", options=ForecastOptions(passes=5, progress=False))
    from knowwhen.forecast.predict import forecast_rows

    assert [(r["origin_time"], r["time"]) for r in forecast_rows(sf)] == [("2024-05-31", "2024-06-01"),
                                                                            ("2024-05-31", "2024-06-02")]
    evaluate_forecaster(run, tmp_path / "eval", options=ForecastOptions(passes=5, progress=False))
    assert (tmp_path / "eval" / "series.csv").read_text().splitlines()[1] == "2024-01-01,0"  # numbers to 9 significant digits, as every table


def test_bad_series_input_is_one_clear_error(tmp_path):
    csv = tmp_path / "gappy.csv"
    csv.write_text("day,v\n0,1\n1,\n2,3\n")
    r = runner.invoke(app, ["forecast", "train", str(csv), "--out", str(tmp_path / "r"), "--quiet"])
    assert r.exit_code == 2 and "gappy.csv" in r.output and "--fill interpolate" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "r").exists()
    r = runner.invoke(app, ["forecast", "train", str(_sine_csv(tmp_path / "s.csv", 40)), "--window", "48",
                            "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "shorten" in r.output
    r = runner.invoke(app, ["forecast", "train", str(_sine_csv(tmp_path / "m.csv", 80, columns=2)), "--window", "8",
                            "--multistep", "recursive", "--horizon", "2", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "univariate" in r.output


def test_run_kinds_are_not_confused(tmp_path, digits_run):
    with pytest.raises(CheckpointError, match="not a forecaster"):
        load_forecaster(digits_run)
    cfg = ForecastConfig(SeriesConfig("nile", transform="log1p"), ModelConfig("rnn"), window=10, epochs=3,
                         progress=False)
    run = train_forecaster(cfg, tmp_path / "nile")
    with pytest.raises(CheckpointError, match="a forecaster, not an image classifier"):
        load_run(run)
    # the model learns log1p(flow) (about 7); forecasts come back as flows (about 450-1400)
    assert load_forecaster(run).mean[0] == pytest.approx(np.log1p(920), abs=0.3)
    sf = predict_forecasts(load_forecaster(run), origins="all", options=ForecastOptions(passes=10, progress=False))
    assert 500 < sf.forecast.point.mean() < 1400 and 500 < sf.forecast.mean.mean() < 1400
    with pytest.raises(DataError, match="columns"):
        load_forecaster(run).open_series(_sine_csv(tmp_path / "s.csv", 50))


def test_config_round_trips_and_validates():
    cfg = ForecastConfig(SeriesConfig("sunspots", target="SUNACTIVITY"), ModelConfig("lstm", {"hidden": 8}),
                         window=12, horizon=4, multistep="recursive", loss="logcosh")
    assert config_from_dict(ForecastConfig, config_to_dict(cfg)) == cfg and cfg.outputs == 1
    with pytest.raises(ConfigError, match="loss"):
        ForecastConfig(SeriesConfig("sunspots"), loss="cross_entropy")
    with pytest.raises(ConfigError, match="multistep"):
        ForecastConfig(SeriesConfig("sunspots"), multistep="both")


def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    cfg = ForecastConfig(SeriesConfig(str(_sine_csv(tmp_path / "s.csv", 120))), ModelConfig("gru", {"hidden": 8}),
                         window=10, epochs=4, patience=None, progress=False)
    whole = load_file(str(train_forecaster(cfg, tmp_path / "whole") / "model.safetensors"))

    def crash(self):
        if self.current_epoch == 1:
            raise RuntimeError("power cut")
    monkeypatch.setattr(Regressor, "on_train_epoch_end", crash, raising=False)
    with pytest.raises(RuntimeError, match="power cut"):
        train_forecaster(cfg, tmp_path / "cut")
    assert (tmp_path / "cut" / "resume.ckpt").exists()
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="--resume"):
        train_forecaster(cfg, tmp_path / "cut")
    r = runner.invoke(app, ["forecast", "train", "--resume", "--out", str(tmp_path / "cut"), "--quiet"])  # short form
    assert r.exit_code == 0, r.output
    resumed = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert whole.keys() == resumed.keys() and all(np.array_equal(whole[k], resumed[k]) for k in whole)


def test_every_forecast_command_has_help_with_an_example():
    for cmd in ("train", "predict", "evaluate", "info"):
        r = runner.invoke(app, ["forecast", cmd, "--help"])
        assert r.exit_code == 0 and "Example: knowwhen forecast" in r.output


def test_a_run_trained_on_a_relative_csv_path_works_from_any_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    _sine_csv(tmp_path / "data" / "sine.csv", 120)
    monkeypatch.chdir(tmp_path / "data")
    r = runner.invoke(app, ["forecast", "train", "sine.csv", "--model", "tcn", "--window", "12", "--epochs", "1",
                            "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["forecast"]["series"]["source"] == str(tmp_path / "data" / "sine.csv")
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["forecast", "predict", str(tmp_path / "run"), "--mc", "5", "--out", "f.csv", "--quiet"])
    assert r.exit_code == 0, r.output


def test_a_changed_training_series_is_noticed(tmp_path):
    csv = _sine_csv(tmp_path / "s.csv", 120)
    cfg = ForecastConfig(SeriesConfig(str(csv)), ModelConfig("tcn"), window=10, epochs=1, progress=False)
    run = load_forecaster(train_forecaster(cfg, tmp_path / "run"))
    predict_forecasts(run, options=NONE)                    # unchanged: fine
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:50] + [lines[50].split(",")[0] + ",9.0"] + lines[51:]) + "\n")
    with pytest.raises(DataError, match="the series changed since run"):
        predict_forecasts(run, options=NONE)
    predict_forecasts(run, run.open_series(csv), options=NONE)   # given explicitly: forecast anyway
