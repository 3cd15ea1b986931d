"""Yearly sunspots (statsmodels, 1700-2008), one step ahead: each sequence model vs naive and ARIMA forecasts.

The last 20% of the years are the test part (windows whose target year lies there); the 10% before it are the
validation part (early stopping, and the observation-noise estimate of the predictive interval). Reported per
model, as the mean over seeds: the MAE of the MC-mean forecast and of the dropout-off forecast, the coverage and
mean width of the 90% intervals (MC passes alone, and MC + noise), CRPS. Baselines on the same test years:
persistence (last year's value), seasonal naive (the value 11 years earlier), and statsmodels ARIMA(p, 0, q)
with (p, q) chosen by AIC on the first 80%, then one-step-ahead forecasts with those parameters (its own 90%
interval for coverage). Each model is trained on the raw counts and on their square root (`--transform sqrt`,
the usual variance-stabilising transform for counts), all metrics in sunspot numbers.
Target: coverage of the 90% interval within 85-95%.
Run: .venv/bin/python benchmarks/forecast_sunspots.py [--seeds 3] [--passes 100] [--epochs 300]
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import warnings

import numpy as np

from _common import write_result

from knowwhen import ModelConfig
from knowwhen.forecast import metrics as M
from knowwhen.config import ForecastConfig, SeriesConfig
from knowwhen.forecast.evaluate import evaluate_forecaster
from knowwhen.forecast.sampling import ForecastOptions
from knowwhen.forecast.run import load_forecaster
from knowwhen.data.series import make_windows, open_series
from knowwhen.forecast.train import train_forecaster

# The registry's defaults, except a tcn kernel of 3: receptive field 31 covers the 24-year window (kernel 2: 16).
MODELS = {"tcn": {"width": 32, "levels": 4, "kernel_size": 3, "dropout": 0.1},
          "rnn": {"hidden": 32, "dropout": 0.0, "recurrent_dropout": 0.2},
          "gru": {"hidden": 32, "dropout": 0.0, "recurrent_dropout": 0.2},
          "lstm": {"hidden": 32, "dropout": 0.0, "recurrent_dropout": 0.2}}
# Stateful variants: trained on 4 contiguous streams, forecasting from the whole history (see ForecastConfig).
STATEFUL = {"gru_stateful": "gru", "lstm_stateful": "lstm"}
KEYS = ("mae", "mae_point", "rmse", "crps", "coverage_90", "width_90", "coverage_90_mc", "width_90_mc", "crps_mc")


def arima(values: np.ndarray, test_first: np.ndarray, sqrt: bool = False) -> dict:
    """ARIMA(p, 0, q) by AIC on the values before the test part; one-step forecasts on it with fixed parameters.

    With `sqrt` the model is fitted to sqrt(values) and its forecast and interval are squared back.
    """
    fitted = np.sqrt(values) if sqrt else values
    from statsmodels.tsa.arima.model import ARIMA

    fit_end = int(test_first.min())
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in range(1, 10):
            for q in range(3):
                res = ARIMA(fitted[:fit_end], order=(p, 0, q)).fit()
                if best is None or res.aic < best.aic:
                    best = res
        full = best.apply(fitted)                      # the same parameters, filtered through the whole series
        pred = full.get_prediction(start=fit_end)
    mean, ci = pred.predicted_mean, pred.conf_int(alpha=0.1)
    if sqrt:
        mean, ci = np.maximum(mean, 0) ** 2, np.maximum(ci, 0) ** 2
    actual = values[fit_end:]
    return {"order": list(best.model.order), "mae": M.mae(mean, actual), "rmse": M.rmse(mean, actual),
            "coverage_90": M.coverage(ci[:, 0], ci[:, 1], actual), "width_90": M.mean_width(ci[:, 0], ci[:, 1])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--window", type=int, default=24)
    ap.add_argument("--models", default=",".join([*MODELS, *STATEFUL]))
    ap.add_argument("--transforms", default="none,sqrt", help="none and/or sqrt (the model learns sqrt(count))")
    args = ap.parse_args()
    series = open_series("sunspots")
    values = series.values[:, 0]
    w = make_windows(series, args.window, 1)
    test_first = w.first_target[w.test]
    actual = values[test_first]
    baselines = {"persistence": {"mae": M.mae(values[test_first - 1], actual),
                                 "rmse": M.rmse(values[test_first - 1], actual)},
                 "seasonal_naive_11": {"mae": M.mae(values[test_first - 11], actual),
                                       "rmse": M.rmse(values[test_first - 11], actual)},
                 "arima": arima(values, test_first), "arima_sqrt": arima(values, test_first, sqrt=True)}
    print("baselines:", baselines)
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, transform in itertools.product(args.models.split(","), args.transforms.split(",")):
            per_seed, tf = [], None if transform == "none" else transform
            for seed in range(args.seeds):
                model = STATEFUL.get(name, name)
                cfg = ForecastConfig(SeriesConfig("sunspots", transform=tf), ModelConfig(model, MODELS[model]),
                                     window=args.window, horizon=1, stateful=name in STATEFUL,
                                     batch_size=4 if name in STATEFUL else 32, loss="mse", lr=3e-3,
                                     epochs=args.epochs, patience=30, seed=seed, progress=False)
                start = time.perf_counter()
                run = load_forecaster(train_forecaster(cfg, f"{tmp}/{name}{transform}{seed}"))
                seconds = time.perf_counter() - start
                s = evaluate_forecaster(run, f"{tmp}/{name}{transform}{seed}-eval",
                                        options=ForecastOptions(passes=args.passes, seed=seed, progress=False))
                per_seed.append({**{k: s["model"][k] for k in KEYS}, "train_seconds": round(seconds, 1),
                                 "best_epoch": run.metrics["best_epoch"]})
                print(name, transform, seed, per_seed[-1], flush=True)
            models[f"{name}+{transform}"] = {"args": MODELS[STATEFUL.get(name, name)], "transform": transform, "mean": {k: float(np.mean([r[k] for r in per_seed]))
                                                           for k in per_seed[0]}, "per_seed": per_seed}
    write_result("forecast_sunspots", {
        "series": "sunspots (yearly, statsmodels)", "test_years": [int(series.time[test_first[0]]),
                                                                  int(series.time[test_first[-1]])],
        "test_windows": int(len(test_first)), "window": args.window, "horizon": 1, "mc_passes": args.passes,
        "seeds": args.seeds, "interval": "90%: 5%/95% quantiles of the MC passes (+ validation noise estimate)",
        "target_coverage": [0.85, 0.95], "baselines": baselines, "models": models})


if __name__ == "__main__":
    main()
