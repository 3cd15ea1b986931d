"""evaluate_forecaster: errors, 90% MC interval coverage and CRPS on the test part, against naive baselines."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..tables import write_rows_csv
from . import metrics as M
from .predict import SeriesForecast, predict_forecasts, write_forecast_csv
from .sampling import ForecastOptions
from ..data.series import Series, time_at
from .run import ForecastRun

# The natural cycle of the built-in series, for the seasonal-naive baseline.
SEASONS = {"sunspots": 11, "co2": 52}
INTERVAL = ("90% predictive interval: the 5% and 95% quantiles of the MC passes, each plus a draw of the "
            "observation noise estimated on the validation residuals (_mc: the passes alone)")


def _scores(pred: np.ndarray, actual: np.ndarray) -> dict:
    # A point forecast's CRPS is its absolute error, so baselines are scored on the same scale as the model.
    return {"mae": M.mae(pred, actual), "rmse": M.rmse(pred, actual), "crps": M.mae(pred, actual)}


def _model_scores(sf: SeriesForecast, cols=slice(None)) -> dict:
    f, a = sf.forecast, sf.actual[:, cols]
    out = {"mae_point": M.mae(f.point[:, cols], a), "rmse_point": M.rmse(f.point[:, cols], a)}
    if f.mean is not None:
        out.update(mae=M.mae(f.mean[:, cols], a), rmse=M.rmse(f.mean[:, cols], a),
                   coverage_90=M.coverage(f.low[:, cols], f.high[:, cols], a),
                   width_90=M.mean_width(f.low[:, cols], f.high[:, cols], a),
                   crps=float(np.nanmean(f.crps[:, cols])),
                   coverage_90_mc=M.coverage(f.q05[:, cols], f.q95[:, cols], a),
                   width_90_mc=M.mean_width(f.q05[:, cols], f.q95[:, cols], a),
                   crps_mc=float(np.nanmean(f.crps_mc[:, cols])))
    return out


def baseline_forecasts(sf: SeriesForecast, target: int, season: int | None) -> dict[str, np.ndarray]:
    """(n, H) forecasts of persistence and, given a season, seasonal-naive, from the series' observed values."""
    values, h = sf.series.values[:, target], sf.actual.shape[1]
    out = {"persistence": M.persistence(values, sf.first_target, h)}
    if season:
        out["seasonal_naive"] = M.seasonal_naive(values, sf.first_target, h, season)
    return out


def per_horizon_rows(sf: SeriesForecast, baselines: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for k in range(sf.actual.shape[1]):
        row = {"step": k + 1, **_model_scores(sf, slice(k, k + 1))}
        for name, pred in baselines.items():
            row[f"{name}_mae"] = M.mae(pred[:, k], sf.actual[:, k])
        rows.append(row)
    return rows


def evaluate_forecaster(run: ForecastRun, out: str | Path, series: Series | None = None,
                        options: ForecastOptions = ForecastOptions(), season: int | None = None) -> dict:
    """Forecasts every test window of `series` (default: the run's own) and writes to `out`: metrics.json,
    forecast.csv, per_horizon.csv and series.csv (the target series); `knowwhen.report.build.build_report` makes
    the page from them. Returns the content of metrics.json.

    `season` sets the seasonal-naive baseline's period in time steps (default: 11 for sunspots, 52 for co2,
    none otherwise; 0 leaves it out). Two 90% intervals are scored: `coverage_90_mc` of the MC passes alone
    (the model's uncertainty) and `coverage_90` of the passes plus the run's observation-noise estimate (the
    predictive interval; the same as the MC one with `options.noise=False`).

    Example:
        >>> evaluate_forecaster(run, "eval/sun", options=ForecastOptions(passes=100))  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sf = predict_forecasts(run, series, "test", options)
    season = SEASONS.get(sf.series.source) if season is None else season or None  # 0: no seasonal baseline
    baselines = baseline_forecasts(sf, run.target, season)
    c = run.config
    summary = {"task": "forecast", "run": str(run.path), "series": sf.series.source,
               "target": run.columns[run.target], "windows": int(len(sf.actual)), "horizon": c.horizon,
               "multistep": c.multistep, "mc_passes": options.passes, "seed": options.seed, "interval": INTERVAL,
               "noise_std": None if run.noise_std is None or not options.noise else run.noise_std.tolist(),
               "model": _model_scores(sf),
               "baselines": {name: _scores(pred, sf.actual) for name, pred in baselines.items()},
               "season": season}
    best = summary["model"].get("mae", summary["model"]["mae_point"])
    summary["skill_vs_persistence"] = 1 - best / summary["baselines"]["persistence"]["mae"]
    write_forecast_csv(sf, out / "forecast.csv")
    write_rows_csv(out / "series.csv", [{"time": time_at(sf.series.time, i), "value": float(v)}  # the report's
                                        for i, v in enumerate(sf.series.values[:, run.target])])  # backdrop
    write_rows_csv(out / "per_horizon.csv", per_horizon_rows(sf, baselines))
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def format_forecast_summary(summary: dict) -> str:
    """metrics.json of a forecast evaluation as a short table for the terminal."""
    m = summary["model"]
    lines = [f"{summary['windows']} test windows of {summary['series']} ({summary['target']}), horizon "
             f"{summary['horizon']} ({summary['multistep']}), MC passes: {summary['mc_passes'] or 'none'}",
             f"  {'forecast':<28}{'MAE':>10}{'RMSE':>10}{'CRPS':>10}"]
    if "mae" in m:
        lines.append(f"  {'model, MC mean':<28}{m['mae']:>10.4g}{m['rmse']:>10.4g}{m['crps']:>10.4g}")
    lines.append(f"  {'model, dropout off':<28}{m['mae_point']:>10.4g}{m['rmse_point']:>10.4g}{'':>10}")
    for name, b in summary["baselines"].items():
        label = name + (f" ({summary['season']} steps)" if name == "seasonal_naive" else "")
        lines.append(f"  {label:<28}{b['mae']:>10.4g}{b['rmse']:>10.4g}{b['crps']:>10.4g}")
    if "coverage_90" in m:
        lines.append(f"90% interval coverage (target 0.90): MC passes {m['coverage_90_mc']:.3f} (mean width "
                     f"{m['width_90_mc']:.4g}); MC + noise {m['coverage_90']:.3f} (mean width {m['width_90']:.4g})")
    lines.append(f"skill vs persistence (1 - MAE ratio): {summary['skill_vs_persistence']:.3f}")
    return "\n".join(lines)
