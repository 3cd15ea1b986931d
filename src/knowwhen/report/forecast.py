"""The forecast report: summary against baselines, training curves, the series with its MC interval band and
the coverage per horizon, from the files `evaluate_forecaster` wrote (nothing is recomputed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures as F
from .html import Section, figure_html, note_html, table_html


def _scores_table(summary: dict) -> list[dict]:
    m = summary["model"]
    rows = []
    if "mae" in m:
        rows.append({"forecast": f"model, MC mean of {summary['mc_passes']} passes + noise", "MAE": m["mae"],
                     "RMSE": m["rmse"], "CRPS": m["crps"], "coverage 90%": m["coverage_90"], "width 90%": m["width_90"]})
        rows.append({"forecast": "model, MC passes alone", "MAE": m["mae"], "RMSE": m["rmse"], "CRPS": m["crps_mc"],
                     "coverage 90%": m["coverage_90_mc"], "width 90%": m["width_90_mc"]})
    rows.append({"forecast": "model, dropout off", "MAE": m["mae_point"], "RMSE": m["rmse_point"]})
    for name, b in summary["baselines"].items():
        label = f"seasonal naive ({summary['season']} steps)" if name == "seasonal_naive" else name
        rows.append({"forecast": label, "MAE": b["mae"], "RMSE": b["rmse"], "CRPS": b["crps"]})
    return [{k: r.get(k, float("nan")) for k in ("forecast", "MAE", "RMSE", "CRPS", "coverage 90%", "width 90%")}
            for r in rows]


def forecast_sections(eval_dir: Path, summary: dict, run: dict, epochs: list[dict], csv) -> list[Section]:
    """The sections of a forecast evaluation's report.html."""
    rows, per_h = csv(eval_dir / "forecast.csv"), csv(eval_dir / "per_horizon.csv")
    series = csv(eval_dir / "series.csv")
    info = [{"": "model", "value": f"{run.get('model', {}).get('name', '?')} {run.get('model', {}).get('args') or ''}"},
            {"": "series", "value": f"{summary['series']} ({summary['target']})"},
            {"": "window / horizon", "value": f"{run.get('forecast', {}).get('window', '?')} steps in, "
                                              f"{summary['horizon']} out ({summary['multistep']})"},
            {"": "test windows", "value": summary["windows"]},
            {"": "training time", "value": f"{run.get('train_seconds', float('nan')):.0f} s"},
            {"": "skill vs persistence (1 - MAE ratio)", "value": summary["skill_vs_persistence"]}]
    out = [Section("summary", "Summary", "Lower MAE, RMSE and CRPS are better; a baseline's CRPS is its MAE (a point "
                   "forecast). Coverage near 0.90 means the 90% MC interval is honest; below it, over-confident.",
                   [table_html(info), table_html(_scores_table(summary), digits=4)]),
           Section("training", "Training curves", "Validation loss that rises while training loss falls means "
                   "over-fitting; the saved model is the epoch with the lowest validation loss.",
                   [figure_html(F.training_curves(epochs), "training curves")] if epochs
                   else [note_html("The run's metrics.csv was not found (was the run moved?).")])]
    sec = Section("forecast", "Forecasts with MC-dropout intervals",
                  f"The band is the {summary['interval']}; actual values outside it are the misses that coverage "
                  "counts. Coverage per step should stay near 0.90 while the width grows with the horizon.")
    history = None
    if series and (t := F.time_axis([r["time"] for r in series])) is not None:
        history = (t, np.array([float(r["value"]) for r in series]))
    if rows:
        steps = sorted({1, summary["horizon"]})
        sec.blocks += [figure_html(F.forecast_band(rows, s, history), f"forecast {s} step(s) ahead") for s in steps]
    if per_h and "coverage_90" in per_h[0]:
        sec.blocks.append(figure_html(F.coverage_per_horizon(per_h), "coverage per horizon"))
    elif per_h:
        sec.blocks.append(note_html("Evaluated without MC passes: no interval to show (rerun with --mc 100)."))
    sec.blocks.append(table_html(per_h, digits=4))
    return out + [sec]
