import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from knowwhen import ConfigError, ForecastConfig, ModelConfig, SeriesConfig, create_model, load_forecaster
from knowwhen.cli import app
from knowwhen.forecast.sampling import ForecastOptions, stateful_forecast
from knowwhen.forecast.predict import predict_forecasts
from knowwhen.forecast.train import stateful_batches, train_forecaster


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_carrying_the_state_equals_one_long_sequence(kind):
    torch.manual_seed(0)
    net = create_model(kind, (2, 30), 3).eval()
    x = torch.randn(4, 2, 30)
    whole, _ = net.steps(x)
    first, state = net.steps(x[:, :, :12])
    second, _ = net.steps(x[:, :, 12:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    torch.testing.assert_close(whole[:, -1], net(x))           # forward = the output at the last step


def test_stateful_batches_continue_each_stream():
    series = np.arange(100, dtype=np.float64)[:, None]         # value = time step
    batches = stateful_batches(series, 0, 2, end=90, window=5, streams=3)
    (x0, y0), (x1, _) = batches[0], batches[1]
    assert x0.shape == (3, 1, 5) and y0.shape == (3, 5, 2)
    np.testing.assert_array_equal(x1[:, 0, 0], x0[:, 0, -1] + 1)     # row b of batch k + 1 continues row b
    np.testing.assert_array_equal(y0[:, :, 0], x0[:, 0, :] + 1)      # targets: the next two values
    np.testing.assert_array_equal(y0[:, :, 1], x0[:, 0, :] + 2)
    last = max(float(b[1].max()) for b in batches)
    assert last <= 89                                                # no target at or after `end`
    assert len({float(x[i, 0, 0]) for x, _ in batches for i in range(3)}) == 3 * len(batches)   # no overlap


def test_a_stateful_forecast_sees_the_whole_history_and_nothing_later():
    torch.manual_seed(0)
    net = create_model("gru", (1, 8), 2).eval()
    series = np.random.default_rng(0).normal(size=(1, 1, 60)).astype(np.float32)
    f = stateful_forecast(net, series, np.array([19, 59]), 2, ForecastOptions(passes=0))
    with torch.no_grad():
        prefix = net.steps(torch.from_numpy(series[:, :, :20]))[0][0, -1].numpy()
    np.testing.assert_allclose(f.point[0], prefix, rtol=1e-5)           # the forecast at step 19 = run on 0..19
    mc = stateful_forecast(net, series, np.array([19, 59]), 2, ForecastOptions(passes=30, keep_samples=True))
    assert mc.samples.shape == (30, 2, 2) and mc.samples.std(0).min() > 0


def test_stateful_sunspots_end_to_end(tmp_path):
    cfg = ForecastConfig(SeriesConfig("sunspots"), ModelConfig("gru"), window=20, horizon=2, stateful=True,
                         batch_size=4, lr=3e-3, epochs=20, patience=None, progress=False)
    run = load_forecaster(train_forecaster(cfg, tmp_path / "run"))
    assert run.config.stateful and run.metrics["test_mae"] < 40
    sf = predict_forecasts(run, options=ForecastOptions(passes=20, progress=False))
    assert sf.forecast.mean.shape == (run.info["series"]["sizes"]["test"], 2)
    future = predict_forecasts(run, origins="last", options=ForecastOptions(passes=20, progress=False))
    assert future.first_target[0] == run.info["series"]["length"] and np.isnan(future.actual).all()


def test_stateful_needs_a_recurrent_direct_model(tmp_path):
    r = CliRunner().invoke(app, ["forecast", "train", "nile", "--model", "tcn", "--stateful", "--window", "10",
                                 "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "rnn, gru or lstm" in r.output
    with pytest.raises(ConfigError, match="direct"):
        ForecastConfig(SeriesConfig("nile"), stateful=True, multistep="recursive")
